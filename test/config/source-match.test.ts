/**
 * VirtualService `match.sourceLabels`, `sourceNamespace` and `gateways` on a
 * workload's routes, as istiod's sourceMatchHTTP (pilot/pkg/networking/core/
 * route/route.go): a match for other callers is left out of this workload's
 * routes; a route left with no match is dropped; the control plane's route
 * cache does not share such routes between namespaces.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseYaml } from '../../src/config/load.js';
import { parseResources } from '../../src/config/resources.js';
import { translate, TranslateCache } from '../../src/config/translate.js';

const yaml = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }]
  endpoints: [{ address: 10.0.0.1, ports: { http: 80 }, labels: { version: v1 } }, { address: 10.0.0.2, ports: { http: 80 }, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec: { host: reviews, subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
    - name: canary-callers
      match: [{ sourceLabels: { app: productpage, version: v2 } }, { sourceNamespace: qa }]
      route: [{ destination: { host: reviews, subset: v2 } }]
    - name: gateway-only
      match: [{ gateways: [shop/ingress], uri: { prefix: /admin } }]
      route: [{ destination: { host: reviews, subset: v2 } }]
    - name: mesh
      match: [{ gateways: [mesh], uri: { prefix: /mesh } }]
      route: [{ destination: { host: reviews, subset: v1 } }]
    - name: rest
      route: [{ destination: { host: reviews, subset: v1 } }]
`;

const routeNames = (namespace: string, labels: Record<string, string>, cache?: TranslateCache) =>
  translate(parseResources(parseYaml(yaml, 'x.yaml')), { name: 'w', namespace, labels }, cache)
    .routes.find((r) => r.name === 'reviews.shop.svc.cluster.local:8000')!.virtual_hosts[0]!.routes.map((r) => r.name);

describe('source matches on a workload\'s routes', () => {
  it('keeps the sourceLabels match only for workloads with those labels, and sourceNamespace only in that namespace', () => {
    assert.deepEqual(routeNames('shop', { app: 'productpage', version: 'v2', extra: 'x' }), ['canary-callers', 'mesh', 'rest']);
    assert.deepEqual(routeNames('shop', { app: 'productpage', version: 'v1' }), ['mesh', 'rest']);
    assert.deepEqual(routeNames('qa', { app: 'tester' }), ['canary-callers', 'mesh', 'rest']);
  });

  it('a match naming only another gateway is dropped; `mesh` keeps it', () => {
    assert.ok(!routeNames('shop', {}).includes('gateway-only'));
    assert.ok(routeNames('shop', {}).includes('mesh'));
  });

  it('the control plane cache does not hand one namespace\'s routes to another', () => {
    const cache = new TranslateCache();
    cache.rotate();
    assert.deepEqual(routeNames('qa', {}, cache), ['canary-callers', 'mesh', 'rest']);
    cache.rotate();
    assert.deepEqual(routeNames('shop', {}, cache), ['mesh', 'rest']);
  });
});
