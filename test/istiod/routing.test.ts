// Against a replayed istiod (fake-istiod.ts serving istiod's grpc-generator output for a Bookinfo-like mesh,
// test/fixtures/istiod/bookinfo.json), meshlet routes as istiod configures it: weighted split, header match,
// short names, fault abort and delay, timeout, retries, subsets, a gRPC route — and never subscribes CDS wildcard.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, Metadata } from '@grpc/grpc-js';
import { CalculateClient } from '../../examples/grpc/proto.js';
import { TYPE_URL } from '../../src/config/envoy.js';
import { inboundListener } from '../../src/core/listener-role.js';
import { seededRandom } from '../../src/core/random.js';
import { createMesh, type Mesh } from '../../src/index.js';
import { fromStruct } from '../../src/xds/node.js';
import { startGrpcServer, type GrpcTestServer } from '../helpers/grpc-servers.js';
import { startServer, tally, type TestServer } from '../helpers/http-servers.js';
import { loadBookinfo, startFakeIstiod, type FakeIstiod } from './fake-istiod.js';

const fixture = loadBookinfo() as unknown as { services: Array<{ host: string; pods: Array<{ name: string; ip: string }> }> };
const workload = { name: 'productpage', namespace: 'default', labels: { app: 'productpage', version: 'v1' }, serviceAccount: 'bookinfo-productpage' };
const servers = new Map<string, TestServer>();
const grpcServers = new Map<string, GrpcTestServer>();
let istiod: FakeIstiod;
let mesh: Mesh;
let firstConfigMs = 0;
let flakyFailures = 0;

before(async () => {
  const pods: Record<string, number> = {};
  for (const svc of fixture.services) {
    for (const pod of svc.pods) {
      if (svc.host.startsWith('calculate.')) {
        // `end-user: slow` is answered after 3 s: the route's 0.3 s timeout (max_stream_duration) must end it first
        const g = await startGrpcServer(pod.name.endsWith('v1') ? 'v1' : 'v2', {
          unary: async (call) => { if (call.metadata.get('end-user')[0] === 'slow') await new Promise((r) => setTimeout(r, 3000).unref()); return undefined; },
        });
        grpcServers.set(pod.name, g);
        pods[pod.ip] = g.port;
        continue;
      }
      const s = await startServer(pod.name, (req, res, self) => {
        if (req.url?.startsWith('/slow')) return; // never answers: the route timeout must
        if (req.url?.startsWith('/flaky') && flakyFailures > 0) {
          flakyFailures--;
          res.statusCode = 503;
          return res.end('try again');
        }
        res.end(self.name);
      });
      servers.set(pod.name, s);
      pods[pod.ip] = s.port;
    }
  }
  istiod = await startFakeIstiod(pods);
  const started = performance.now();
  mesh = await createMesh({ workload, xds: { server: `127.0.0.1:${istiod.port}` }, random: seededRandom(15) });
  firstConfigMs = performance.now() - started;
});

after(async () => {
  await mesh?.close();
  await istiod?.close();
  for (const s of servers.values()) await s.close();
  for (const g of grpcServers.values()) await g.close();
});

const hit = (name: string) => servers.get(name)!.hits;
async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; flags: string | null }> {
  const res = await mesh.fetch(url, { headers });
  return { status: res.status, body: await res.text(), flags: res.headers.get('x-meshlet-flags') };
}

test('first config arrives over the named chain, with no wildcard CDS', (t) => {
  t.diagnostic(`time to first config against the replayed istiod: ${firstConfigMs.toFixed(1)} ms (first mesh in the process), ${mesh.configDump().clusters.length} clusters`);
  const cds = istiod.requests.filter((r) => r.type_url === TYPE_URL.cluster);
  assert.ok(cds.length > 0, 'CDS was asked for');
  for (const r of cds) assert.ok(r.resource_names.length > 0, `a CDS request without names: ${JSON.stringify(r)}`);
  const lds = istiod.requests.find((r) => r.type_url === TYPE_URL.listener)!;
  assert.deepEqual(lds.resource_names, [], 'LDS wildcard, which istiod answers with every outbound listener');
  const meta = fromStruct(lds.node!.metadata as never);
  assert.equal(meta.GENERATOR, 'grpc');
  assert.equal(meta.CLUSTER_ID, mesh.nodeIdentity.clusterId);
  // Only the clusters routes reference: subsets, never the unreferenced default clusters.
  const asked = new Set(cds.flatMap((r) => r.resource_names));
  assert.ok(asked.has('outbound|9080|v3|reviews.default.svc.cluster.local'));
  assert.ok(!asked.has('outbound|9080||reviews.default.svc.cluster.local'), 'the default reviews cluster is referenced by no route');
  const dump = mesh.configDump();
  assert.equal(dump.listeners.filter((l) => l.address !== undefined && l.api_listener !== undefined).length, 5, 'five addressed api_listeners (grpcgen shape)');
});

test('weighted split v1 50 / v2 30 / v3 20 holds within ±3 points over 2,000 requests', async () => {
  const bodies: string[] = [];
  const total = 2000;
  for (let i = 0; i < total; i += 50) {
    const batch = await Promise.all(Array.from({ length: 50 }, () => get('http://reviews.default.svc.cluster.local:9080/')));
    for (const r of batch) bodies.push(r.body);
  }
  const counts = tally(bodies);
  for (const [name, weight] of [['reviews-v1', 50], ['reviews-v2', 30], ['reviews-v3', 20]] as const) {
    const pct = (100 * (counts[name] ?? 0)) / total;
    assert.ok(Math.abs(pct - weight) <= 3, `${name}: ${pct.toFixed(1)} % (want ${weight} ± 3): ${JSON.stringify(counts)}`);
  }
});

test('header match: end-user: jason goes to reviews v2 only', async () => {
  const before = { v1: hit('reviews-v1'), v3: hit('reviews-v3') };
  for (let i = 0; i < 20; i++) assert.equal((await get('http://reviews.default.svc.cluster.local:9080/', { 'end-user': 'jason' })).body, 'reviews-v2');
  assert.equal(hit('reviews-v1'), before.v1);
  assert.equal(hit('reviews-v3'), before.v3);
});

test('short names resolve through the virtual host domains istiod generates', async () => {
  for (const url of ['http://reviews:9080/', 'http://reviews.default:9080/', 'http://reviews.default.svc:9080/']) {
    assert.equal((await get(url, { 'end-user': 'jason' })).body, 'reviews-v2', url);
  }
});

test('named LDS (gRFC A27): short listener names are expanded by istiod and route the same', async (t) => {
  const started = performance.now();
  const named = await createMesh({ workload, xds: { server: `127.0.0.1:${istiod.port}`, listeners: ['reviews:9080', 'ratings'] } });
  t.diagnostic(`time to first config, named LDS, second mesh in the process: ${(performance.now() - started).toFixed(1)} ms`);
  t.after(() => named.close());
  assert.deepEqual(named.configDump().listeners.map((l) => l.name).sort(), ['ratings:9080', 'reviews:9080']);
  assert.equal((await named.fetch('http://reviews:9080/', { headers: { 'end-user': 'jason' } }).then((r) => r.text())), 'reviews-v2');
  assert.equal((await named.fetch('http://ratings:9080/').then((r) => r.text())), 'ratings-v1');
});

test('fault abort: end-user jason gets ratings 500 FI without reaching ratings', async () => {
  const before = hit('ratings-v1');
  const aborted = await get('http://ratings:9080/ratings/0', { 'end-user': 'jason' });
  assert.equal(aborted.status, 500);
  assert.equal(aborted.flags, 'FI');
  assert.equal(hit('ratings-v1'), before);
  const ok = await get('http://ratings:9080/ratings/0');
  assert.equal(ok.status, 200);
  assert.equal(ok.body, 'ratings-v1');
});

test('fault delay: details answers after the 0.3 s delay, flagged DI (RING_HASH cluster with a hash_policy)', async () => {
  const started = performance.now();
  const r = await get('http://details:9080/details/0', { 'x-user': 'a' });
  const elapsed = performance.now() - started;
  assert.equal(r.status, 200);
  assert.equal(r.body, 'details-v1');
  assert.equal(r.flags, 'DI');
  assert.ok(elapsed >= 290, `answered after ${elapsed.toFixed(0)} ms, before the delay`);
});

test('timeout: productpage /slow answers 504 UT after the 0.5 s route timeout', async () => {
  const started = performance.now();
  const r = await get('http://productpage:9080/slow');
  const elapsed = performance.now() - started;
  assert.equal(r.status, 504);
  assert.equal(r.flags, 'UT');
  assert.ok(elapsed >= 450, `timed out after ${elapsed.toFixed(0)} ms`);
});

test('retries: /flaky succeeds on the third try; each try carries x-envoy-attempt-count', async () => {
  flakyFailures = 2;
  const before = hit('productpage-v1');
  const r = await get('http://productpage:9080/flaky');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'productpage-v1');
  assert.equal(hit('productpage-v1') - before, 3);
  assert.equal(servers.get('productpage-v1')!.lastHeaders!['x-envoy-attempt-count'], '3');
});

test('subsets: each subset cluster holds only its pods, and requests land on them', async () => {
  const dump = mesh.configDump();
  const eds = new Map(dump.endpoints.map((e) => [e.cluster_name, e.endpoints.flatMap((g) => g.lb_endpoints.map((l) => Number(l.endpoint.address.socket_address.port_value)))]));
  for (const v of ['v1', 'v2', 'v3']) {
    assert.deepEqual(eds.get(`outbound|9080|${v}|reviews.default.svc.cluster.local`), [servers.get(`reviews-${v}`)!.port]);
  }
  const before = hit('ratings-v1');
  for (let i = 0; i < 5; i++) assert.equal((await get('http://ratings.default.svc.cluster.local:9080/')).body, 'ratings-v1');
  assert.equal(hit('ratings-v1') - before, 5);
});

test('gRPC: mesh.grpc.clientOptions() follows the same routes (header match → v2 subset, default → v1)', async (t) => {
  const client = new CalculateClient('calculate.default.svc.cluster.local:9000', credentials.createInsecure(), mesh.grpc.clientOptions());
  t.after(() => client.close());
  const call = (metadata: Metadata) => new Promise<{ value: number; version: string }>((resolve, reject) =>
    client.Calculate({ x: 3, y: 4 }, metadata, (err: Error | null, res?: { value: number; version: string }) => (err ? reject(err) : resolve(res!))));
  assert.deepEqual(await call(new Metadata()), { value: 7, version: 'v1' });
  const jason = new Metadata();
  jason.set('end-user', 'jason');
  assert.deepEqual(await call(jason), { value: 12, version: 'v2' });
  // istiod's proxyless timeout is max_stream_duration (gRFC A31): with or without a caller deadline
  const slow = new Metadata();
  slow.set('end-user', 'slow');
  for (const deadline of [undefined, Date.now() + 60_000]) {
    const started = performance.now();
    const err = await new Promise<Error & { code?: number; details?: string }>((resolve, reject) =>
      client.Calculate({ x: 1, y: 1 }, slow, deadline === undefined ? {} : { deadline }, (e: (Error & { code?: number }) | null) => (e ? resolve(e) : reject(new Error('answered')))));
    const elapsed = performance.now() - started;
    assert.equal(err.code, 4, `DEADLINE_EXCEEDED, got ${err.code} ${err.details}`);
    assert.match(err.details ?? '', /upstream request timeout/);
    assert.ok(elapsed >= 250, `ended after ${elapsed.toFixed(0)} ms`);
  }
});

test('inbound listener: with xds.serverPorts the istiod-named inbound listener is subscribed and reaches the snapshot', async (t) => {
  const from = istiod.requests.length;
  const server = await createMesh({ workload, xds: { server: `127.0.0.1:${istiod.port}`, serverPorts: [9080] } });
  t.after(() => server.close());
  const name = 'xds.istio.io/grpc/lds/inbound/0.0.0.0:9080';
  const lds = istiod.requests.slice(from).filter((r) => r.type_url === TYPE_URL.listener);
  assert.ok(lds.some((r) => r.resource_names.includes(name) && r.resource_names.includes('reviews.default.svc.cluster.local:9080')),
    `LDS names the inbound listener next to the outbound ones: ${JSON.stringify(lds.map((r) => r.resource_names))}`);
  await waitFor(() => inboundListener(server.configDump().listeners)?.name === name, 'the inbound listener in the snapshot');
  assert.equal((await server.fetch('http://reviews:9080/', { headers: { 'end-user': 'jason' } }).then((r) => r.text())), 'reviews-v2', 'outbound routing unchanged');
});

async function waitFor(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
