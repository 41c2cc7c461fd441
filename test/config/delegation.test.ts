/**
 * VirtualService delegation, checked against istiod's merge
 * (pilot/pkg/model/virtualservice.go MergeHTTPRoutes / mergeHTTPMatchRequests,
 * cases modelled on virtualservice_test.go TestMergeHTTPRoutes at
 * 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c): matches narrowed by the child,
 * conflicting child routes dropped, root fields inherited, names joined,
 * child short names resolved in the child's namespace; and end to end over a
 * real server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mergeHttpRoute } from '../../src/config/delegation.js';
import { parseYaml } from '../../src/config/load.js';
import { parseResources } from '../../src/config/resources.js';
import { translate } from '../../src/config/translate.js';
import { createMesh, MeshConfigError } from '../../src/index.js';
import { startServer, type TestServer } from '../helpers/http-servers.js';
import type { HTTPRoute } from '../../src/config/istio-types.js';

describe('mergeHttpRoute (istiod\'s mergeHTTPRoute)', () => {
  const root: HTTPRoute = { name: 'root', match: [{ uri: { prefix: '/products' } }], timeout: '5s', route: undefined };

  it('the child narrows the root\'s prefix, inherits its timeout and joins the names', () => {
    const merged = mergeHttpRoute(root, { name: 'v2', match: [{ uri: { prefix: '/products/v2' }, headers: { x: { exact: '1' } } }], route: [{ destination: { host: 'p' } }] });
    assert.deepEqual(merged, { name: 'root-v2', match: [{ uri: { prefix: '/products/v2' }, headers: { x: { exact: '1' } } }], route: [{ destination: { host: 'p' } }], timeout: '5s' });
  });

  it('a child without match takes the root\'s; one whose match leaves the root\'s prefix conflicts and is dropped', () => {
    assert.deepEqual(mergeHttpRoute(root, { route: [{ destination: { host: 'p' } }] })?.match, [{ uri: { prefix: '/products' } }]);
    assert.equal(mergeHttpRoute(root, { match: [{ uri: { prefix: '/reviews' } }], route: [{ destination: { host: 'p' } }] }), undefined);
    assert.equal(mergeHttpRoute(root, { match: [{ uri: { regex: '/p.*' } }], route: [{ destination: { host: 'p' } }] }), undefined);
    // The child's own timeout wins.
    assert.equal(mergeHttpRoute(root, { timeout: '1s', route: [{ destination: { host: 'p' } }] })?.timeout, '1s');
  });
});

const yaml = (port: number) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: products, namespace: catalog }
spec:
  hosts: [products.catalog.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${port} } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: front, namespace: default }
spec:
  hosts: [front.example]
  http:
    - name: catalog
      match: [{ uri: { prefix: /catalog } }]
      delegate: { name: products, namespace: catalog }
    - name: missing
      match: [{ uri: { prefix: /gone } }]
      delegate: { name: nothing }
    - name: rest
      directResponse: { status: 404 }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: products, namespace: catalog }
spec:
  http:
    - name: items
      match: [{ uri: { prefix: /catalog/items } }]
      rewrite: { uri: /items }
      route: [{ destination: { host: products, port: { number: 8000 } } }]
    - name: elsewhere
      match: [{ uri: { prefix: /orders } }]
      route: [{ destination: { host: products } }]
`;

describe('delegation in translation and over a real server', () => {
  let app: TestServer;
  before(async () => {
    app = await startServer('products', (req, res) => res.end(`products ${req.url}`));
  });
  after(() => app.close());

  it('the root\'s routes hold the merged child routes, child destinations resolved in the child\'s namespace', () => {
    const out = translate(parseResources(parseYaml(yaml(app.port), 'x.yaml')), { name: 'w', namespace: 'default', labels: {} });
    const routes = out.routes.find((r) => r.name === 'front.example:80')!.virtual_hosts[0]!.routes;
    assert.deepEqual(routes.map((r) => [r.name, r.match.prefix, r.route?.cluster]), [
      ['catalog-items', '/catalog/items', 'outbound|8000||products.catalog.svc.cluster.local'],
      ['rest', '/', undefined],
    ]);
  });

  it('a call through the root reaches the delegate\'s destination, rewritten', async () => {
    const mesh = await createMesh({ config: yaml(app.port) });
    try {
      const res = await mesh.request('http://front.example/catalog/items/7');
      assert.equal(await res.body.text(), 'products /items/7');
      const other = await mesh.request('http://front.example/orders');
      await other.body.text();
      assert.equal(other.statusCode, 404);
    } finally {
      await mesh.close();
    }
  });

  it('refuses a delegate with gateways, as istiod', async () => {
    const bad = yaml(app.port).replace('metadata: { name: products, namespace: catalog }\nspec:\n  http:', 'metadata: { name: products, namespace: catalog }\nspec:\n  gateways: [mesh]\n  http:');
    await assert.rejects(createMesh({ config: bad }), (err: unknown) => err instanceof MeshConfigError && err.path === 'spec.gateways');
  });
});
