/**
 * translateInbound (Istio resources → the `virtual_inbound` listener) and
 * core/inbound-policy (that listener → filters), without servers: chain
 * order, selection, Istio's EnvoyFilter recipes, xDS round-trip, bucket
 * carry-over, the authorization extension point, and errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseResources } from '../../src/config/resources.js';
import { loadDocuments } from '../../src/config/load.js';
import { TYPE_URL, type EnvoyResources, type Listener } from '../../src/config/envoy.js';
import {
  INBOUND_ROUTE_NAME, LOCAL_RATELIMIT_FILTER, ROUTER_FILTER, VIRTUAL_INBOUND, VIRTUAL_INBOUND_PORT, inboundConnectionManager, translateInbound,
} from '../../src/config/translate-inbound.js';
import { InboundPolicyCompiler, validateInboundPolicy, type InboundFilter, type InboundRequestView } from '../../src/core/inbound-policy.js';
import { compileSnapshot } from '../../src/core/snapshot.js';
import { MeshConfigError } from '../../src/errors.js';
import { normalize } from '../../src/xds/protos.js';

const proxy = { name: 'calculate-v1', namespace: 'default', labels: { app: 'calculate', version: 'v1' } };

async function inbound(yaml: string, p = proxy): Promise<Listener> {
  return translateInbound(parseResources(await loadDocuments(yaml)), p);
}

function resourcesWith(listener: Listener): EnvoyResources {
  return { listeners: [listener], routes: [], clusters: [], endpoints: [] };
}

const rateLimit = (name: string, ns: string, labels: string, maxTokens = 2) => `
apiVersion: meshlet.dev/v1alpha1
kind: RateLimit
metadata: { name: ${name}, namespace: ${ns} }
spec:
  workloadSelector: { matchLabels: { ${labels} } }
  local: { tokenBucket: { maxTokens: ${maxTokens}, tokensPerFill: 1, fillInterval: 1s } }
`;

/** Istio's route-level recipe: a bucket-less HTTP_FILTER plus HTTP_ROUTE MERGE on the inbound vhost. */
const routeLevelRecipe = `
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: filter-local-ratelimit-svc, namespace: default }
spec:
  workloadSelector: { labels: { app: calculate } }
  configPatches:
    - applyTo: HTTP_FILTER
      match:
        context: SIDECAR_INBOUND
        listener: { filterChain: { filter: { name: "envoy.filters.network.http_connection_manager" } } }
      patch:
        operation: INSERT_BEFORE
        value:
          name: envoy.filters.http.local_ratelimit
          typed_config:
            "@type": type.googleapis.com/udpa.type.v1.TypedStruct
            type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
            value: { stat_prefix: http_local_rate_limiter }
    - applyTo: HTTP_ROUTE
      match:
        context: SIDECAR_INBOUND
        routeConfiguration: { vhost: { name: "inbound|http|9080", route: { action: ANY } } }
      patch:
        operation: MERGE
        value:
          typed_per_filter_config:
            envoy.filters.http.local_ratelimit:
              "@type": type.googleapis.com/udpa.type.v1.TypedStruct
              type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
              value:
                stat_prefix: http_local_rate_limiter
                token_bucket: { max_tokens: 3, tokens_per_fill: 3, fill_interval: 60s }
                filter_enabled: { runtime_key: local_rate_limit_enabled, default_value: { numerator: 100, denominator: HUNDRED } }
                filter_enforced: { runtime_key: local_rate_limit_enforced, default_value: { numerator: 100, denominator: HUNDRED } }
                response_headers_to_add: [ { append: false, header: { key: x-local-rate-limit, value: 'true' } } ]
`;

/** A request view that records what filters did to it. */
function view(): InboundRequestView & { requestHeaders: Record<string, string>; responseHeaders: Record<string, string> } {
  const requestHeaders: Record<string, string> = {};
  const responseHeaders: Record<string, string> = {};
  return {
    method: 'GET', path: '/calculate', sourcePrincipal: undefined, sourceIp: '127.0.0.1', requestHeaders, responseHeaders,
    header: (n) => requestHeaders[n],
    setRequestHeader: (n, v) => void (requestHeaders[n] = v),
    addResponseHeader: (n, v) => void (responseHeaders[n] = v),
  };
}

function statuses(compiler: InboundPolicyCompiler, snapshot: { resources: EnvoyResources }, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(compiler.forSnapshot(snapshot).decodeHeaders(view())?.status ?? 200);
  return out;
}

test('virtual_inbound: bound to 15006, catch-all non-forwarding route, rate limits before the router', async () => {
  const l = await inbound([rateLimit('a', 'default', 'app: calculate'), rateLimit('b', 'default', 'version: v1')].join('---'));
  assert.equal(l.name, VIRTUAL_INBOUND);
  assert.deepEqual(l.address, { socket_address: { address: '0.0.0.0', port_value: VIRTUAL_INBOUND_PORT } });
  const hcm = inboundConnectionManager(l)!;
  assert.deepEqual(hcm.http_filters.map((f) => f.name), [LOCAL_RATELIMIT_FILTER, LOCAL_RATELIMIT_FILTER, ROUTER_FILTER]);
  assert.deepEqual(hcm.http_filters.slice(0, 2).map((f) => f.typed_config?.stat_prefix), ['ratelimit.default.a', 'ratelimit.default.b']);
  const route = hcm.route_config.virtual_hosts[0]!.routes[0]! as { non_forwarding_action?: object };
  assert.equal(hcm.route_config.name, INBOUND_ROUTE_NAME);
  assert.deepEqual(route.non_forwarding_action, {});
  // Not an outbound listener: its (inline) routes never answer outbound lookups.
  const snap = compileSnapshot(resourcesWith(l), '1');
  assert.equal(snap.virtualHost('calculate-v1', 80), undefined);
});

test('selection: labels must match, RateLimits only from the workload namespace, EnvoyFilters also from istio-system', async () => {
  const other = await inbound([rateLimit('a', 'default', 'app: db'), rateLimit('b', 'shop', 'app: calculate')].join('---'));
  assert.deepEqual(inboundConnectionManager(other)!.http_filters.map((f) => f.name), [ROUTER_FILTER]);
  const ef = (ns: string, labels: string) => `
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: ef, namespace: ${ns} }
spec:
  workloadSelector: { labels: { ${labels} } }
  configPatches:
    - applyTo: HTTP_FILTER
      match: { context: SIDECAR_INBOUND, listener: { filterChain: { filter: { name: envoy.filters.network.http_connection_manager, subFilter: { name: envoy.filters.http.router } } } } }
      patch:
        operation: INSERT_BEFORE
        value:
          name: envoy.filters.http.local_ratelimit
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
            stat_prefix: direct
            token_bucket: { max_tokens: 1, fill_interval: 1s }
    - applyTo: HTTP_FILTER
      match: { context: SIDECAR_OUTBOUND }
      patch: { operation: INSERT_FIRST, value: { name: envoy.filters.http.local_ratelimit, typed_config: { "@type": nonsense } } }
`;
  const count = async (yaml: string) => inboundConnectionManager(await inbound(yaml))!.http_filters.length - 1;
  assert.equal(await count(ef('istio-system', 'app: calculate')), 1);
  assert.equal(await count(ef('default', 'app: calculate')), 1);
  assert.equal(await count(ef('shop', 'app: calculate')), 0);
  assert.equal(await count(ef('istio-system', 'app: db')), 0);
});

test("Istio's route-level recipe: the HTTP_ROUTE MERGE bucket applies through the bucket-less filter", async () => {
  const l = await inbound(routeLevelRecipe);
  const hcm = inboundConnectionManager(l)!;
  assert.equal(hcm.http_filters[0]!.typed_config?.token_bucket, undefined);
  const compiler = new InboundPolicyCompiler({ now: () => 0 });
  const snap = { resources: resourcesWith(l) };
  assert.deepEqual(statuses(compiler, snap, 4), [200, 200, 200, 429]);
  const reply = compiler.forSnapshot(snap).decodeHeaders(view())!;
  assert.equal(reply.flags, 'RL');
  assert.deepEqual(reply.headers, [['x-local-rate-limit', 'true']]);
});

test('the listener survives an xDS round trip (protobuf encode/decode) and still limits', async () => {
  const l = await inbound([rateLimit('a', 'default', 'app: calculate', 2), routeLevelRecipe].join('---'));
  const decoded = normalize(TYPE_URL.listener, l);
  assert.equal(decoded.name, VIRTUAL_INBOUND);
  const compiler = new InboundPolicyCompiler({ now: () => 0 });
  // The route-level bucket (3) overrides both local_ratelimit filters by name, as Envoy's per-route config does.
  assert.deepEqual(statuses(compiler, { resources: resourcesWith(decoded) }, 4), [200, 200, 200, 429]);
});

test('token bucket: refills on the clock; x-ratelimit headers on allowed responses', async () => {
  let now = 0;
  const compiler = new InboundPolicyCompiler({ now: () => now });
  const snap = { resources: resourcesWith(await inbound(rateLimit('a', 'default', 'app: calculate', 2))) };
  const v = view();
  assert.equal(compiler.forSnapshot(snap).decodeHeaders(v), undefined);
  assert.equal(v.responseHeaders['x-ratelimit-remaining'], '1');
  assert.deepEqual(statuses(compiler, snap, 2), [200, 429]);
  now += 1000; // one fill of 1 token
  assert.deepEqual(statuses(compiler, snap, 2), [200, 429]);
});

test('buckets carry over to a new snapshot with the same policy; two identical filters are two buckets', async () => {
  const compiler = new InboundPolicyCompiler({ now: () => 0 });
  const l = await inbound(rateLimit('a', 'default', 'app: calculate', 2));
  assert.deepEqual(statuses(compiler, { resources: resourcesWith(l) }, 2), [200, 200]);
  // A new snapshot object with an equal listener (as after a config push): same bucket, already empty.
  assert.deepEqual(statuses(compiler, { resources: resourcesWith(structuredClone(l)) }, 1), [429]);
  // Same filter twice: each spends its own token, so the chain still allows 2.
  const twice = structuredClone(l);
  const hcm = inboundConnectionManager(twice)!;
  hcm.http_filters.unshift(structuredClone(hcm.http_filters[0]!));
  assert.deepEqual(statuses(new InboundPolicyCompiler({ now: () => 0 }), { resources: resourcesWith(twice) }, 3), [200, 200, 429]);
});

test('limited but not enforced: the request goes on with request_headers_to_add_when_not_enforced', () => {
  const listener = translateInbound([], proxy);
  inboundConnectionManager(listener)!.http_filters.unshift({
    name: LOCAL_RATELIMIT_FILTER,
    typed_config: {
      '@type': TYPE_URL.localRateLimit, stat_prefix: 'shadow',
      token_bucket: { max_tokens: 1, tokens_per_fill: { value: 1 }, fill_interval: { seconds: 60, nanos: 0 } },
      filter_enabled: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
      request_headers_to_add_when_not_enforced: [{ header: { key: 'x-shadow-limited', value: 'true' } }],
    },
  });
  const policy = new InboundPolicyCompiler({ now: () => 0 }).forSnapshot({ resources: resourcesWith(listener) });
  assert.equal(policy.decodeHeaders(view()), undefined);
  const v = view();
  assert.equal(policy.decodeHeaders(v), undefined);
  assert.equal(v.requestHeaders['x-shadow-limited'], 'true');
});

test('authorization extension point runs first: a denied request spends no token', async () => {
  const snap = { resources: resourcesWith(await inbound(rateLimit('a', 'default', 'app: calculate', 1))) };
  const deny: InboundFilter = {
    name: 'meshlet.authorization',
    decodeHeaders: (r) => r.header('x-user') === 'mallory'
      ? { status: 403, flags: 'RBAC', details: 'rbac_access_denied', body: 'RBAC: access denied', headers: [], source: 'default/deny-mallory' }
      : undefined,
  };
  const compiler = new InboundPolicyCompiler({ now: () => 0, authorization: () => deny });
  const mallory = view();
  mallory.setRequestHeader('x-user', 'mallory');
  assert.equal(compiler.forSnapshot(snap).decodeHeaders(mallory)?.status, 403);
  assert.deepEqual(statuses(compiler, snap, 2), [200, 429]);
});

test('filter factories by Envoy name; unknown filters are refused unless optional or handled elsewhere', () => {
  const listener = translateInbound([], proxy);
  const hcm = inboundConnectionManager(listener)!;
  // ext_authz (CUSTOM authorization) has no in-process implementation: refused, never skipped.
  hcm.http_filters.unshift({ name: 'istio.stats' }, { name: 'envoy.filters.http.ext_authz', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz' } });
  assert.throws(() => validateInboundPolicy(resourcesWith(listener)), (e: unknown) => e instanceof MeshConfigError && /envoy\.filters\.http\.ext_authz/.test(e.message));
  let built = 0;
  const compiler = new InboundPolicyCompiler({
    factories: { 'envoy.filters.http.ext_authz': () => ({ name: 'envoy.filters.http.ext_authz', decodeHeaders: () => (built++, undefined) }) },
  });
  const policy = compiler.forSnapshot({ resources: resourcesWith(listener) });
  assert.equal(policy.filters.length, 1);
  policy.decodeHeaders(view());
  assert.equal(built, 1);
  (hcm.http_filters[1] as { is_optional?: boolean }).is_optional = true;
  assert.doesNotThrow(() => validateInboundPolicy(resourcesWith(listener)));
});

test('errors name the resource and field', async () => {
  const bad = `
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: broken, namespace: default }
spec:
  configPatches:
    - applyTo: HTTP_FILTER
      match: { context: SIDECAR_INBOUND }
      patch:
        operation: INSERT_FIRST
        value:
          name: envoy.filters.http.local_ratelimit
          typed_config:
            "@type": type.googleapis.com/udpa.type.v1.TypedStruct
            type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
            value: { stat_prefix: x, token_bucket: { max_tokens: 1, fill_interval: soon } }
`;
  await assert.rejects(inbound(bad), (e: unknown) => e instanceof MeshConfigError && e.kind === 'EnvoyFilter' && e.resource === 'default/broken'
    && e.path.startsWith('spec.configPatches[0].patch.value.typed_config.value.token_bucket.fill_interval'));
  const tooFast = `
apiVersion: meshlet.dev/v1alpha1
kind: RateLimit
metadata: { name: fast, namespace: default }
spec:
  workloadSelector: { matchLabels: { app: calculate } }
  local: { tokenBucket: { maxTokens: 1, fillInterval: 10ms } }
`;
  await assert.rejects(inbound(tooFast), (e: unknown) => e instanceof MeshConfigError && e.kind === 'RateLimit' && e.path === 'spec.local.tokenBucket.fillInterval');
});
