/**
 * The rate-limit recipes that were silently ignored (issue #14, item 3), at
 * the ingress gateway with a real rate-limit service (gRPC on 127.0.0.1):
 * bookinfo's productpage_envoy_ratelimit.yaml unchanged, the per-route
 * HTTP_ROUTE MERGE of route.rate_limits (include_vh_rate_limits), the
 * destination_cluster action, the RateLimit kind's global block with a
 * workloadSelector, and failure_mode_deny's 500/RLSE.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createRateLimitService } from '../../src/ratelimit/index.js';
import { startServer, type TestServer } from '../helpers/http-servers.js';
import { backendService, boundRoutes, call, docs, gatewayDoc, startGateway } from './helpers.js';
import { ratelimitService } from '../helpers/mesh-config.js';

// istio/istio samples/bookinfo/policy/productpage_envoy_ratelimit.yaml at 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c
// (test/fixtures/istio/corpus/SOURCE.md): filter name envoy.ratelimit, a CLUSTER ADD rate_limit_cluster.
const bookinfoRecipe = readFileSync(new URL('../fixtures/istio/corpus/samples/bookinfo/policy/productpage_envoy_ratelimit.yaml', import.meta.url), 'utf8');

// A fixed clock keeps all requests in one window whatever the wall-clock minute.
const fixedNow = () => Date.UTC(2026, 0, 1, 12, 0, 10);

/** istio.io's HTTP_FILTER patch (GATEWAY), with the given domain and failure mode. */
const ratelimitFilter = (domain: string) => `
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: filter-ratelimit, namespace: istio-system }
spec:
  workloadSelector: { labels: { istio: ingressgateway } }
  configPatches:
    - applyTo: HTTP_FILTER
      match:
        context: GATEWAY
        listener: { filterChain: { filter: { name: envoy.filters.network.http_connection_manager, subFilter: { name: envoy.filters.http.router } } } }
      patch:
        operation: INSERT_BEFORE
        value:
          name: envoy.filters.http.ratelimit
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit
            domain: ${domain}
            failure_mode_deny: false
            timeout: 5s
            rate_limit_service:
              grpc_service: { envoy_grpc: { cluster_name: outbound|8081||ratelimit.default.svc.cluster.local } }
              transport_api_version: V3
`;

/** Two named routes: `productpage` (prefix /productpage) and `rest`. */
const namedRoutes = `    - name: productpage
      match: [{ uri: { prefix: /productpage } }]
      route: [{ destination: { host: client, port: { number: 8080 } } }]
    - name: rest
      route: [{ destination: { host: client, port: { number: 8080 } } }]`;

/** A VIRTUAL_HOST MERGE (generic_key vh) and an HTTP_ROUTE MERGE on route `productpage` (generic_key pp). */
const routeAndVhostLimits = (includeVh: boolean) => `
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: filter-ratelimit-svc, namespace: istio-system }
spec:
  workloadSelector: { labels: { istio: ingressgateway } }
  configPatches:
    - applyTo: VIRTUAL_HOST
      match: { context: GATEWAY, routeConfiguration: { vhost: { name: "", route: { action: ANY } } } }
      patch: { operation: MERGE, value: { rate_limits: [{ actions: [{ generic_key: { descriptor_value: vh } }] }] } }
    - applyTo: HTTP_ROUTE
      match: { context: GATEWAY, routeConfiguration: { vhost: { route: { name: productpage, action: ROUTE } } } }
      patch:
        operation: MERGE
        value:
          route:
            rate_limits: [{ actions: [{ generic_key: { descriptor_value: pp } }] }]
            ${includeVh ? 'include_vh_rate_limits: true' : ''}
`;

const twoKeys = `
domain: shop
descriptors:
  - { key: generic_key, value: vh, rate_limit: { unit: minute, requests_per_unit: 2 } }
  - { key: generic_key, value: pp, rate_limit: { unit: minute, requests_per_unit: 100 } }
`;

/** A TCP port nothing listens on: taken, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('EnvoyFilter rate-limit recipes at the gateway', () => {
  let backend: TestServer;
  before(async () => {
    backend = await startServer('productpage');
  });
  after(async () => {
    await backend.close();
  });

  it("bookinfo's productpage_envoy_ratelimit.yaml unchanged: envoy.ratelimit, rate_limit_cluster resolved to the ServiceEntry's endpoint", async () => {
    const rls = await createRateLimitService({ config: 'domain: productpage-ratelimit\ndescriptors:\n  - { key: PATH, value: /productpage, rate_limit: { unit: minute, requests_per_unit: 1 } }\n', port: 0, now: fixedNow });
    const gw = await startGateway(docs(backendService('client', backend.port), ratelimitService(rls.port), gatewayDoc(), boundRoutes('["*"]', `    - route: [{ destination: { host: client, port: { number: 8080 } } }]`), bookinfoRecipe));
    try {
      const statuses = [];
      for (let i = 0; i < 2; i++) statuses.push((await call(gw, 'bookinfo.example.com', '/productpage')).status);
      const other = await call(gw, 'bookinfo.example.com', '/reviews');
      assert.deepEqual(statuses, [200, 429]);
      assert.equal(other.status, 200, 'the PATH /reviews descriptor has no limit');
    } finally {
      await gw.close();
      await rls.close();
    }
  });

  it("HTTP_ROUTE MERGE of route.rate_limits: the named route's limits replace the virtual host's", async () => {
    const rls = await createRateLimitService({ config: twoKeys, port: 0, now: fixedNow });
    const gw = await startGateway(docs(backendService('client', backend.port), ratelimitService(rls.port), gatewayDoc(), boundRoutes('["*"]', namedRoutes), ratelimitFilter('shop'), routeAndVhostLimits(false)));
    try {
      const productpage = [];
      for (let i = 0; i < 3; i++) productpage.push((await call(gw, 'shop.example.com', '/productpage')).status);
      const rest = [];
      for (let i = 0; i < 3; i++) rest.push((await call(gw, 'shop.example.com', '/other')).status);
      assert.deepEqual(productpage, [200, 200, 200], 'route productpage sends only its pp descriptor (limit 100)');
      assert.deepEqual(rest, [200, 200, 429], 'route rest keeps the virtual host descriptor vh (limit 2)');
    } finally {
      await gw.close();
      await rls.close();
    }
  });

  it('include_vh_rate_limits: the route sends its descriptors and the virtual host\'s', async () => {
    const config = 'domain: shop\ndescriptors:\n  - { key: generic_key, value: vh, rate_limit: { unit: minute, requests_per_unit: 3 } }\n  - { key: generic_key, value: pp, rate_limit: { unit: minute, requests_per_unit: 2 } }\n';
    const rls = await createRateLimitService({ config, port: 0, now: fixedNow });
    const gw = await startGateway(docs(backendService('client', backend.port), ratelimitService(rls.port), gatewayDoc(), boundRoutes('["*"]', namedRoutes), ratelimitFilter('shop'), routeAndVhostLimits(true)));
    try {
      const productpage = [];
      for (let i = 0; i < 3; i++) productpage.push((await call(gw, 'shop.example.com', '/productpage')).status);
      assert.deepEqual(productpage, [200, 200, 429], 'the route\'s pp descriptor (limit 2)');
      // The three productpage calls counted against vh too: the next call on another route is the 4th.
      assert.equal((await call(gw, 'shop.example.com', '/other')).status, 429);
    } finally {
      await gw.close();
      await rls.close();
    }
  });

  it('destination_cluster: the descriptor carries the cluster the route picked', async () => {
    const rls = await createRateLimitService({ config: 'domain: shop\ndescriptors:\n  - { key: destination_cluster, value: "outbound|8080||client.default.svc.cluster.local", rate_limit: { unit: minute, requests_per_unit: 1 } }\n', port: 0, now: fixedNow });
    const vhostMerge = `
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: filter-ratelimit-svc, namespace: istio-system }
spec:
  workloadSelector: { labels: { istio: ingressgateway } }
  configPatches:
    - applyTo: VIRTUAL_HOST
      match: { context: GATEWAY }
      patch: { operation: MERGE, value: { rate_limits: [{ actions: [{ destination_cluster: {} }] }] } }
`;
    const gw = await startGateway(docs(backendService('client', backend.port), ratelimitService(rls.port), gatewayDoc(), boundRoutes('["*"]', `    - route: [{ destination: { host: client, port: { number: 8080 } } }]`), ratelimitFilter('shop'), vhostMerge));
    try {
      const statuses = [];
      for (let i = 0; i < 2; i++) statuses.push((await call(gw, 'shop.example.com', '/')).status);
      assert.deepEqual(statuses, [200, 429]);
    } finally {
      await gw.close();
      await rls.close();
    }
  });
});

describe('the RateLimit kind at the gateway: global with workloadSelector, failureModeDeny', () => {
  let backend: TestServer;
  before(async () => {
    backend = await startServer('client');
  });
  after(async () => {
    await backend.close();
  });

  const selectorLimit = (service: string, failureModeDeny = false, selector = 'istio: ingressgateway') => `
apiVersion: meshlet.dev/v1alpha1
kind: RateLimit
metadata: { name: ingress-limit, namespace: default }
spec:
  workloadSelector: { matchLabels: { ${selector} } }
  global:
    service: ${service}
    domain: pets
    timeout: 5s
    failureModeDeny: ${failureModeDeny}
    descriptors: [{ entries: [{ key: generic_key, value: gateway }] }]
`;
  const rlsConfig = 'domain: pets\ndescriptors:\n  - { key: generic_key, value: gateway, rate_limit: { unit: minute, requests_per_unit: 2 } }\n';

  it('global with workloadSelector selecting the gateway limits what it accepts; global.service a mesh host resolved through the ServiceEntry', async () => {
    const rls = await createRateLimitService({ config: rlsConfig, port: 0, now: fixedNow });
    const gw = await startGateway(docs(backendService('client', backend.port), ratelimitService(rls.port), gatewayDoc(), boundRoutes('["*"]', `    - route: [{ destination: { host: client, port: { number: 8080 } } }]`), selectorLimit('ratelimit')));
    try {
      const results = [];
      for (let i = 0; i < 3; i++) results.push(await call(gw, 'shop.example.com'));
      assert.deepEqual(results.map((r) => r.status), [200, 200, 429]);
      assert.equal(results[2]!.headers['x-meshlet-flags'], 'RL');
    } finally {
      await gw.close();
      await rls.close();
    }
  });

  it('a workloadSelector that selects another workload leaves the gateway alone', async () => {
    const rls = await createRateLimitService({ config: rlsConfig, port: 0, now: fixedNow });
    const gw = await startGateway(docs(backendService('client', backend.port), ratelimitService(rls.port), gatewayDoc(), boundRoutes('["*"]', `    - route: [{ destination: { host: client, port: { number: 8080 } } }]`), selectorLimit('ratelimit', false, 'app: reviews')));
    try {
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await call(gw, 'shop.example.com')).status);
      assert.deepEqual(statuses, [200, 200, 200]);
    } finally {
      await gw.close();
      await rls.close();
    }
  });

  it('failureModeDeny with the rate-limit service unreachable: 500 and flag RLSE, as Envoy', async () => {
    const port = await closedPort();
    const gw = await startGateway(docs(backendService('client', backend.port), gatewayDoc(), boundRoutes('["*"]', `    - route: [{ destination: { host: client, port: { number: 8080 } } }]`), selectorLimit(`127.0.0.1:${port}`, true)));
    try {
      const reply = await call(gw, 'shop.example.com');
      assert.equal(reply.status, 500);
      assert.equal(reply.headers['x-meshlet-flags'], 'RLSE');
      assert.equal(reply.headers['x-envoy-ratelimited'], undefined, 'not a rate limit: the service failed');
    } finally {
      await gw.close();
    }
  });
});
