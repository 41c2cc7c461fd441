import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRateLimitService } from '../../src/ratelimit/index.js';
import { startServer, type TestServer } from '../helpers/http-servers.js';
import { backendService, boundRoutes, call, docs, gatewayDoc, startGateway } from './helpers.js';
import { ratelimitService } from '../helpers/mesh-config.js';

// Istio's "Enabling Rate Limits using Envoy" task, global part: the rate-limit service config
// and both EnvoyFilters as the task shows them (only the service's address is this test's).
const rlsConfig = `
domain: ratelimit
descriptors:
  - key: PATH
    value: "/productpage"
    rate_limit: { unit: minute, requests_per_unit: 1 }
  - key: PATH
    rate_limit: { unit: minute, requests_per_unit: 100 }
`;

const istioEnvoyFilters = `
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: filter-ratelimit
  namespace: istio-system
spec:
  workloadSelector:
    labels:
      istio: ingressgateway
  configPatches:
    - applyTo: HTTP_FILTER
      match:
        context: GATEWAY
        listener:
          filterChain:
            filter:
              name: "envoy.filters.network.http_connection_manager"
              subFilter:
                name: "envoy.filters.http.router"
      patch:
        operation: INSERT_BEFORE
        value:
          name: envoy.filters.http.ratelimit
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit
            domain: ratelimit
            failure_mode_deny: true
            timeout: 10s
            rate_limit_service:
              grpc_service:
                envoy_grpc:
                  cluster_name: outbound|8081||ratelimit.default.svc.cluster.local
                  authority: ratelimit.default.svc.cluster.local
              transport_api_version: V3
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: filter-ratelimit-svc
  namespace: istio-system
spec:
  workloadSelector:
    labels:
      istio: ingressgateway
  configPatches:
    - applyTo: VIRTUAL_HOST
      match:
        context: GATEWAY
        routeConfiguration:
          vhost:
            name: ""
            route:
              action: ANY
      patch:
        operation: MERGE
        value:
          rate_limits:
            - actions:
              - request_headers:
                  header_name: ":path"
                  descriptor_key: "PATH"
`;

describe("Istio's EnvoyFilter recipe for global rate limiting, unchanged, at the gateway", () => {
  let backend: TestServer;
  before(async () => {
    backend = await startServer('productpage');
  });
  after(async () => {
    await backend.close();
  });

  it('limits /productpage to 1 per minute by the :path descriptor and leaves other paths alone', async () => {
    const fixedNow = () => Date.UTC(2026, 0, 1, 12, 0, 10);
    const rls = await createRateLimitService({ config: rlsConfig, port: 0, now: fixedNow });
    const gw = await startGateway(docs(backendService('client', backend.port), ratelimitService(rls.port), gatewayDoc(), boundRoutes('["*"]', `    - route: [{ destination: { host: client, port: { number: 8080 } } }]`), istioEnvoyFilters));
    try {
      const first = await call(gw, 'bookinfo.example.com', '/productpage');
      const second = await call(gw, 'bookinfo.example.com', '/productpage');
      const other = await call(gw, 'bookinfo.example.com', '/reviews');
      assert.equal(first.status, 200);
      assert.equal(second.status, 429);
      assert.equal(second.headers['x-meshlet-flags'], 'RL');
      assert.equal(second.headers['x-envoy-ratelimited'], 'true');
      assert.equal(other.status, 200);
    } finally {
      await gw.close();
      await rls.close();
    }
  });
});
