/**
 * A request with nothing to propagate runs in the root context, entered
 * without AsyncLocalStorage (on Node 20 the first ALS.run turns on async
 * hooks for every promise of the process). A request that carries a trace
 * still runs in its context, and its outbound calls continue the trace,
 * also after requests that ran in the root context.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import express from 'express';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { createMesh } from '../../src/index.js';
import { startServer } from '../helpers/http-servers.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

test('telemetry off: a traceless request sees no mesh context; a traced one continues its trace to the upstream', async (t) => {
  const upstream = await startServer('calculate');
  const mesh = await createMesh({
    workload: { name: 'client', namespace: 'default' },
    telemetry: { metrics: false, metadataExchange: false },
    config: [{
      apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'calculate', namespace: 'default' },
      spec: { hosts: ['calculate.default.svc.cluster.local'], resolution: 'STATIC', ports: [{ number: 8000, name: 'http' }], endpoints: [{ address: '127.0.0.1', ports: { http: upstream.port } }] },
    }],
  });
  const stores: unknown[] = [];
  const app = express();
  app.use(mesh.express());
  app.get('/add', async (_req, res) => {
    stores.push(mesh.context.getStore());
    await new Promise((resolve) => setImmediate(resolve));
    const answer = await mesh.request('http://calculate.default.svc.cluster.local:8000/add');
    res.send(await answer.body.text());
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  t.after(async () => { server.close(); await mesh.close(); await upstream.close(); });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/add`;

  const plain = await request(url);
  assert.equal(plain.statusCode, 200);
  await plain.body.text();
  assert.equal(stores[0], undefined, 'no AsyncLocalStorage entered for a traceless request');
  assert.equal(upstream.lastHeaders?.traceparent, undefined);

  const traced = await request(url, { headers: { traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01` } });
  await traced.body.text();
  assert.notEqual(stores[1], undefined, 'a traced request runs in its context');
  assert.equal(String(upstream.lastHeaders?.traceparent).split('-')[1], TRACE_ID, 'the outbound call continues the trace');

  // After a traced request has turned AsyncLocalStorage on, a traceless one still sees no trace.
  const again = await request(url);
  await again.body.text();
  assert.equal(upstream.lastHeaders?.traceparent, undefined);
});
