/**
 * Locality failover over real loopback servers, as in Istio's "Locality
 * failover" task: the client in us-east/a prefers the endpoint of its own
 * zone; once outlier detection ejects it, traffic fails over to the other
 * region; without outlier detection there is no failover (istiod sets no
 * priorities) and both endpoints share the traffic. `distribute` splits by
 * locality weight.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createMesh, seededRandom, type Mesh } from '../../src/index.js';
import { startServer, tally, type TestServer } from '../helpers/http-servers.js';
import { docs } from '../helpers/mesh-config.js';

const URL_ = 'http://shop.default.svc.cluster.local:8000/';

describe('locality load balancing over real servers', () => {
  let local: TestServer;
  let remote: TestServer;
  let failing = false;

  before(async () => {
    local = await startServer('local', (_req, res, s) => {
      res.statusCode = failing ? 503 : 200;
      res.end(s.name);
    });
    remote = await startServer('remote');
  });
  after(async () => {
    await Promise.all([local.close(), remote.close()]);
  });

  const service = () => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }]
  endpoints:
    - { address: 127.0.0.1, ports: { http: ${local.port} }, locality: us-east/a }
    - { address: 127.0.0.1, ports: { http: ${remote.port} }, labels: { topology.kubernetes.io/region: eu-west, topology.kubernetes.io/zone: a } }
`;
  const rule = (trafficPolicy: string) => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: shop, namespace: default }
spec:
  host: shop
  trafficPolicy: ${trafficPolicy}
`;

  async function bodies(mesh: Mesh, n: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await mesh.request(URL_);
      out.push(`${res.statusCode}:${await res.body.text()}`);
    }
    return out;
  }

  it('with outlier detection: all traffic stays in the zone, then fails over to the other region when the local endpoint is ejected', async () => {
    failing = false;
    const mesh = await createMesh({
      random: seededRandom(1),
      workload: { name: 'client', namespace: 'default', locality: 'us-east/a' },
      config: docs(service(), rule('{ outlierDetection: { consecutive5xxErrors: 2, interval: 10s, baseEjectionTime: 60s, maxEjectionPercent: 100 } }')),
    });
    try {
      assert.deepEqual(tally(await bodies(mesh, 20)), { '200:local': 20 });
      const [p0, p1] = mesh.configDump().endpoints.find((e) => e.cluster_name === 'outbound|8000||shop.default.svc.cluster.local')!.endpoints.sort((a, b) => (a.priority ?? 0) - (b.priority ?? 0));
      assert.equal(p0!.priority, 0);
      assert.equal(p1!.priority, 1);
      failing = true;
      // Bounded: the local endpoint answers 503 until outlier detection ejects it (2 consecutive 5xx).
      const seen: string[] = [];
      for (let i = 0; i < 20 && seen.at(-1) !== '200:remote'; i++) seen.push(...(await bodies(mesh, 1)));
      assert.equal(seen.at(-1), '200:remote', seen.join(' '));
      assert.deepEqual(tally(await bodies(mesh, 20)), { '200:remote': 20 });
    } finally {
      failing = false;
      await mesh.close();
    }
  });

  it('without outlier detection istiod sets no priorities: both regions share the traffic', async () => {
    const mesh = await createMesh({
      random: seededRandom(2),
      workload: { name: 'client', namespace: 'default', locality: 'us-east/a' },
      config: docs(service(), rule('{ loadBalancer: { simple: ROUND_ROBIN } }')),
    });
    try {
      assert.deepEqual(tally(await bodies(mesh, 20)), { '200:local': 10, '200:remote': 10 });
    } finally {
      await mesh.close();
    }
  });

  it('distribute: 80 / 20 by locality weight (seeded, ±8 points over 400 requests)', async () => {
    const mesh = await createMesh({
      random: seededRandom(3),
      workload: { name: 'client', namespace: 'default', labels: { 'topology.kubernetes.io/region': 'us-east', 'topology.kubernetes.io/zone': 'a' } },
      config: docs(service(), rule('{ loadBalancer: { localityLbSetting: { distribute: [{ from: "us-east/*", to: { "us-east/*": 80, "eu-west/*": 20 } }] } } }')),
    });
    try {
      const counts = tally(await bodies(mesh, 400));
      const share = (counts['200:local'] ?? 0) / 400;
      assert.ok(Math.abs(share - 0.8) < 0.08, `local share ${share}`);
      assert.equal((counts['200:local'] ?? 0) + (counts['200:remote'] ?? 0), 400);
    } finally {
      await mesh.close();
    }
  });
});
