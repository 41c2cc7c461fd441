/**
 * Host names as Istio reads them. Each case cites the Istio source it copies,
 * at istio/istio commit 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseYaml } from '../../src/config/load.js';
import { parseResources } from '../../src/config/resources.js';
import { expandHost, hostAliases } from '../../src/config/registry.js';
import { translate } from '../../src/config/translate.js';
import { compileSnapshot } from '../../src/core/snapshot.js';

const proxy = (namespace: string) => ({ name: 'client', namespace, labels: { app: 'client' } });
const run = (yaml: string, namespace = 'default') => translate(parseResources(parseYaml(yaml, 'test')), proxy(namespace));

const serviceEntry = (name: string, namespace: string, host: string, port = 9080) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  hosts: [${host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, labels: { version: v1 } }]
`;

describe('short names: Istio ResolveShortnameToFQDN (pilot/pkg/model/config.go)', () => {
  // Only a name with no dot gets `.<namespace>.svc.<domain>`; `*`, IPs and dotted names stay as written.
  const cases: Array<[string, string, string]> = [
    ['reviews', 'default', 'reviews.default.svc.cluster.local'],
    ['Reviews', 'prod', 'reviews.prod.svc.cluster.local'],
    ['reviews.prod', 'default', 'reviews.prod'],
    ['reviews.prod.svc', 'default', 'reviews.prod.svc'],
    ['reviews.prod.svc.cluster.local', 'default', 'reviews.prod.svc.cluster.local'],
    ['myapp.lan', 'default', 'myapp.lan'],
    ['example.de', 'default', 'example.de'],
    ['db.example.com', 'default', 'db.example.com'],
    ['*', 'default', '*'],
    ['*.foo', 'default', '*.foo'],
    ['*.example.com', 'default', '*.example.com'],
    ['10.0.0.1', 'default', '10.0.0.1'],
    ['::1', 'default', '::1'],
    ['2001:db8::1', 'default', '2001:db8::1'],
  ];
  for (const [host, ns, want] of cases) {
    it(`${host} in ${ns} → ${want}`, () => assert.equal(expandHost(host, ns), want));
  }

  it('a VirtualService destination `reviews.prod` names the host reviews.prod, not reviews.prod.svc.cluster.local', () => {
    // pilot/pkg/model/virtualservice.go ResolveVirtualServiceShortnames resolves destinations with the same rule.
    const out = run(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: front, namespace: default }
spec:
  hosts: [front]
  http:
    - route:
        - { destination: { host: reviews.prod, port: { number: 9080 } }, weight: 50 }
        - { destination: { host: reviews, port: { number: 9080 } }, weight: 50 }
`);
    const rc = out.routes.find((r) => r.name === 'front.default.svc.cluster.local:80')!;
    const names = rc.virtual_hosts[0]!.routes[0]!.route!.weighted_clusters!.clusters.map((c) => c.name);
    assert.deepEqual(names, ['outbound|9080||reviews.prod', 'outbound|9080||reviews.default.svc.cluster.local']);
  });

  it('a destination `reviews` in a VirtualService of namespace prod is reviews.prod.svc.cluster.local', () => {
    const out = run(serviceEntry('reviews', 'prod', 'reviews.prod.svc.cluster.local') + `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: prod }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews, subset: v1 } }] }]
`);
    const rc = out.routes.find((r) => r.name === 'reviews.prod.svc.cluster.local:9080')!;
    assert.equal(rc.virtual_hosts[0]!.routes[0]!.route!.cluster, 'outbound|9080|v1|reviews.prod.svc.cluster.local');
  });

  it('a DestinationRule host `reviews.prod` does not select reviews.prod.svc.cluster.local; `reviews` in prod does', () => {
    // pilot/pkg/model/push_context.go setDestinationRules: rule.Host = ResolveShortnameToFQDN(rule.Host, meta).
    const dr = (ns: string, host: string) => `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: ${ns} }
spec:
  host: ${host}
  trafficPolicy: { loadBalancer: { simple: RANDOM } }
`;
    const cluster = (yaml: string) => run(yaml).clusters.find((c) => c.name === 'outbound|9080||reviews.prod.svc.cluster.local')!;
    assert.equal(cluster(serviceEntry('reviews', 'prod', 'reviews.prod.svc.cluster.local') + dr('default', 'reviews.prod')).lb_policy, 'ROUND_ROBIN');
    assert.equal(cluster(serviceEntry('reviews', 'prod', 'reviews.prod.svc.cluster.local') + dr('prod', 'reviews')).lb_policy, 'RANDOM');
    assert.equal(cluster(serviceEntry('reviews', 'prod', 'reviews.prod.svc.cluster.local') + dr('default', 'reviews.prod.svc.cluster.local')).lb_policy, 'RANDOM');
  });

  it('an external ServiceEntry host keeps its name in routes, clusters and domains', () => {
    const out = run(serviceEntry('lan', 'default', 'myapp.lan', 8000) + '---' + serviceEntry('de', 'default', 'example.de', 443));
    assert.ok(out.clusters.some((c) => c.name === 'outbound|8000||myapp.lan'));
    assert.ok(out.clusters.some((c) => c.name === 'outbound|443||example.de'));
    assert.ok(!out.clusters.some((c) => c.name.includes('svc.cluster.local')), out.clusters.map((c) => c.name).join());
    assert.deepEqual(out.routes.find((r) => r.name === 'myapp.lan:8000')!.virtual_hosts[0]!.domains, ['myapp.lan', 'myapp.lan:8000', 'myapp.lan.', 'myapp.lan.:8000']);
  });
});

describe('virtual-host domains: Istio generateVirtualHostDomains (pilot/pkg/networking/core/httproute.go)', () => {
  // Expected lists from TestGenerateVirtualHostDomains (pilot/pkg/networking/core/httproute_test.go), which shows a
  // sidecar's domains without ports; a proxyless client (meshlet) gets each with `:port` too.
  const withoutPorts = (domains: string[]) => domains.filter((d) => !/:\d+$/.test(d));
  const fixtures: Array<[string, string, string, string[]]> = [
    ['k8s service with default domain', 'echo.default.svc.cluster.local', 'default', ['echo.default.svc.cluster.local', 'echo.default.svc.cluster.local.', 'echo', 'echo.default.svc', 'echo.default']],
    ['k8s service with default domain and different namespace', 'echo.default.svc.cluster.local', 'mesh', ['echo.default.svc.cluster.local', 'echo.default.svc.cluster.local.', 'echo.default', 'echo.default.svc']],
    ['non-k8s service', 'foo.default.svc.bar.baz', 'default', ['foo.default.svc.bar.baz', 'foo.default.svc.bar.baz.']],
    ['k8s service with custom domain 2', 'google.local', 'foo', ['google.local', 'google.local.']],
    ['ipv4 domain', '1.2.3.4', 'default', ['1.2.3.4']],
  ];
  for (const [name, hostname, ns, want] of fixtures) {
    it(name, () => {
      const domains = hostAliases(hostname, 8123, ns);
      assert.deepEqual(withoutPorts(domains), want);
      for (const d of want) assert.ok(domains.includes(`${d}:8123`), `${d}:8123`);
    });
  }

  it('a URL host is looked up literally among those domains, from the same and from another namespace', () => {
    const yaml = serviceEntry('reviews', 'prod', 'reviews.prod.svc.cluster.local');
    const lookup = (ns: string) => {
      const snap = compileSnapshot(run(yaml, ns), 't');
      return (host: string, port = 9080) => snap.virtualHost(host, port)?.routeConfig;
    };
    const name = 'reviews.prod.svc.cluster.local:9080';
    const fromProd = lookup('prod');
    for (const host of ['reviews', 'reviews.prod', 'reviews.prod.svc', 'reviews.prod.svc.cluster.local', 'reviews.prod.svc.cluster.local.']) assert.equal(fromProd(host), name, host);
    const fromDefault = lookup('default');
    for (const host of ['reviews.prod', 'reviews.prod.svc', 'reviews.prod.svc.cluster.local']) assert.equal(fromDefault(host), name, host);
    // No short name across namespaces, and no suffix guessing: `reviews.prod.svc.cluster` is no domain of it.
    assert.equal(fromDefault('reviews'), undefined);
    assert.equal(fromDefault('reviews.prod.svc.cluster'), undefined);
  });

  it('an alternate name that is another host\'s own name stays with that host (dedupeDomains, knownFQDN)', () => {
    const yaml = serviceEntry('reviews', 'prod', 'reviews.prod.svc.cluster.local') + '---' + serviceEntry('literal', 'default', 'reviews.prod');
    const out = run(yaml);
    const domains = out.routes.find((r) => r.name === 'reviews.prod.svc.cluster.local:9080')!.virtual_hosts[0]!.domains;
    assert.ok(!domains.includes('reviews.prod') && !domains.includes('reviews.prod:9080'), domains.join());
    assert.ok(domains.includes('reviews.prod.svc'));
    const snap = compileSnapshot(out, 't');
    assert.equal(snap.virtualHost('reviews.prod', 9080)?.routeConfig, 'reviews.prod:9080');
    assert.equal(snap.virtualHost('reviews.prod.svc', 9080)?.routeConfig, 'reviews.prod.svc.cluster.local:9080');
  });
});
