/**
 * A Kubernetes Gateway (class istio) and the HTTPRoutes attached to it,
 * served by a meshlet gateway whose workload carries Istio's
 * `gateway.networking.k8s.io/gateway-name` label: Istio's own samples
 * (samples/bookinfo/gateway-api/bookinfo-gateway.yaml,
 * samples/helloworld/gateway-api/*.yaml, istio/istio 86c9f01f…; see
 * test/fixtures/gateway-api/README.md), listener hostnames, allowedRoutes,
 * ReferenceGrant, and the status conditions a controller would write.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { seededRandom } from '../../src/index.js';
import type { Gateway } from '../../src/gateway/index.js';
import { registryYaml, servicesOf, startEchoPod, type EchoPod, type EchoReply, type ServiceSpec } from '../helpers/gateway-api.js';
import { call, startGateway } from './helpers.js';

const sample = (f: string) => readFileSync(new URL(`../fixtures/gateway-api/istio/${f}`, import.meta.url), 'utf8');
const workload = (gateway: string, namespace = 'default') => ({ name: `${gateway}-istio`, namespace, labels: { 'gateway.networking.k8s.io/gateway-name': gateway } });

describe('Gateway API ingress: Gateway + HTTPRoute on the meshlet gateway', () => {
  let pods: EchoPod[];
  before(async () => {
    pods = [
      await startEchoPod('productpage-v1-0', 'default', { app: 'productpage', version: 'v1' }),
      await startEchoPod('helloworld-v1-0', 'default', { app: 'helloworld', version: 'v1' }),
      await startEchoPod('helloworld-v2-0', 'default', { app: 'helloworld', version: 'v2' }),
      await startEchoPod('backend-0', 'other', { app: 'backend' }),
    ];
  });
  after(async () => {
    await Promise.all(pods.map((p) => p.server.close()));
  });

  async function withGateway(config: string, gateway: string, fn: (gw: Gateway) => Promise<void>, namespace = 'default'): Promise<void> {
    const gw = await startGateway(config, { workload: workload(gateway, namespace), random: seededRandom(80) });
    try {
      await fn(gw);
    } finally {
      await gw.close();
    }
  }
  const podOf = (body: string) => (JSON.parse(body) as EchoReply).pod;

  it('bookinfo-gateway.yaml: the productpage paths reach productpage, others get 404', async () => {
    const registry = registryYaml([{ name: 'productpage', namespace: 'default', ports: [{ name: 'http', port: 9080 }], selector: { app: 'productpage' } }], pods.slice(0, 1));
    await withGateway(`${registry}---\n${sample('bookinfo-bookinfo-gateway.yaml')}`, 'bookinfo-gateway', async (gw) => {
      for (const path of ['/productpage', '/static/img/x.png', '/static', '/login', '/logout', '/api/v1/products/1']) {
        const res = await call(gw, 'bookinfo.example.com', path);
        assert.equal(res.status, 200, path);
        assert.equal(podOf(res.body), 'productpage-v1-0', path);
      }
      for (const path of ['/', '/staticx', '/productpage/x', '/api/v1/productsx']) assert.equal((await call(gw, 'bookinfo.example.com', path)).status, 404, path);
      const status = gw.mesh.configStatus();
      const route = status.find((s) => s.kind === 'HTTPRoute')!;
      assert.deepEqual(route.conditions?.map((c) => [c.parent, c.type, c.status, c.reason]), [
        ['Gateway/default/bookinfo-gateway', 'Accepted', 'True', 'Accepted'],
        ['Gateway/default/bookinfo-gateway', 'ResolvedRefs', 'True', 'ResolvedRefs'],
      ]);
      const kgw = status.find((s) => s.kind === 'KubernetesGateway')!;
      assert.equal(kgw.status, 'applied');
      assert.deepEqual(kgw.conditions?.map((c) => [c.type, c.status]), [['Accepted', 'True'], ['Programmed', 'True']]);
    });
  });

  it('helloworld: /hello splits 90/10 between helloworld-v1 and helloworld-v2 within ±3 points over 2,000 requests', async () => {
    const versions = servicesOf(parseAllDocuments(sample('helloworld-helloworld-versions.yaml')).map((d) => d.toJS() as object).filter(Boolean));
    const registry = registryYaml([...versions, { name: 'helloworld', namespace: 'default', ports: [{ name: 'http', port: 5000 }], selector: { app: 'helloworld' } }], pods.slice(1, 3));
    // helloworld-route.yaml replaces the route of helloworld-gateway.yaml (same name), as kubectl apply does.
    const gateway = sample('helloworld-helloworld-gateway.yaml').split(/^---$/m)[0]!;
    await withGateway(`${registry}---\n${gateway}---\n${sample('helloworld-helloworld-route.yaml')}`, 'helloworld-gateway', async (gw) => {
      const counts: Record<string, number> = {};
      for (let i = 0; i < 2000; i += 50) {
        const batch = await Promise.all(Array.from({ length: 50 }, () => call(gw, 'hello.example.com', '/hello')));
        for (const r of batch) {
          assert.equal(r.status, 200);
          const pod = podOf(r.body);
          counts[pod] = (counts[pod] ?? 0) + 1;
        }
      }
      assert.ok(Math.abs((counts['helloworld-v1-0'] ?? 0) / 2000 - 0.9) <= 0.03, JSON.stringify(counts));
      assert.equal((counts['helloworld-v1-0'] ?? 0) + (counts['helloworld-v2-0'] ?? 0), 2000);
      assert.equal((await call(gw, 'hello.example.com', '/hello/x')).status, 404);
    });
  });

  const services: ServiceSpec[] = [
    { name: 'productpage', namespace: 'default', ports: [{ name: 'http', port: 9080 }], selector: { app: 'productpage' } },
    { name: 'backend', namespace: 'other', ports: [{ name: 'http', port: 9080 }], selector: { app: 'backend' } },
  ];
  const gatewayYaml = (from = 'Same', hostname = '"*.example.com"') => `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: edge, namespace: default }
spec:
  gatewayClassName: istio
  listeners: [{ name: http, port: 80, protocol: HTTP, hostname: ${hostname}, allowedRoutes: { namespaces: { from: ${from} } } }]
`;
  const routeYaml = (ns: string, backend: string, backendNs: string, hostnames = '[shop.example.com]') => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: shop, namespace: ${ns} }
spec:
  parentRefs: [{ name: edge, namespace: default }]
  hostnames: ${hostnames}
  rules: [{ backendRefs: [{ name: ${backend}, namespace: ${backendNs}, port: 9080 }] }]
`;
  const grant = `apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: { name: let-default-in, namespace: other }
spec:
  from: [{ group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default }]
  to: [{ group: "", kind: Service }]
`;
  const registry = () => registryYaml(services.slice(0, 1), pods.slice(0, 1)) + '---\n' + registryYaml(services.slice(1), pods.slice(3));

  it('listener hostname: the route serves the hostnames both allow', () => withGateway(`${registry()}---\n${gatewayYaml()}---\n${routeYaml('default', 'productpage', 'default', '[shop.example.com, shop.other.org]')}`, 'edge', async (gw) => {
    assert.equal((await call(gw, 'shop.example.com')).status, 200);
    assert.equal((await call(gw, 'shop.other.org')).status, 404);
    assert.equal((await call(gw, 'else.example.com')).status, 404);
  }));

  it('a backend in another namespace needs a ReferenceGrant: without it 500 and ResolvedRefs=False (RefNotPermitted)', async () => {
    await withGateway(`${registry()}---\n${gatewayYaml()}---\n${routeYaml('default', 'backend', 'other')}`, 'edge', async (gw) => {
      assert.equal((await call(gw, 'shop.example.com')).status, 500);
      const route = gw.mesh.configStatus().find((s) => s.kind === 'HTTPRoute')!;
      assert.equal(route.status, 'partial');
      assert.deepEqual(route.conditions?.filter((c) => c.type === 'ResolvedRefs').map((c) => [c.status, c.reason]), [['False', 'RefNotPermitted']]);
    });
    await withGateway(`${registry()}---\n${gatewayYaml()}---\n${routeYaml('default', 'backend', 'other')}---\n${grant}`, 'edge', async (gw) => {
      const res = await call(gw, 'shop.example.com');
      assert.equal(res.status, 200);
      assert.equal(podOf(res.body), 'backend-0');
    });
  });

  it('allowedRoutes from Same: a route of another namespace is not attached (NotAllowedByListeners); from All it is', async () => {
    await withGateway(`${registry()}---\n${gatewayYaml('Same')}---\n${routeYaml('other', 'backend', 'other')}`, 'edge', async (gw) => {
      assert.equal((await call(gw, 'shop.example.com')).status, 404);
      const route = gw.mesh.configStatus().find((s) => s.kind === 'HTTPRoute')!;
      assert.deepEqual(route.warnings.map((w) => w.code), ['MESHLET_ROUTE_NOT_ACCEPTED']);
      assert.equal(route.conditions?.[0]?.reason, 'NotAllowedByListeners');
    });
    await withGateway(`${registry()}---\n${gatewayYaml('All')}---\n${routeYaml('other', 'backend', 'other')}`, 'edge', async (gw) => {
      assert.equal((await call(gw, 'shop.example.com')).status, 200);
    });
  });

  it('allowedRoutes from Selector: matchLabels and matchExpressions over the v1 Namespace documents\' labels', async () => {
    const selecting = (selector: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: edge, namespace: default }
spec:
  gatewayClassName: istio
  listeners: [{ name: http, port: 80, protocol: HTTP, allowedRoutes: { namespaces: { from: Selector, selector: ${selector} } } }]
`;
    const other = 'apiVersion: v1\nkind: Namespace\nmetadata: { name: other, labels: { team: shop, tier: web } }\n';
    const cases: Array<[string, number]> = [
      ['{ matchLabels: { team: shop } }', 200],
      ['{ matchLabels: { team: pets } }', 404],
      ['{ matchExpressions: [{ key: team, operator: In, values: [pets, shop] }] }', 200],
      ['{ matchExpressions: [{ key: team, operator: NotIn, values: [shop] }] }', 404],
      ['{ matchExpressions: [{ key: tier, operator: Exists }, { key: legacy, operator: DoesNotExist }] }', 200],
      ['{ matchLabels: { team: shop }, matchExpressions: [{ key: tier, operator: DoesNotExist }] }', 404],
      ['{ matchLabels: { kubernetes.io/metadata.name: other } }', 200],
    ];
    for (const [selector, status] of cases) {
      await withGateway(`${registry()}---\n${other}---\n${selecting(selector)}---\n${routeYaml('other', 'backend', 'other')}`, 'edge', async (gw) => {
        assert.equal((await call(gw, 'shop.example.com')).status, status, selector);
      });
    }
    // Without the Namespace document the namespace has only kubernetes.io/metadata.name.
    await withGateway(`${registry()}---\n${selecting('{ matchLabels: { team: shop } }')}---\n${routeYaml('other', 'backend', 'other')}`, 'edge', async (gw) => {
      assert.equal((await call(gw, 'shop.example.com')).status, 404);
    });
    // The API server's LabelSelector rules: Exists takes no values.
    await assert.rejects(startGateway(`${selecting('{ matchExpressions: [{ key: tier, operator: Exists, values: [web] }] }')}`, { workload: workload('edge') }),
      (err: Error) => err.message.includes('spec.listeners[0].allowedRoutes.namespaces.selector.matchExpressions[0].values') && err.message.includes('must be empty for operator Exists'));
  });

  it('a gateway workload without the Gateway\'s name label serves nothing of it', () => withGateway(`${registry()}---\n${gatewayYaml()}---\n${routeYaml('default', 'productpage', 'default')}`, 'some-other-gateway', async (gw) => {
    assert.equal((await call(gw, 'shop.example.com')).status, 404);
  }));
});
