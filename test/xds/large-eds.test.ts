/**
 * Large endpoint sets over a real ADS stream and through mesh.apply (#16
 * item 5): the install spans many turns of the event loop, requests started
 * meanwhile are served by the snapshot in force (a live loop against
 * 127.0.0.1 loses nothing), the ACK comes after the install, and a cluster
 * whose resources arrive unchanged keeps its compiled form.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TYPE_URL, type ClusterLoadAssignment, type EnvoyResources } from '../../src/config/envoy.js';
import { createMesh, type Mesh } from '../../src/index.js';
import { startServer } from '../helpers/http-servers.js';
import { sampleResources, serveChain, startFakeAds } from './fake-ads-server.js';

const SMALL = 'outbound|9000||calculate.default.svc.cluster.local';
const BIG = 'outbound|9000||big.default.svc.cluster.local';
const ENDPOINTS = 20_000;

function big(weight: number): ClusterLoadAssignment {
  const lb_endpoints = [];
  for (let i = 0; i < ENDPOINTS; i++) lb_endpoints.push({ endpoint: { address: { socket_address: { address: `10.1.${i >> 8}.${i & 255}`, port_value: 9000 } } }, load_balancing_weight: { value: weight } });
  return { cluster_name: BIG, endpoints: [{ locality: { region: 'r' }, lb_endpoints }] } as ClusterLoadAssignment;
}

/** Waits (generously bounded) for `condition`, checking every few milliseconds. */
async function until(condition: () => boolean, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Runs a loop of turns (setImmediate) while `pending()`; on each turn the
 * install is still going (`installing()`), it starts one request on the
 * mesh and counts it. Bounded: at most `max` requests.
 */
function liveLoop(mesh: Mesh, url: string, pending: () => boolean, installing: () => boolean, max = 200) {
  const results: Array<Promise<number>> = [];
  let turns = 0;
  let started = 0;
  const done = new Promise<void>((resolve) => {
    const turn = (): void => {
      if (!pending()) return resolve();
      if (installing()) {
        turns++;
        if (started < max) {
          started++;
          results.push(mesh.fetch(url).then(async (r) => { await r.arrayBuffer(); return r.status; }, () => -1));
        }
      }
      setImmediate(turn);
    };
    setImmediate(turn);
  });
  return { done, results: () => Promise.all(results), turns: () => turns };
}

test('a 20,000-endpoint EDS push installs over many event-loop turns while requests keep flowing; the ACK follows the install', async (t) => {
  const upstream = await startServer('calculate');
  const server = await startFakeAds();
  const base = sampleResources({ cluster: SMALL, port: upstream.port });
  const vhost = base.routes[0]!.virtual_hosts[0]!;
  const set: EnvoyResources = {
    ...base,
    // the route names the big cluster, so the client subscribes to it (CDS and EDS by name, gRFC A27)
    routes: [{ ...base.routes[0]!, virtual_hosts: [{ ...vhost, routes: [{ match: { prefix: '/big' }, route: { cluster: BIG } }, ...vhost.routes] }] }],
    clusters: [...base.clusters, { name: BIG, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} }, service_name: BIG } }],
    endpoints: [...base.endpoints, big(1)],
  };
  const serving = serveChain(server, set, '1', 'init', 120_000);
  const mesh = await createMesh({ workload: { name: 'client', namespace: 'default' }, xds: { server: `127.0.0.1:${server.port}`, initialFetchTimeoutMs: 120_000 } });
  t.after(async () => { await mesh.close(); server.close(); await upstream.close(); });
  await serving;
  await until(() => mesh.snapshot.clusters.get(BIG)?.hosts.length === ENDPOINTS);
  const before = mesh.snapshot;
  const url = 'http://calculate.default.svc.cluster.local:9000/';
  assert.equal((await mesh.fetch(url)).status, 200);

  const from = server.requests.length;
  // Both assignments: the small one byte-for-byte as before, the big one with every weight changed.
  server.respond(TYPE_URL.endpoint, '2', 'push-2', [base.endpoints[0]!, big(2)]);
  const arrived = () => mesh.xdsStatus()?.types.EDS.nonce === 'push-2';
  const loop = liveLoop(mesh, url, () => mesh.snapshot === before, () => arrived() && mesh.snapshot === before);
  await loop.done;
  const ack = await server.next((r) => r.type_url === TYPE_URL.endpoint && r.response_nonce === 'push-2', from, 120_000);

  assert.ok(loop.turns() > 0, 'the event loop turned between the push arriving and the new snapshot taking over');
  const statuses = await loop.results();
  assert.ok(statuses.length > 0 && statuses.every((s) => s === 200), `requests started during the install: ${JSON.stringify(statuses.slice(0, 10))}`);
  assert.equal(ack.version_info, '2');
  assert.equal(ack.error_detail, undefined, 'ACK, not NACK');
  assert.equal(mesh.snapshot.clusters.get(BIG)!.hosts[0]!.weight, 2);
  assert.equal(mesh.snapshot.clusters.get(SMALL), before.clusters.get(SMALL), 'the unchanged assignment kept its compiled cluster');
  assert.equal((await mesh.fetch(url)).status, 200);
});

test('mesh.apply of a 20,000-endpoint ServiceEntry lets the loop turn while the old snapshot serves', async (t) => {
  const upstream = await startServer('calculate');
  const mesh = await createMesh({ workload: { name: 'client', namespace: 'default' } });
  t.after(async () => { await mesh.close(); await upstream.close(); });
  const calculate = {
    apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'calculate', namespace: 'default' },
    spec: { hosts: ['calculate.example.com'], ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: upstream.port }], resolution: 'STATIC', location: 'MESH_INTERNAL', endpoints: [{ address: '127.0.0.1' }] },
  };
  const bigEntry = {
    apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'big', namespace: 'default' },
    spec: { hosts: ['big.example.com'], ports: [{ number: 9000, name: 'http', protocol: 'HTTP' }], resolution: 'STATIC', location: 'MESH_INTERNAL',
      endpoints: Array.from({ length: ENDPOINTS }, (_, i) => ({ address: `10.2.${i >> 8}.${i & 255}`, labels: { version: i % 2 ? 'v1' : 'v2' } })) },
  };
  await mesh.apply([calculate]);
  const url = 'http://calculate.example.com/';
  assert.equal((await mesh.fetch(url)).status, 200);
  const before = mesh.snapshot;
  let applied = false;
  const applying = mesh.apply([calculate, bigEntry]).finally(() => { applied = true; });
  const loop = liveLoop(mesh, url, () => !applied, () => !applied && mesh.snapshot === before);
  await applying;
  await loop.done;
  assert.ok(loop.turns() > 0, 'turns of the loop ran during the apply with the old snapshot in force');
  const statuses = await loop.results();
  assert.ok(statuses.length > 0 && statuses.every((s) => s === 200), JSON.stringify(statuses.slice(0, 10)));
  assert.equal([...mesh.snapshot.clusters.values()].find((c) => c.name.includes('big.example.com'))?.hosts.length, ENDPOINTS);
});
