import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { request } from 'undici';
import { createMesh } from '../../src/index.js';
import { startServer } from '../helpers/http-servers.js';
import { calculateService } from '../helpers/mesh-config.js';

describe('createMesh({ admin }) serves Envoy-style admin endpoints on loopback', () => {
  it('exposes /stats/prometheus, /metrics, /config_dump, /clusters and /ready', async () => {
    const up = await startServer('cat');
    const mesh = await createMesh({ workload: { name: 'client', labels: { app: 'client' } }, config: calculateService([{ port: up.port, version: 'cat-plus' }]), admin: { port: 0 } });
    try {
      assert.equal(await (await mesh.fetch('http://calculate:8000/')).text(), 'cat');
      const base = `http://127.0.0.1:${mesh.admin!.port}`;
      const get = async (path: string) => {
        const res = await request(`${base}${path}`);
        return { status: res.statusCode, body: await res.body.text() };
      };
      const prom = await get('/stats/prometheus');
      assert.equal(prom.status, 200);
      assert.match(prom.body, /istio_requests_total\{[^}]*reporter="source"[^}]*destination_service="calculate.default.svc.cluster.local"[^}]*\} 1/);
      assert.equal((await get('/metrics')).body, prom.body);
      const dump = JSON.parse((await get('/config_dump')).body) as { clusters: Array<{ name: string }> };
      assert.ok(dump.clusters.some((c) => c.name === 'outbound|8000||calculate.default.svc.cluster.local'));
      assert.match((await get('/clusters')).body, new RegExp(`127.0.0.1:${up.port}`));
      assert.equal((await get('/ready')).status, 200);
    } finally {
      await mesh.close();
      await up.close();
    }
  });
});
