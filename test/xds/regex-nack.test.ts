/**
 * Over xDS a regex RE2 refuses is a NACK whose error_detail names the
 * resource and field (Envoy NACKs such a RouteConfiguration the same way),
 * and the last good routes keep serving.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URL } from '../../src/config/envoy.js';
import { compileSnapshot, selectRoute, type Snapshot } from '../../src/core/snapshot.js';
import { createAdsClient } from '../../src/xds/ads-client.js';
import { sampleResources, startFakeAds, type RecordedRequest } from './fake-ads-server.js';

const workload = { name: 'client', namespace: 'default', labels: { app: 'client' }, address: '127.0.0.1', ports: {} };
const isType = (url: string) => (r: RecordedRequest) => r.type_url === url;

test('a safe_regex with lookahead is NACKed with its field path; a nested quantifier is accepted and matches promptly', async (t) => {
  const server = await startFakeAds();
  let snapshot: Snapshot | undefined;
  const c = createAdsClient({
    server: `127.0.0.1:${server.port}`,
    workload,
    backoff: { initialMs: 30, maxMs: 200 },
    // What the mesh does with a delivery: compile it; a throw becomes the NACK.
    onResources: (r, v) => { snapshot = compileSnapshot(r, v); },
  });
  t.after(async () => { await c.close(); server.close(); });
  await server.next(isType(TYPE_URL.cluster));
  const good = sampleResources();
  server.respond(TYPE_URL.listener, '1', 'l1', good.listeners);
  server.respond(TYPE_URL.cluster, '1', 'c1', good.clusters);
  await server.next((r) => r.type_url === TYPE_URL.route && (r.resource_names?.length ?? 0) > 0);
  server.respond(TYPE_URL.endpoint, '1', 'e1', good.endpoints);
  server.respond(TYPE_URL.route, '1', 'r1', good.routes);
  await c.ready();

  const routesWith = (regex: string) => {
    const routes = sampleResources().routes;
    const vh = routes[0]!.virtual_hosts[0]!;
    vh.routes = [{ match: { safe_regex: { regex } }, route: { cluster: 'outbound|9000||calculate.default.svc.cluster.local' } }];
    return routes;
  };
  const from = server.requests.length;
  server.respond(TYPE_URL.route, '2', 'r2', routesWith('/a(?=b)'));
  const nack = await server.next((r) => r.response_nonce === 'r2', from);
  assert.equal(nack.version_info, '1');
  assert.match(nack.error_detail?.message ?? '', /virtual_hosts\[0\]\.routes\[0\]\.match\.safe_regex\.regex/);
  assert.match(nack.error_detail?.message ?? '', /lookahead and lookbehind are not RE2 syntax/);
  assert.equal(snapshot?.version, 'LDS=1,RDS=1,CDS=1,EDS=1', 'the last good set keeps serving');

  server.respond(TYPE_URL.route, '3', 'r3', routesWith('/(a+)+$'));
  const ack = await server.next((r) => r.response_nonce === 'r3', from);
  assert.equal(ack.error_detail, undefined);
  const vhost = snapshot!.virtualHost('calculate.default.svc.cluster.local', 9000)!;
  const path = `/${'a'.repeat(100_000)}b`;
  assert.equal(selectRoute(vhost, { method: 'GET', path, query: '', header: () => undefined }), undefined);
});
