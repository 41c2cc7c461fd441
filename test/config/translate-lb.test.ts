/**
 * DestinationRule consistentHash → Envoy resources as istiod writes them
 * (pilot/pkg/networking/core/cluster_traffic_policy.go ApplyRingHashLoadBalancer,
 * route/route.go ConsistentHashToHashPolicy and HashForHTTPDestination):
 * cluster lb_policy and ring/maglev config, one route hash_policy per
 * destination, subset and port-level precedence, and the route cache
 * following a DestinationRule change.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseYaml } from '../../src/config/load.js';
import { parseResources } from '../../src/config/resources.js';
import { TranslateCache, translate } from '../../src/config/translate.js';
import type { EnvoyResources } from '../../src/config/envoy.js';

const proxy = { name: 'client', namespace: 'default', labels: {} };
const HOST = 'shop.default.svc.cluster.local';

const service = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: shop, namespace: default }
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }, { number: 9000, name: http-admin, protocol: HTTP }]
  endpoints:
    - { address: 127.0.0.1, ports: { http: 1001, http-admin: 2001 }, labels: { version: v1 } }
    - { address: 127.0.0.1, ports: { http: 1002, http-admin: 2002 }, labels: { version: v2 } }
`;

const rule = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: shop, namespace: default }
spec:
  host: shop
  trafficPolicy:
    loadBalancer: { consistentHash: { httpHeaderName: x-user } }
    portLevelSettings:
      - port: { number: 9000 }
        loadBalancer: { consistentHash: { httpQueryParameterName: user, maglev: { tableSize: 1009 } } }
  subsets:
    - { name: v1, labels: { version: v1 }, trafficPolicy: { loadBalancer: { consistentHash: { httpCookie: { name: s, ttl: 90s, path: /cart } } } } }
    - { name: v2, labels: { version: v2 } }
`;

function resources(...yaml: string[]) {
  return parseResources(parseYaml(yaml.join('\n---\n'), 'test.yaml'));
}

const cluster = (out: EnvoyResources, name: string) => out.clusters.find((c) => c.name === name)!;
const routes = (out: EnvoyResources, port: number) => out.routes.find((r) => r.name === `${HOST}:${port}`)!.virtual_hosts[0]!.routes;

describe('consistentHash translation', () => {
  it('a host without a VirtualService: RING_HASH cluster (minimum_ring_size 1024) and the header hash on its default route', () => {
    const out = translate(resources(service, rule), proxy);
    const c = cluster(out, `outbound|8000||${HOST}`);
    assert.equal(c.lb_policy, 'RING_HASH');
    assert.deepEqual(c.ring_hash_lb_config, { minimum_ring_size: { value: 1024 } });
    assert.deepEqual(routes(out, 8000)[0]!.route!.hash_policy, [{ header: { header_name: 'x-user' } }]);
    // Port-level settings win for their port: Maglev on 9000, keyed by the query parameter.
    const admin = cluster(out, `outbound|9000||${HOST}`);
    assert.equal(admin.lb_policy, 'MAGLEV');
    assert.deepEqual(admin.maglev_lb_config, { table_size: { value: 1009 } });
    assert.deepEqual(routes(out, 9000)[0]!.route!.hash_policy, [{ query_parameter: { name: 'user' } }]);
    // The subset's own policy: a cookie with ttl and path.
    assert.equal(cluster(out, `outbound|8000|v1|${HOST}`).lb_policy, 'RING_HASH');
  });

  it('one hash_policy per weighted destination, each from its subset (as istiod appends them)', () => {
    const vs = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop]
  http:
    - route:
        - { destination: { host: shop, subset: v1, port: { number: 8000 } }, weight: 50 }
        - { destination: { host: shop, subset: v2, port: { number: 8000 } }, weight: 50 }
`;
    const out = translate(resources(service, rule, vs), proxy);
    assert.deepEqual(routes(out, 8000)[0]!.route!.hash_policy, [
      { cookie: { name: 's', path: '/cart', ttl: { seconds: 90, nanos: 0 } } },
      { header: { header_name: 'x-user' } },
    ]);
  });

  it('no consistentHash: no hash policy and the simple balancer', () => {
    const out = translate(resources(service), proxy);
    assert.equal(cluster(out, `outbound|8000||${HOST}`).lb_policy, 'ROUND_ROBIN');
    assert.equal(routes(out, 8000)[0]!.route!.hash_policy, undefined);
  });

  it('the control plane\'s route cache follows a DestinationRule that starts or stops hashing', () => {
    const cache = new TranslateCache();
    const base = resources(service);
    cache.rotate();
    assert.equal(routes(translate(base, proxy, cache), 8000)[0]!.route!.hash_policy, undefined);
    cache.rotate();
    const withRule = translate([...base, ...resources(rule)], proxy, cache);
    assert.deepEqual(routes(withRule, 8000)[0]!.route!.hash_policy, [{ header: { header_name: 'x-user' } }]);
    cache.rotate();
    assert.equal(routes(translate(base, proxy, cache), 8000)[0]!.route!.hash_policy, undefined);
  });
});
