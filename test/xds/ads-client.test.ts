import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TYPE_URL, type EnvoyResources } from '../../src/config/envoy.js';
import { createAdsClient, type AdsClient, type AdsClientOptions } from '../../src/xds/ads-client.js';
import { fromStruct } from '../../src/xds/node.js';
import { sampleResources, startFakeAds, type FakeAdsServer, type RecordedRequest } from './fake-ads-server.js';

const workload = { name: 'client', namespace: 'default', labels: { app: 'client', version: 'v1' }, serviceAccount: 'client-sa', address: '127.0.0.1', ports: { http: 8080 } };
const isType = (url: string) => (r: RecordedRequest) => r.type_url === url;
const LDS = TYPE_URL.listener, RDS = TYPE_URL.route, CDS = TYPE_URL.cluster, EDS = TYPE_URL.endpoint;

function client(server: FakeAdsServer, sets: Array<{ r: EnvoyResources; v: string }>, extra: Partial<AdsClientOptions> = {}): AdsClient {
  return createAdsClient({
    server: `127.0.0.1:${server.port}`,
    workload,
    backoff: { initialMs: 30, maxMs: 200 },
    onResources: (r, v) => { sets.push({ r, v }); },
    ...extra,
  });
}

/**
 * Serves the whole sample set at `version` with nonces prefixed by `tag`, following the client's
 * named chain (LDS → RDS → CDS → EDS, gRFC A27) and waiting for each ACK.
 */
async function serveAll(server: FakeAdsServer, version: string, tag: string, resources = sampleResources()): Promise<void> {
  const from = server.requests.length;
  const named = (url: string) => (r: RecordedRequest) => r.type_url === url && (r.resource_names?.length ?? 0) > 0;
  server.respond(LDS, version, `${tag}-l`, resources.listeners);
  await server.next(named(RDS), 0);
  server.respond(RDS, version, `${tag}-r`, resources.routes);
  await server.next(named(CDS), 0);
  server.respond(CDS, version, `${tag}-c`, resources.clusters);
  await server.next(named(EDS), 0);
  server.respond(EDS, version, `${tag}-e`, resources.endpoints);
  await server.next((r) => r.type_url === EDS && r.response_nonce === `${tag}-e`, from);
  await server.next((r) => r.type_url === RDS && r.response_nonce === `${tag}-r`, from);
}

test('first request carries an Istio-style node; LDS wildcard, then RDS, CDS and EDS by name (no wildcard CDS)', async (t) => {
  const server = await startFakeAds();
  const sets: Array<{ r: EnvoyResources; v: string }> = [];
  const c = client(server, sets);
  t.after(async () => { await c.close(); server.close(); });

  const first = await server.next(() => true);
  assert.match(first.node!.id!, /^sidecar~127\.0\.0\.1~client-\d+\.default~default\.svc\.cluster\.local$/);
  assert.equal(first.node!.cluster, 'client.default');
  const meta = fromStruct(first.node!.metadata);
  assert.equal(meta.NAMESPACE, 'default');
  assert.equal(meta.WORKLOAD_NAME, 'client');
  assert.equal(meta.SERVICE_ACCOUNT, 'client-sa');
  assert.deepEqual(meta.LABELS, { app: 'client', version: 'v1' });
  assert.equal(meta.INSTANCE_IPS, '127.0.0.1');
  assert.equal(meta.MESHLET_PORTS, 'http:8080');
  assert.equal(typeof meta.ISTIO_VERSION, 'string');
  const lds = await server.next(isType(LDS));
  assert.deepEqual(lds.resource_names ?? [], []);

  await serveAll(server, '1', 'a');
  const rds = await server.next((r) => r.type_url === RDS && !r.response_nonce);
  assert.deepEqual(rds.resource_names, ['calculate.default.svc.cluster.local:9000']);
  const cdsRequests = server.requests.filter(isType(CDS));
  assert.ok(cdsRequests.length > 0);
  for (const r of cdsRequests) assert.deepEqual(r.resource_names, ['outbound|9000||calculate.default.svc.cluster.local'], 'CDS only by the names the routes reference');
  const eds = await server.next((r) => r.type_url === EDS && !r.response_nonce);
  assert.deepEqual(eds.resource_names, ['outbound|9000||calculate.default.svc.cluster.local']);
  assert.equal(sets.length, 1, 'one delivery once the set is complete');
  assert.equal(sets[0]!.v, 'LDS=1,RDS=1,CDS=1,EDS=1');
  assert.equal(sets[0]!.r.endpoints[0]!.cluster_name, 'outbound|9000||calculate.default.svc.cluster.local');
});

test('ACK carries the version and nonce; a rejected update is NACKed with the previous version and kept out', async (t) => {
  const server = await startFakeAds();
  const sets: Array<{ r: EnvoyResources; v: string }> = [];
  const nacks: string[] = [];
  const c = client(server, sets, {
    onResources: (r, v) => {
      const prefix = r.routes[0]?.virtual_hosts[0]?.routes[0]?.match.prefix;
      if (prefix === '/refused') throw new Error(`RouteConfiguration ${r.routes[0]!.name}: virtual_hosts[0].routes[0].match.prefix: refused "/refused"`);
      sets.push({ r, v });
    },
    onNack: (n) => nacks.push(n.message),
  });
  t.after(async () => { await c.close(); server.close(); });
  await server.next(isType(LDS));
  await serveAll(server, '1', 'a');

  const ack = await server.next((r) => r.response_nonce === 'a-l');
  assert.equal(ack.version_info, '1');
  assert.equal(ack.error_detail, undefined);

  // the consumer rejects v2 of the routes
  const from = server.requests.length;
  // (a route naming a cluster not yet fetched is not refused: the client ACKs it and asks CDS for that name)
  const bad = sampleResources();
  bad.routes[0]!.virtual_hosts[0]!.routes[0]!.match = { prefix: '/refused' };
  server.respond(RDS, '2', 'b-r', bad.routes);
  const nack = await server.next((r) => r.response_nonce === 'b-r', from);
  assert.equal(nack.version_info, '1', 'NACK sends the last accepted version');
  assert.ok(nack.error_detail, 'NACK has error_detail');
  assert.match(nack.error_detail!.message!, /RouteConfiguration calculate\.default\.svc\.cluster\.local:9000: virtual_hosts\[0\]\.routes\[0\]\.match\.prefix/);
  assert.equal(nacks.length, 1);
  assert.equal(sets.length, 1, 'the rejected set never reached the consumer');
  assert.equal(c.status().types.RDS.version, '1');
  assert.equal(c.status().lastNack?.rejectedVersion, '2');

  // a structurally invalid resource is NACKed before the consumer sees it
  const zero = sampleResources({ weightsZero: true });
  server.respond(RDS, '3', 'c-r', zero.routes);
  const nack2 = await server.next((r) => r.response_nonce === 'c-r', from);
  assert.equal(nack2.version_info, '1');
  assert.match(nack2.error_detail!.message!, /weighted_clusters: sum of weights is 0/);

  // a good v4 is accepted again
  server.respond(RDS, '4', 'd-r', sampleResources().routes);
  const ack4 = await server.next((r) => r.response_nonce === 'd-r', from);
  assert.equal(ack4.version_info, '4');
  assert.equal(ack4.error_detail, undefined);
  assert.equal(sets.length, 2);
  assert.equal(sets[1]!.v, 'LDS=1,RDS=4,CDS=1,EDS=1');
});

test('an incomplete set is delivered after the fetch timeout and names what is missing', async (t) => {
  const server = await startFakeAds();
  const sets: Array<{ r: EnvoyResources; v: string }> = [];
  const c = client(server, sets, { initialFetchTimeoutMs: 100 });
  t.after(async () => { await c.close(); server.close(); });
  await server.next(isType(LDS));
  const s = sampleResources();
  server.respond(LDS, '1', 'l1', s.listeners);
  await c.ready();
  assert.equal(sets.length, 1);
  assert.equal(sets[0]!.r.routes.length, 0);
  assert.equal(sets[0]!.r.clusters.length, 0, 'no route arrived, so no cluster was named');
  assert.deepEqual(c.missing(), ['RouteConfiguration calculate.default.svc.cluster.local:9000']);
});

test('reconnects with backoff, re-subscribes with the accepted versions, keeps the set meanwhile; last-known-good on disk', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'meshlet-lkg-'));
  const lkg = join(dir, 'lkg.json');
  let server = await startFakeAds();
  const port = server.port;
  const sets: Array<{ r: EnvoyResources; v: string }> = [];
  const c = client(server, sets, { lastKnownGood: lkg });
  t.after(async () => { await c.close(); server.close(); await rm(dir, { recursive: true, force: true }); });
  await server.next(isType(LDS));
  await serveAll(server, '7', 'a');
  assert.equal(c.status().connected, true);

  server.close();
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(c.status().connected, false);
  assert.equal(sets.length, 1, 'no delivery while disconnected: the last good set keeps serving');

  server = await startFakeAds(port);
  const lds = await server.next(isType(LDS));
  assert.equal(lds.version_info, '7', 're-subscription carries the accepted version');
  assert.equal(lds.response_nonce ?? '', '', 'a new stream starts without a nonce');
  const rds = await server.next(isType(RDS));
  assert.deepEqual(rds.resource_names, ['calculate.default.svc.cluster.local:9000'], 'RDS names are re-sent at once');
  assert.ok(c.status().reconnects >= 1);

  await c.close();
  const saved = JSON.parse(await readFile(lkg, 'utf8')) as { version: string; resources: EnvoyResources };
  assert.equal(saved.version, 'LDS=7,RDS=7,CDS=7,EDS=7');

  // a new client with the server down starts on the file
  server.close();
  const sets2: Array<{ r: EnvoyResources; v: string }> = [];
  const c2 = createAdsClient({ server: `127.0.0.1:${port}`, workload, lastKnownGood: lkg, backoff: { initialMs: 1000 }, onResources: (r, v) => { sets2.push({ r, v }); } });
  await c2.ready();
  await c2.close();
  assert.equal(sets2[0]!.v, 'lkg:LDS=7,RDS=7,CDS=7,EDS=7');
  assert.equal(sets2[0]!.r.clusters[0]!.name, 'outbound|9000||calculate.default.svc.cluster.local');
});

test('a route that moves to another cluster re-subscribes CDS and EDS to the new names only (unsubscribing the old)', async (t) => {
  const server = await startFakeAds();
  const sets: Array<{ r: EnvoyResources; v: string }> = [];
  const c = client(server, sets);
  t.after(async () => { await c.close(); server.close(); });
  await server.next(isType(LDS));
  await serveAll(server, '1', 'a');
  const moved = sampleResources({ cluster: 'outbound|9000|v2|calculate.default.svc.cluster.local' });
  const from = server.requests.length;
  server.respond(RDS, '2', 'b-r', moved.routes);
  const cds = await server.next((r) => r.type_url === CDS && r.response_nonce === 'a-c', from);
  assert.deepEqual(cds.resource_names, ['outbound|9000|v2|calculate.default.svc.cluster.local'], 'CDS names follow the routes');
  assert.equal(sets.length, 1, 'the moved route waits for its cluster');
  server.respond(CDS, '2', 'b-c', moved.clusters);
  const eds = await server.next((r) => r.type_url === EDS && (r.resource_names ?? []).includes('outbound|9000|v2|calculate.default.svc.cluster.local'), from);
  assert.deepEqual(eds.resource_names, ['outbound|9000|v2|calculate.default.svc.cluster.local'], 'the old EDS name is dropped');
  server.respond(EDS, '2', 'b-e', moved.endpoints);
  await server.next((r) => r.type_url === EDS && r.response_nonce === 'b-e', from);
  assert.equal(sets.length, 2);
  assert.deepEqual(sets[1]!.r.clusters.map((x) => x.name), ['outbound|9000|v2|calculate.default.svc.cluster.local'], 'the unreferenced cluster is gone');
  assert.deepEqual(c.status().types.CDS.subscribed, ['outbound|9000|v2|calculate.default.svc.cluster.local']);
});
