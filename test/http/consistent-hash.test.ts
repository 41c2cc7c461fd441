/**
 * DestinationRule consistentHash over real loopback servers: header, cookie
 * (generated with Set-Cookie when the ttl is set), query parameter and source
 * IP keys keep a client on one endpoint; the translation is istiod's (cluster
 * lb_policy + route hash_policy); the same resources arriving over ADS from
 * our control plane balance the same way.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createMesh, MeshConfigError, seededRandom, type Mesh } from '../../src/index.js';
import { createControlPlane } from '../../src/control-plane/index.js';
import { startServer, type TestServer } from '../helpers/http-servers.js';
import { docs, meshService } from '../helpers/mesh-config.js';
import { configDir } from '../control-plane/helpers.js';

const URL_ = 'http://shop.default.svc.cluster.local:8000/cart';

function rule(loadBalancer: string, name = 'shop'): string {
  return `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: default }
spec:
  host: shop
  trafficPolicy:
    loadBalancer:
${loadBalancer.split('\n').map((l) => `      ${l}`).join('\n')}
`;
}

describe('consistentHash over real servers', () => {
  let servers: TestServer[];
  let service: string;

  before(async () => {
    servers = await Promise.all(['a', 'b', 'c', 'd'].map((n) => startServer(n)));
    service = meshService('shop', servers.map((s, i) => ({ port: s.port, version: `v${i}` })), 8000, 'HTTP');
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  async function get(mesh: Mesh, url = URL_, headers: Record<string, string> = {}): Promise<{ body: string; setCookie: string | string[] | undefined }> {
    const res = await mesh.request(url, { headers });
    return { body: await res.body.text(), setCookie: res.headers['set-cookie'] };
  }

  /** Sends `perKey` requests for each of `keys` keys; returns the endpoint each key reached (asserting it is always the same). */
  async function stickiness(mesh: Mesh, keys: number, perKey: number, request: (key: string) => Promise<string>): Promise<Map<string, string>> {
    const reached = new Map<string, string>();
    for (let k = 0; k < keys; k++) {
      const key = `user-${k}`;
      const bodies = await Promise.all(Array.from({ length: perKey }, () => request(key)));
      assert.equal(new Set(bodies).size, 1, `${key} reached ${bodies.join(',')}`);
      reached.set(key, bodies[0]!);
    }
    return reached;
  }

  it('httpHeaderName: every request of a user reaches one endpoint; 40 users spread over the endpoints', async () => {
    const mesh = await createMesh({ random: seededRandom(1), config: docs(service, rule('consistentHash: { httpHeaderName: x-user }')) });
    try {
      const reached = await stickiness(mesh, 40, 8, async (key) => (await get(mesh, URL_, { 'x-user': key })).body);
      assert.ok(new Set(reached.values()).size >= 3, `users reached only ${[...new Set(reached.values())]}`);
      const dump = mesh.configDump();
      const cluster = dump.clusters.find((c) => c.name === 'outbound|8000||shop.default.svc.cluster.local')!;
      assert.equal(cluster.lb_policy, 'RING_HASH');
      assert.deepEqual(cluster.ring_hash_lb_config, { minimum_ring_size: { value: 1024 } });
      const route = dump.routes.find((r) => r.name === 'shop.default.svc.cluster.local:8000')!.virtual_hosts[0]!.routes[0]!;
      assert.deepEqual(route.route!.hash_policy, [{ header: { header_name: 'x-user' } }]);
    } finally {
      await mesh.close();
    }
  });

  it('httpCookie with ttl: the mesh sets the cookie on the first response, and the cookie keeps the client on its endpoint', async () => {
    const mesh = await createMesh({ random: seededRandom(2), config: docs(service, rule('consistentHash: { httpCookie: { name: session, path: /, ttl: 60s } }')) });
    try {
      const first = await get(mesh);
      const setCookie = String(first.setCookie);
      const m = /^session="([0-9a-f]{16})"; Max-Age=60; Path=\/; HttpOnly$/.exec(setCookie);
      assert.ok(m, `Set-Cookie: ${setCookie}`);
      for (let i = 0; i < 20; i++) {
        const next = await get(mesh, URL_, { cookie: `other=1; session="${m[1]}"` });
        assert.equal(next.body, first.body);
        assert.equal(next.setCookie, undefined, 'no new cookie when the request carries one');
      }
      // Different sessions spread over the endpoints.
      const firsts = await Promise.all(Array.from({ length: 40 }, () => get(mesh)));
      assert.ok(new Set(firsts.map((f) => f.body)).size >= 3);
    } finally {
      await mesh.close();
    }
  });

  it('httpCookie without ttl: no cookie is generated, a request without one is balanced at random', async () => {
    const mesh = await createMesh({ random: seededRandom(3), config: docs(service, rule('consistentHash: { httpCookie: { name: session } }')) });
    try {
      const answers = await Promise.all(Array.from({ length: 40 }, () => get(mesh)));
      assert.ok(answers.every((a) => a.setCookie === undefined));
      assert.ok(new Set(answers.map((a) => a.body)).size >= 3);
      const sticky = await stickiness(mesh, 10, 6, async (key) => (await get(mesh, URL_, { cookie: `session=${key}` })).body);
      assert.equal(sticky.size, 10);
    } finally {
      await mesh.close();
    }
  });

  it('httpQueryParameterName with maglev: a query parameter keys the pick', async () => {
    const mesh = await createMesh({ random: seededRandom(4), config: docs(service, rule('consistentHash: { httpQueryParameterName: user, maglev: { tableSize: 1009 } }')) });
    try {
      const reached = await stickiness(mesh, 30, 6, async (key) => (await get(mesh, `${URL_}?x=1&user=${key}`)).body);
      assert.ok(new Set(reached.values()).size >= 3);
      const cluster = mesh.configDump().clusters.find((c) => c.name === 'outbound|8000||shop.default.svc.cluster.local')!;
      assert.equal(cluster.lb_policy, 'MAGLEV');
      assert.deepEqual(cluster.maglev_lb_config, { table_size: { value: 1009 } });
    } finally {
      await mesh.close();
    }
  });

  it('useSourceIp: all of a workload\'s calls reach one endpoint (a sidecar hashes the pod\'s address)', async () => {
    const mesh = await createMesh({ random: seededRandom(5), config: docs(service, rule('consistentHash: { useSourceIp: true }')) });
    try {
      const bodies = await Promise.all(Array.from({ length: 40 }, async () => (await get(mesh)).body));
      assert.equal(new Set(bodies).size, 1, bodies.join(','));
    } finally {
      await mesh.close();
    }
  });

  it('refuses what istiod refuses: a Maglev table size that is not prime, two hash keys, a cookie without a name', async () => {
    const cases: Array<[string, string]> = [
      ['consistentHash: { httpHeaderName: x, maglev: { tableSize: 1000 } }', 'maglev.tableSize'],
      ['consistentHash: { httpHeaderName: x, useSourceIp: true }', 'consistentHash'],
      ['consistentHash: { httpCookie: { ttl: 1s } }', 'httpCookie.name'],
    ];
    for (const [lb, field] of cases) {
      await assert.rejects(createMesh({ config: docs(service, rule(lb)) }), (err: unknown) => {
        assert.ok(err instanceof MeshConfigError, String(err));
        assert.equal(err.kind, 'DestinationRule');
        assert.match(err.path ?? '', new RegExp(field.replace('.', '\\.')), `${lb}: ${err.message}`);
        return true;
      });
    }
  });

  it('over ADS from the control plane: the same RING_HASH cluster and hash_policy keep users on their endpoints', async () => {
    const cfg = await configDir({ 'shop.yaml': docs(service, rule('consistentHash: { httpHeaderName: x-user, ringHash: { minimumRingSize: 2048 } }')) });
    const cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', log: () => {}, debounceMs: 50 });
    const mesh = await createMesh({ workload: { name: 'client', namespace: 'default', labels: { app: 'client' } }, xds: { server: `127.0.0.1:${cp.port}`, initialFetchTimeoutMs: 2000 } });
    try {
      const cluster = mesh.configDump().clusters.find((c) => c.name === 'outbound|8000||shop.default.svc.cluster.local');
      assert.equal(cluster?.lb_policy, 'RING_HASH');
      // Embedded mode with the same YAML picks the same endpoint per user: one translation, one balancer.
      const embedded = await createMesh({ config: docs(service, rule('consistentHash: { httpHeaderName: x-user, ringHash: { minimumRingSize: 2048 } }')) });
      try {
        const viaAds = await stickiness(mesh, 20, 4, async (key) => (await get(mesh, URL_, { 'x-user': key })).body);
        const local = await stickiness(embedded, 20, 1, async (key) => (await get(embedded, URL_, { 'x-user': key })).body);
        assert.deepEqual([...viaAds], [...local]);
      } finally {
        await embedded.close();
      }
    } finally {
      await mesh.close();
      await cp.close();
      await cfg.remove();
    }
  });
});
