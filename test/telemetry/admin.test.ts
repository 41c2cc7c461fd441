import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAdminServer } from '../../src/telemetry/admin.js';
import { IstioMetrics } from '../../src/telemetry/metrics.js';
import { find, parseExposition } from './exposition.js';

test('admin server: /stats/prometheus, /metrics, /config_dump, /clusters, /ready over real HTTP', async () => {
  const metrics = new IstioMetrics();
  metrics.series({ reporter: 'destination', response_code: '200' }).record(1, 2, 3);
  let ready = false;
  const admin = await createAdminServer({
    port: 0,
    handlers: {
      metrics: () => metrics.text(),
      configDump: () => ({ version: '1', clusters: [{ name: 'outbound|8000||calc' }] }),
      clusters: () => 'outbound|8000||calc::10.0.0.1:8000::health_flags::healthy\n',
      ready: () => ready,
    },
  });
  try {
    assert.equal(admin.host, '127.0.0.1');
    const base = `http://127.0.0.1:${admin.port}`;
    for (const path of ['/stats/prometheus', '/metrics']) {
      const res = await fetch(base + path);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
      assert.equal(find(parseExposition(await res.text()), 'istio_requests_total', { reporter: 'destination' })[0]!.value, 1);
    }
    const dump = await fetch(`${base}/config_dump`);
    assert.equal(dump.headers.get('content-type'), 'application/json');
    assert.deepEqual(await dump.json(), { version: '1', clusters: [{ name: 'outbound|8000||calc' }] });
    assert.match(await (await fetch(`${base}/clusters`)).text(), /::health_flags::healthy/);
    let r = await fetch(`${base}/ready`);
    assert.equal(r.status, 503);
    assert.equal(await r.text(), 'PRE_INITIALIZING\n');
    ready = true;
    r = await fetch(`${base}/ready`);
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'LIVE\n');
    r = await fetch(`${base}/metrics`, { method: 'HEAD' });
    assert.equal(r.status, 200);
    assert.equal(await r.text(), '');
    assert.equal((await fetch(`${base}/nope`)).status, 404);
    r = await fetch(`${base}/metrics`, { method: 'POST' });
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'GET, HEAD');
  } finally {
    await admin.close();
    await admin.close();
    metrics.close();
  }
});

test('admin server: a failing handler answers 500, endpoints without handlers are 404', async () => {
  const admin = await createAdminServer({ port: 0, handlers: { metrics: () => { throw new Error('boom'); } } });
  try {
    const base = `http://127.0.0.1:${admin.port}`;
    const r = await fetch(`${base}/metrics`);
    assert.equal(r.status, 500);
    assert.equal(await r.text(), 'boom\n');
    assert.equal((await fetch(`${base}/config_dump`)).status, 404);
    assert.equal((await fetch(`${base}/ready`)).status, 200);
  } finally {
    await admin.close();
  }
});
