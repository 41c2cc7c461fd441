/**
 * EnvoyFilter rate-limit recipes in translation: what is applied (no warning),
 * what is not (a MESHLET_UNSUPPORTED_PATCH warning, and the translation skips
 * it too), rc_patch.go's HTTP_ROUTE matches, the CLUSTER ADD service cluster,
 * and bad descriptor actions refused with a MeshConfigError naming the path.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { admitResources } from '../../src/config/admission.js';
import type { EnvoyResources, RouteConfiguration } from '../../src/config/envoy.js';
import { parseYaml } from '../../src/config/load.js';
import { parseResources } from '../../src/config/resources.js';
import { translate, type ProxyInfo } from '../../src/config/translate.js';
import { createMesh, MeshConfigError, MeshRateLimitServiceError } from '../../src/index.js';
import { createRateLimitService } from '../../src/ratelimit/index.js';
import { startServer, type TestServer } from '../helpers/http-servers.js';
import { calculateRoutes, calculateService, docs, ratelimitService } from '../helpers/mesh-config.js';

// istio/istio samples/bookinfo/policy/productpage_envoy_ratelimit.yaml at 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c
// (test/fixtures/istio/corpus/SOURCE.md).
const bookinfoRecipe = readFileSync(new URL('../fixtures/istio/corpus/samples/bookinfo/policy/productpage_envoy_ratelimit.yaml', import.meta.url), 'utf8');

const warnings = (yaml: string) => admitResources(parseYaml(yaml, 'x.yaml'), 'control-plane').statuses.map((s) => s.warnings.map((w) => [w.path, w.code]));

const gatewayProxy = { name: 'istio-ingressgateway', namespace: 'default', labels: { istio: 'ingressgateway' } };
const sidecarProxy = { name: 'productpage', namespace: 'default', labels: { app: 'productpage' } };
const run = (yaml: string, proxy: ProxyInfo = gatewayProxy): EnvoyResources => translate(parseResources(parseYaml(yaml, 'x.yaml')), proxy);

const mesh = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ratelimit, namespace: default }
spec:
  hosts: [ratelimit.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8081, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.1, ports: { grpc: 18081 } }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: 19080 } }]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ["*"] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews.default.svc.cluster.local, "bookinfo.example.com"]
  gateways: [gw, mesh]
  http:
    - name: v2-only
      match: [{ uri: { prefix: /v2 } }]
      route: [{ destination: { host: reviews.default.svc.cluster.local, port: { number: 9080 } } }]
    - name: default
      route: [{ destination: { host: reviews.default.svc.cluster.local, port: { number: 9080 } } }]
`;

const filter = (context: string, cluster = 'outbound|8081||ratelimit.default.svc.cluster.local') => `
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: filter-ratelimit, namespace: istio-system }
spec:
  configPatches:
    - applyTo: HTTP_FILTER
      match: { context: ${context}, listener: { filterChain: { filter: { name: envoy.filters.network.http_connection_manager, subFilter: { name: envoy.filters.http.router } } } } }
      patch:
        operation: INSERT_BEFORE
        value:
          name: envoy.filters.http.ratelimit
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit
            domain: d
            rate_limit_service: { grpc_service: { envoy_grpc: { cluster_name: "${cluster}" } }, transport_api_version: V3 }
`;

const routeMerge = (context: string, match: string, actions = '[{ generic_key: { descriptor_value: v2 } }]', name = 'route-limits') => `
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: ${name}, namespace: istio-system }
spec:
  configPatches:
    - applyTo: HTTP_ROUTE
      match: { context: ${context}, routeConfiguration: ${match} }
      patch: { operation: MERGE, value: { route: { rate_limits: [{ actions: ${actions} }] } } }
`;

const routesOf = (out: EnvoyResources, pick: (rc: RouteConfiguration) => boolean) =>
  out.routes.filter(pick).flatMap((rc) => rc.virtual_hosts.map((vh) => [vh.name, (vh.routes ?? []).map((r) => [r.name, r.route?.rate_limits?.length ?? 0])]));

describe('EnvoyFilter rate-limit recipes: warnings', () => {
  it("bookinfo's productpage_envoy_ratelimit.yaml is applied whole: no warning (envoy.ratelimit, CLUSTER ADD, VIRTUAL_HOST MERGE)", () => {
    assert.deepEqual(warnings(bookinfoRecipe), [[], []]);
  });

  it('HTTP_ROUTE MERGE of route.rate_limits (SIDECAR_OUTBOUND, GATEWAY) is applied: no warning', () => {
    assert.deepEqual(warnings(routeMerge('GATEWAY', '{ vhost: { route: { name: v2-only } } }') + '\n---\n' + routeMerge('SIDECAR_OUTBOUND', '{ vhost: { name: "reviews.default.svc.cluster.local:9080" } }', undefined, 'other')), [[], []]);
  });

  it('a match on portName or gateway, or a MERGE carrying more than rate limits, is warned MESHLET_UNSUPPORTED_PATCH', () => {
    assert.deepEqual(warnings(routeMerge('GATEWAY', '{ portName: http, vhost: { route: { name: v2-only } } }')), [[['spec.configPatches[0]', 'MESHLET_UNSUPPORTED_PATCH']]]);
    assert.deepEqual(warnings(routeMerge('GATEWAY', '{ gateway: default/gw }')), [[['spec.configPatches[0]', 'MESHLET_UNSUPPORTED_PATCH']]]);
    assert.deepEqual(warnings(`
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: f, namespace: istio-system }
spec:
  configPatches:
    - applyTo: VIRTUAL_HOST
      match: { context: GATEWAY }
      patch: { operation: MERGE, value: { rate_limits: [{ actions: [{ remote_address: {} }] }], include_request_attempt_count: true } }
    - applyTo: HTTP_ROUTE
      match: { context: GATEWAY }
      patch: { operation: MERGE, value: { route: { rate_limits: [], timeout: 1s } } }
`), [[['spec.configPatches[0]', 'MESHLET_UNSUPPORTED_PATCH'], ['spec.configPatches[1]', 'MESHLET_UNSUPPORTED_PATCH']]]);
  });

  it('a RateLimit global block with workloadSelector is warned on spec.global: sidecar inbound requests are not checked', () => {
    assert.deepEqual(warnings(`
apiVersion: meshlet.dev/v1alpha1
kind: RateLimit
metadata: { name: l, namespace: default }
spec:
  workloadSelector: { matchLabels: { app: productpage } }
  global: { service: ratelimit:8081, domain: d, descriptors: [{ entries: [{ key: generic_key, value: x }] }] }
`), [[['spec.global', 'MESHLET_UNSUPPORTED_VALUE']]]);
  });

  it('a RateLimit local block with workloadSelector is warned on spec.local: a gateway it selects does not run it', () => {
    assert.deepEqual(warnings(`
apiVersion: meshlet.dev/v1alpha1
kind: RateLimit
metadata: { name: l, namespace: default }
spec:
  workloadSelector: { matchLabels: { istio: ingressgateway } }
  local: { tokenBucket: { maxTokens: 5, tokensPerFill: 5, fillInterval: 60s } }
`), [[['spec.local', 'MESHLET_UNSUPPORTED_VALUE']]]);
  });
});

describe('EnvoyFilter rate-limit recipes: translation', () => {
  it('HTTP_ROUTE MERGE matches the route by name (VirtualService http[].name) at the gateway', () => {
    const out = run(mesh + '\n---\n' + filter('GATEWAY') + '\n---\n' + routeMerge('GATEWAY', '{ vhost: { route: { name: v2-only, action: ROUTE } } }'));
    // The gateway's route configuration is named http.<port>, as istiod names it.
    assert.deepEqual(routesOf(out, (rc) => rc.name === 'http.80'), [
      ['reviews.default.svc.cluster.local:80', [['v2-only', 1], ['default', 0]]],
      ['bookinfo.example.com:80', [['v2-only', 1], ['default', 0]]],
    ]);
    // The outbound route configurations are not the GATEWAY context's.
    for (const [, routes] of routesOf(out, (rc) => rc.name !== 'http.80')) assert.ok((routes as Array<[string, number]>).every(([, n]) => n === 0));
  });

  it('HTTP_ROUTE MERGE on SIDECAR_OUTBOUND matches by vhost name; a route action that does not match leaves it alone', () => {
    const out = run(mesh + '\n---\n' + filter('SIDECAR_OUTBOUND') + '\n---\n' + routeMerge('SIDECAR_OUTBOUND', '{ vhost: { name: "reviews.default.svc.cluster.local:9080" } }'), sidecarProxy);
    assert.deepEqual(routesOf(out, (rc) => rc.name.startsWith('reviews')), [['reviews.default.svc.cluster.local:9080', [['v2-only', 1], ['default', 1]]]]);
    const none = run(mesh + '\n---\n' + filter('SIDECAR_OUTBOUND') + '\n---\n' + routeMerge('SIDECAR_OUTBOUND', '{ vhost: { route: { action: REDIRECT } } }'), sidecarProxy);
    assert.deepEqual(routesOf(none, (rc) => rc.name.startsWith('reviews')), [['reviews.default.svc.cluster.local:9080', [['v2-only', 0], ['default', 0]]]]);
  });

  it("bookinfo's CLUSTER ADD rate_limit_cluster at a mesh host resolves to the mesh cluster of that host and port", () => {
    const out = run(mesh + '\n---\n' + bookinfoRecipe);
    const vh = out.routes.flatMap((rc) => rc.virtual_hosts).find((v) => v.typed_per_filter_config?.['envoy.filters.http.ratelimit'] !== undefined);
    const config = vh!.typed_per_filter_config!['envoy.filters.http.ratelimit'] as unknown as { domain: string; rate_limit_service: { grpc_service: { envoy_grpc: { cluster_name: string } } } };
    assert.equal(config.domain, 'productpage-ratelimit');
    assert.equal(config.rate_limit_service.grpc_service.envoy_grpc.cluster_name, 'outbound|8081||ratelimit.default.svc.cluster.local');
    assert.ok(out.clusters.some((c) => c.name === 'outbound|8081||ratelimit.default.svc.cluster.local'));
  });

  it('a CLUSTER ADD at an address outside the registry is added as the static cluster it is', () => {
    const recipe = bookinfoRecipe.replace('address: ratelimit.default.svc.cluster.local', 'address: 127.0.0.9');
    const out = run(mesh + '\n---\n' + recipe);
    const added = out.clusters.find((c) => c.name === 'rate_limit_cluster');
    assert.ok(added, 'the cluster is in the snapshot');
    assert.deepEqual(added!.connect_timeout, { seconds: 10, nanos: 0 });
  });

  it('an unknown descriptor action is refused with a MeshConfigError naming the EnvoyFilter and the path', () => {
    assert.throws(() => run(mesh + '\n---\n' + filter('GATEWAY') + '\n---\n' + routeMerge('GATEWAY', '{ vhost: { route: { name: v2-only } } }', '[{ generic_key: { descriptor_value: a } }, { masked_remote_address: {} }]')), (err: unknown) => {
      assert.ok(err instanceof MeshConfigError);
      assert.equal(err.kind, 'EnvoyFilter');
      assert.equal(err.resource, 'istio-system/route-limits');
      assert.equal(err.path, 'spec.configPatches[0].patch.value.route.rate_limits[0].actions[1]');
      assert.match(err.reason, /unknown action "masked_remote_address"/);
      return true;
    });
  });

  it('a ratelimit filter without a domain is refused, naming typed_config.domain', () => {
    assert.throws(() => run(mesh + '\n---\n' + filter('GATEWAY').replace('domain: d', 'domain: ""') + '\n---\n' + routeMerge('GATEWAY', '{}')), /typed_config\.domain/);
  });
});

describe('on the sidecar: outbound global limits end to end (createMesh, real servers on 127.0.0.1)', () => {
  let up: TestServer;
  before(async () => {
    up = await startServer('calculate');
  });
  after(async () => {
    await up.close();
  });
  const fixedNow = () => Date.UTC(2026, 0, 1, 12, 0, 10);
  const status = async (mesh: Awaited<ReturnType<typeof createMesh>>, url: string) => {
    const res = await mesh.request(url);
    await res.body.text();
    return [res.statusCode, res.headers['x-meshlet-flags']];
  };

  it('RateLimit host + global.service as a mesh short name: resolved through the ServiceEntry, the 2nd call gets 429/RL', async () => {
    const rls = await createRateLimitService({ config: 'domain: pets\ndescriptors:\n  - { key: generic_key, value: callers, rate_limit: { unit: minute, requests_per_unit: 1 } }\n', port: 0, now: fixedNow });
    const mesh = await createMesh({ config: docs(calculateService([{ port: up.port, version: 'v' }]), ratelimitService(rls.port), `
apiVersion: meshlet.dev/v1alpha1
kind: RateLimit
metadata: { name: callers, namespace: default }
spec:
  host: calculate
  global: { service: ratelimit, domain: pets, timeout: 5s, descriptors: [{ entries: [{ key: generic_key, value: callers }] }] }
`) });
    try {
      assert.deepEqual([await status(mesh, 'http://calculate:8000/'), await status(mesh, 'http://calculate:8000/')], [[200, undefined], [429, 'RL']]);
    } finally {
      await mesh.close();
      await rls.close();
    }
  });

  it('SIDECAR_OUTBOUND HTTP_ROUTE MERGE limits only the named route', async () => {
    const rls = await createRateLimitService({ config: 'domain: d\ndescriptors:\n  - { key: generic_key, value: v2, rate_limit: { unit: minute, requests_per_unit: 1 } }\n', port: 0, now: fixedNow });
    const routes = calculateRoutes(`    - name: v2-only
      match: [{ uri: { prefix: /v2 } }]
      route: [{ destination: { host: calculate } }]
    - name: default
      route: [{ destination: { host: calculate } }]`);
    const mesh = await createMesh({ config: docs(calculateService([{ port: up.port, version: 'v' }]), ratelimitService(rls.port), routes, filter('SIDECAR_OUTBOUND').replace('domain: d', 'domain: d\n            timeout: 5s'), routeMerge('SIDECAR_OUTBOUND', '{ vhost: { route: { name: v2-only } } }')) });
    try {
      const v2 = [await status(mesh, 'http://calculate:8000/v2'), await status(mesh, 'http://calculate:8000/v2')];
      const rest = [await status(mesh, 'http://calculate:8000/'), await status(mesh, 'http://calculate:8000/')];
      assert.deepEqual(v2, [[200, undefined], [429, 'RL']]);
      assert.deepEqual(rest, [[200, undefined], [200, undefined]]);
    } finally {
      await mesh.close();
      await rls.close();
    }
  });

  it('failureModeDeny with the rate-limit service down: 500/RLSE on the outbound call', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const mesh = await createMesh({ config: docs(calculateService([{ port: up.port, version: 'v' }]), ratelimitService(port), `
apiVersion: meshlet.dev/v1alpha1
kind: RateLimit
metadata: { name: callers, namespace: default }
spec:
  host: calculate
  global: { service: ratelimit.default.svc.cluster.local:8081, domain: pets, timeout: 5s, failureModeDeny: true, descriptors: [{ entries: [{ key: generic_key, value: callers }] }] }
`) });
    const throwing = await createMesh({ localReplies: 'throw', config: docs(calculateService([{ port: up.port, version: 'v' }]), ratelimitService(port), `
apiVersion: meshlet.dev/v1alpha1
kind: RateLimit
metadata: { name: callers, namespace: default }
spec:
  host: calculate
  global: { service: ratelimit.default.svc.cluster.local:8081, domain: pets, timeout: 5s, failureModeDeny: true, descriptors: [{ entries: [{ key: generic_key, value: callers }] }] }
`) });
    try {
      assert.deepEqual(await status(mesh, 'http://calculate:8000/'), [500, 'RLSE']);
      // localReplies: 'throw' rejects with the typed error for the flag.
      await assert.rejects(throwing.request('http://calculate:8000/'), (err: unknown) => err instanceof MeshRateLimitServiceError && err.flag === 'RLSE' && err.status === 500);
    } finally {
      await mesh.close();
      await throwing.close();
    }
  });
});
