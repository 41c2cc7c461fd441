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
import { sampleResources, serveChain, startFakeAds } from './fake-ads-server.js';

const workload = { name: 'client', namespace: 'default', labels: { app: 'client' }, address: '127.0.0.1', ports: {} };

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
  const good = sampleResources();
  await serveChain(server, good);
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
