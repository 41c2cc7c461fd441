// Every HTTP client a Node service uses goes through the mesh (issue #19): the same behaviour table —
// a 90/10 split, a header route, a fault abort, a route timeout, trace context — run through each real
// client against loopback servers.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import axios from 'axios';
import got from 'got';
import nodeFetch from 'node-fetch';
import superagent from 'superagent';
import { getGlobalDispatcher, setGlobalDispatcher } from 'undici';
import { createMesh, seededRandom, type Mesh } from '../../src/index.js';
import { startServer, type TestServer } from '../helpers/http-servers.js';
import { calculateRoutes, calculateService, calculateSubsets, docs } from '../helpers/mesh-config.js';
import { memoryTracing } from '../inbound/setup.js';

interface Answer { status: number; body: string; flags: string | undefined }
type Client = (mesh: Mesh, url: string, headers: Record<string, string>) => Promise<Answer>;

const header = (v: string | string[] | null | undefined) => (Array.isArray(v) ? v[0] : v ?? undefined);

const clients: Record<string, Client> = {
  'node:http with mesh.httpAgent': (mesh, url, headers) => new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: mesh.httpAgent, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, flags: header(res.headers['x-meshlet-flags']) }));
    });
    req.on('error', reject);
    req.end();
  }),
  'axios (default adapter, httpAgent)': async (mesh, url, headers) => {
    const res = await axios.get<string>(url, { headers, httpAgent: mesh.httpAgent, httpsAgent: mesh.httpsAgent, proxy: false, validateStatus: () => true, responseType: 'text', transformResponse: (d: string) => d });
    return { status: res.status, body: res.data, flags: header(res.headers['x-meshlet-flags'] as string | undefined) };
  },
  'axios (fetch adapter, env.fetch = mesh.fetch)': async (mesh, url, headers) => {
    const res = await axios.get<string>(url, { adapter: 'fetch', env: { fetch: mesh.fetch }, headers, validateStatus: () => true, responseType: 'text' });
    return { status: res.status, body: res.data, flags: header(res.headers['x-meshlet-flags'] as string | undefined) };
  },
  'got (agent.http)': async (mesh, url, headers) => {
    const res = await got(url, { agent: { http: mesh.httpAgent, https: mesh.httpsAgent }, headers, retry: { limit: 0 }, throwHttpErrors: false });
    return { status: res.statusCode, body: res.body, flags: header(res.headers['x-meshlet-flags']) };
  },
  'node-fetch 2 (agent)': async (mesh, url, headers) => {
    const res = await nodeFetch(url, { agent: mesh.httpAgent, headers });
    return { status: res.status, body: await res.text(), flags: res.headers.get('x-meshlet-flags') ?? undefined };
  },
  'superagent (.agent)': async (mesh, url, headers) => {
    const res = await superagent.get(url).agent(mesh.httpAgent).set(headers).ok(() => true).buffer(true);
    return { status: res.status, body: res.text, flags: header(res.headers['x-meshlet-flags'] as string | undefined) };
  },
  'mesh.fetch(new Request(…))': async (mesh, url, headers) => {
    const res = await mesh.fetch(new Request(url, { headers }));
    return { status: res.status, body: await res.text(), flags: res.headers.get('x-meshlet-flags') ?? undefined };
  },
  'global fetch after setGlobalDispatcher(mesh.dispatcher)': async (mesh, url, headers) => {
    const previous = getGlobalDispatcher();
    setGlobalDispatcher(mesh.dispatcher);
    try {
      const res = await fetch(url, { headers });
      return { status: res.status, body: await res.text(), flags: res.headers.get('x-meshlet-flags') ?? undefined };
    } finally {
      setGlobalDispatcher(previous);
    }
  },
};

describe('HTTP clients through the mesh: one behaviour table', () => {
  let cat: TestServer;
  let dog: TestServer;
  const echo = (name: string): Parameters<typeof startServer>[1] => (req, res) => {
    if (req.url?.startsWith('/slow')) {
      const t = setTimeout(() => res.end(name), 5000);
      res.on('close', () => clearTimeout(t));
      return;
    }
    res.end(`${name} ${req.headers.traceparent ?? '-'}`);
  };
  before(async () => {
    cat = await startServer('cat', echo('cat'));
    dog = await startServer('dog', echo('dog'));
  });
  after(async () => {
    await Promise.all([cat.close(), dog.close()]);
  });

  const routes = calculateRoutes(`
    - match: [{ headers: { version: { exact: dog } } }]
      route: [{ destination: { host: calculate, subset: dog-with-multi } }]
    - match: [{ uri: { prefix: /fault } }]
      fault: { abort: { httpStatus: 503, percentage: { value: 100 } } }
      route: [{ destination: { host: calculate, subset: cat-with-plus } }]
    - match: [{ uri: { prefix: /slow } }]
      timeout: 200ms
      retries: { attempts: 0 }
      route: [{ destination: { host: calculate, subset: cat-with-plus } }]
    - route:
        - { destination: { host: calculate, subset: cat-with-plus }, weight: 90 }
        - { destination: { host: calculate, subset: dog-with-multi }, weight: 10 }`);

  for (const [name, call] of Object.entries(clients)) {
    it(name, async (t) => {
      const { tracerProvider } = memoryTracing();
      const mesh = await createMesh({ random: seededRandom(19), tracerProvider, config: docs(calculateService([{ port: cat.port, version: 'cat-plus' }, { port: dog.port, version: 'dog-multi' }]), calculateSubsets, routes) });
      t.after(() => mesh.close());
      const base = 'http://calculate.default.svc.cluster.local:8000';

      // 90/10 over 500 requests (seeded): within ±4 points (3 standard deviations).
      let dogs = 0;
      for (let i = 0; i < 500; i++) {
        const a = await call(mesh, `${base}/add`, {});
        assert.equal(a.status, 200);
        if (a.body.startsWith('dog')) dogs++;
      }
      assert.ok(Math.abs(dogs / 500 - 0.1) <= 0.04, `dog share ${dogs / 500}`);

      const dark = await call(mesh, `${base}/add`, { version: 'dog' });
      assert.match(dark.body, /^dog /, 'header route');

      const aborted = await call(mesh, `${base}/fault`, {});
      assert.deepEqual([aborted.status, aborted.flags], [503, 'FI'], 'fault abort, local reply');

      const slow = await call(mesh, `${base}/slow`, {});
      assert.deepEqual([slow.status, slow.flags], [504, 'UT'], 'route timeout');

      // Trace context: called inside the app's active span, the upstream sees the same trace.
      const parent = tracerProvider.getTracer('app').startSpan('handler');
      const ctx = trace.setSpan(ROOT_CONTEXT, parent);
      const traced = await mesh.context.run(ctx, () => call(mesh, `${base}/add`, { version: 'dog' }));
      parent.end();
      const traceparent = traced.body.split(' ')[1]!;
      assert.equal(traceparent.split('-')[1], parent.spanContext().traceId, `traceparent ${traceparent}`);
    });
  }

  it('mesh.fetch takes a Request with a body and a signal, Headers and a stream with duplex: half', async (t) => {
    const sink = await startServer('sink', (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => { body += c; });
      req.on('end', () => res.end(`${req.method} ${req.headers['x-a']} ${body}`));
    });
    t.after(() => sink.close());
    const mesh = await createMesh({ config: calculateService([{ port: sink.port, version: 'v' }]) });
    t.after(() => mesh.close());
    const url = 'http://calculate:8000/';
    const withBody = await mesh.fetch(new Request(url, { method: 'POST', body: 'from a Request', headers: new Headers({ 'x-a': '1' }), signal: AbortSignal.timeout(10_000) }));
    assert.equal(await withBody.text(), 'POST 1 from a Request');
    const stream = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('streamed')); c.close(); } });
    const streamed = await mesh.fetch(url, { method: 'PUT', body: stream, duplex: 'half' } as RequestInit);
    assert.equal(await streamed.text(), 'PUT undefined streamed');
    const form = new FormData();
    form.set('pet', 'cat');
    const posted = await mesh.fetch(url, { method: 'POST', body: form });
    assert.match(await posted.text(), /name="pet"[\s\S]*cat/);
    const r: Response = await mesh.fetch(url);
    assert.equal(r.status, 200);
  });
});
