// What Envoy refuses in a resource, the ADS client NACKs with the field path — even when the
// resource arrives together with one that has to wait (issue #16 items 2 and 4).
import assert from 'node:assert/strict';
import { describe, it, test } from 'node:test';
import { TYPE_URL, type Cluster, type EnvoyResources } from '../../src/config/envoy.js';
import { createAdsClient } from '../../src/xds/ads-client.js';
import { XDS_TYPE_BY_URL, checkResource } from '../../src/xds/resources.js';
import { sampleResources, serveChain, startFakeAds } from './fake-ads-server.js';

const type = (url: string) => XDS_TYPE_BY_URL.get(url)!;
const check = (url: string, r: object) => checkResource(type(url), (r as { name?: string; cluster_name?: string }).name ?? (r as { cluster_name: string }).cluster_name, r as Record<string, unknown>);
const base = sampleResources();
const cluster = (extra: Partial<Cluster> & Record<string, unknown>) => ({ ...base.clusters[0]!, ...extra });
const cla = (lb: object, groupWeight?: number) => ({
  cluster_name: 'c',
  endpoints: [{ locality: {}, ...(groupWeight !== undefined && { load_balancing_weight: { value: groupWeight } }), lb_endpoints: [lb] }],
});

/** The sample's first listener with istiod's stateful-session filter in front (pilot/pkg/networking/util BuildStatefulSessionFilter). */
function withFilter(optional: boolean): object {
  const l = structuredClone(base.listeners[0]!) as { api_listener: { api_listener: { http_filters?: unknown[] } } };
  const hcm = l.api_listener.api_listener;
  hcm.http_filters = [
    { name: 'envoy.filters.http.stateful_session', ...(optional && { is_optional: true }), typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.stateful_session.v3.StatefulSession' } },
    ...(hcm.http_filters ?? [{ name: 'envoy.filters.http.router', typed_config: { '@type': TYPE_URL.router } }]),
  ];
  return l;
}

describe('checks Envoy makes and meshlet did not (Envoy proto validation rules)', () => {
  const cases: Array<[string, string, object, RegExp]> = [
    // cluster.proto: connect_timeout (validate.rules).duration.gt = {}
    ['a negative connect_timeout', TYPE_URL.cluster, cluster({ connect_timeout: { seconds: -1 } }), /connect_timeout: must be greater than 0/],
    ['a zero connect_timeout', TYPE_URL.cluster, cluster({ connect_timeout: { seconds: 0, nanos: 0 } }), /connect_timeout: must be greater than 0/],
    // outlier_detection.proto: interval (validate.rules).duration.gt = {}
    ['outlier_detection.interval 0s', TYPE_URL.cluster, cluster({ outlier_detection: { interval: { seconds: 0 } } }), /outlier_detection\.interval: must be greater than 0/],
    // route_components / RouteConfiguration: "Only unique values for domains are permitted"
    ['two virtual hosts with domain *', TYPE_URL.route, { ...base.routes[0]!, virtual_hosts: [{ name: 'a', domains: ['*'], routes: [] }, { name: 'b', domains: ['*'], routes: [] }] }, /virtual_hosts\[1\]\.domains: duplicate domain "\*"/],
    // address.proto: port_value lte 65535; an upstream endpoint needs a real port
    ['an endpoint on port 0', TYPE_URL.endpoint, cla({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } } }), /port_value: must be 1–65535, got 0/],
    // endpoint_components.proto: load_balancing_weight (validate.rules).uint32.gte = 1
    ['an endpoint weight of 0', TYPE_URL.endpoint, cla({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 80 } } }, load_balancing_weight: { value: 0 } }), /lb_endpoints\[0\]\.load_balancing_weight: must be at least 1/],
    ['a locality weight of 0', TYPE_URL.endpoint, cla({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 80 } } } }, 0), /endpoints\[0\]\.load_balancing_weight: must be at least 1/],
    // gRFC A39 / Envoy: an HTTP filter the client does not know is refused unless is_optional (istiod's stateful session)
    ['an outbound HTTP filter meshlet cannot run', TYPE_URL.listener, withFilter(false), /http_filters\[0\]: HTTP filter "envoy.filters.http.stateful_session" .* not supported outbound and not marked is_optional/],
  ];
  for (const [name, url, resource, reason] of cases) {
    it(name, () => assert.match(check(url, resource) ?? 'accepted', reason));
  }
  it('an unknown outbound HTTP filter marked is_optional is accepted (the control plane said it may be skipped)', () => {
    assert.equal(check(TYPE_URL.listener, withFilter(true)), undefined);
  });
  it('the sample resources themselves pass', () => {
    for (const [url, list] of [[TYPE_URL.listener, base.listeners], [TYPE_URL.route, base.routes], [TYPE_URL.cluster, base.clusters], [TYPE_URL.endpoint, base.endpoints]] as const) {
      for (const r of list) assert.equal(check(url, r), undefined);
    }
  });
});

test('a bad cluster is NACKed even when the same response adds a cluster still waiting for its endpoints', async (t) => {
  const server = await startFakeAds();
  const sets: Array<{ r: EnvoyResources; v: string }> = [];
  const client = createAdsClient({ server: `127.0.0.1:${server.port}`, workload: { name: 'w', namespace: 'default' }, backoff: { initialMs: 30, maxMs: 200 }, initialFetchTimeoutMs: 60_000, onResources: (r, v) => void sets.push({ r, v }) });
  t.after(async () => { await client.close(); server.close(); });
  const r = sampleResources();
  await serveChain(server, r);
  await client.ready();

  // v2: the existing cluster gets an invalid outlier_detection, and a new EDS cluster arrives whose endpoints never do.
  const from = server.requests.length;
  server.respond(TYPE_URL.cluster, '2', 'c2', [
    { ...r.clusters[0]!, outlier_detection: { interval: { seconds: 0 } } },
    { name: 'outbound|80||new.default.svc.cluster.local', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} }, service_name: 'outbound|80||new.default.svc.cluster.local' } },
  ]);
  const answer = await server.next((q) => q.type_url === TYPE_URL.cluster && q.response_nonce === 'c2', from);
  assert.ok(answer.error_detail, 'NACK, not ACK');
  assert.match(answer.error_detail!.message!, /outlier_detection\.interval: must be greater than 0/);
  assert.equal(answer.version_info, '1', 'the client stays on the version it runs');
  assert.equal(client.status().lastNack?.rejectedVersion, '2');
});
