/**
 * localityLbSetting as istiod applies it. The first cases replay istiod's own
 * unit test (istio/istio pilot/pkg/networking/core/loadbalancer/loadbalancer_test.go
 * at 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c: TestApplyLocalitySetting
 * "Distribute", "Failover: all priorities", "Failover: priorities with gaps",
 * on its buildFakeCluster / buildSmallCluster localities); the rest check
 * failoverPriority, the translation of ServiceEntry endpoints into
 * ClusterLoadAssignments relative to the proxy's locality, and validation.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseYaml } from '../../src/config/load.js';
import { parseResources } from '../../src/config/resources.js';
import { translate } from '../../src/config/translate.js';
import { applyLocalitySetting, parseLocality, workloadLocality, type LocalityGroup } from '../../src/config/translate-locality.js';
import type { ServiceEndpoint } from '../../src/config/registry.js';
import { MeshConfigError } from '../../src/errors.js';

const proxy = { locality: parseLocality('region1/zone1/subzone1'), labels: { app: 'client' } };

function groups(localities: string[]): { groups: LocalityGroup[]; members: ServiceEndpoint[][] } {
  return {
    groups: localities.map((l) => ({ locality: parseLocality(l), lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 80 } } } }], load_balancing_weight: { value: 1 } })),
    members: localities.map((l) => [{ address: '10.0.0.1', ports: {}, labels: {}, weight: 1, namespace: 'ns', locality: l }]),
  };
}

// buildFakeCluster's localities.
const FAKE = ['region1/zone1/subzone1', 'region1/zone1/subzone1', 'region1/zone1/subzone2', 'region1/zone1/subzone3', 'region1/zone2', 'region2', 'region3'];

describe('istiod\'s ApplyLocalityLoadBalancer', () => {
  it('Distribute: weights 40 40 15 5, and localities the rule does not name get no endpoints', () => {
    const { groups: g, members } = groups(FAKE);
    const out = applyLocalitySetting(g, members, proxy, { distribute: [{ from: 'region1/zone1/subzone1', to: { 'region1/zone1/subzone1': 80, 'region1/zone1/subzone2': 15, 'region1/zone1/subzone3': 5 } }] }, true);
    assert.deepEqual(out.map((x) => (x.lb_endpoints.length === 0 ? 0 : x.load_balancing_weight.value)), [40, 40, 15, 5, 0, 0, 0]);
  });

  it('Failover (region1 → region2): same subzone 0, zone 1, region 2, the failover region 3, elsewhere 4', () => {
    const { groups: g, members } = groups(FAKE);
    const out = applyLocalitySetting(g, members, proxy, { failover: [{ from: 'region1', to: 'region2' }] }, true);
    assert.deepEqual(out.map((x) => x.priority), [0, 0, 1, 1, 2, 3, 4]);
  });

  it('Failover: priorities with gaps are compacted (buildSmallCluster → 0, 1, 1)', () => {
    const { groups: g, members } = groups(['region1/zone1/subzone2', 'region2/zone1/subzone2', 'region2/zone1/subzone2']);
    const out = applyLocalitySetting(g, members, proxy, { failover: [{ from: 'region1', to: 'region2' }] }, true);
    assert.deepEqual(out.map((x) => x.priority), [0, 1, 1]);
  });

  it('no failover without outlier detection (enableFailover false): priorities stay unset', () => {
    const { groups: g, members } = groups(FAKE);
    assert.deepEqual(applyLocalitySetting(g, members, proxy, { enabled: true }, false).map((x) => x.priority), FAKE.map(() => undefined));
  });

  it('failoverPriority: endpoints matching the proxy\'s labels in order get the lower priorities', () => {
    const g: LocalityGroup = { locality: parseLocality('region1/zone1'), lb_endpoints: [], load_balancing_weight: { value: 3 } };
    const members: ServiceEndpoint[] = [
      { address: '10.0.0.1', ports: {}, labels: { 'topology.istio.io/network': 'n1', version: 'v1' }, weight: 1, namespace: 'ns' },
      { address: '10.0.0.2', ports: {}, labels: { 'topology.istio.io/network': 'n1', version: 'v2' }, weight: 1, namespace: 'ns' },
      { address: '10.0.0.3', ports: {}, labels: { 'topology.istio.io/network': 'n2', version: 'v1' }, weight: 1, namespace: 'ns' },
    ];
    g.lb_endpoints = members.map((m) => ({ endpoint: { address: { socket_address: { address: m.address, port_value: 80 } } }, load_balancing_weight: { value: 1 } }));
    const self = { locality: parseLocality('region1/zone1'), labels: { 'topology.istio.io/network': 'n1', version: 'v1' } };
    const out = applyLocalitySetting([g], [members], self, { failoverPriority: ['topology.istio.io/network', 'version'] }, true);
    // network mismatch is adjusted past every label (istiod's includesNetwork rule): n1/v1 → 0, n1/v2 → 1, n2/v1 → 2.
    assert.deepEqual(out.map((x) => [x.priority, x.lb_endpoints.map((l) => l.endpoint.address.socket_address.address)]), [[0, ['10.0.0.1']], [1, ['10.0.0.2']], [2, ['10.0.0.3']]]);
  });

  it('reads workload locality as Istio: the locality field, the locality label (dots for slashes), the topology labels', () => {
    assert.equal(workloadLocality('us/east/1a', { 'topology.istio.io/locality': 'eu.west' }), 'us/east/1a');
    assert.equal(workloadLocality(undefined, { 'topology.istio.io/locality': 'eu.west.2' }), 'eu/west/2');
    assert.equal(workloadLocality(undefined, { 'istio-locality': 'eu/west' }), 'eu/west');
    assert.equal(workloadLocality(undefined, { 'topology.kubernetes.io/region': 'us', 'topology.kubernetes.io/zone': 'us-a', 'topology.istio.io/subzone': 'rack1' }), 'us/us-a/rack1');
    assert.equal(workloadLocality(undefined, { app: 'x' }), '');
  });
});

const yaml = (rule: string) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }]
  endpoints:
    - { address: 10.0.0.1, ports: { http: 80 }, locality: us-east/a }
    - { address: 10.0.0.2, ports: { http: 80 }, labels: { topology.kubernetes.io/region: us-east, topology.kubernetes.io/zone: b } }
    - { address: 10.0.0.3, ports: { http: 80 }, locality: eu-west/a }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: shop, namespace: default }
spec:
  host: shop
  trafficPolicy:
${rule}
`;

function assignmentFor(rule: string, locality: string | undefined) {
  const out = translate(parseResources(parseYaml(yaml(rule), 'x.yaml')), { name: 'c', namespace: 'default', labels: {}, ...(locality !== undefined && { locality }) });
  const name = 'outbound|8000||shop.default.svc.cluster.local';
  return { cla: out.endpoints.find((e) => e.cluster_name === name)!, cluster: out.clusters.find((c) => c.name === name)! };
}

describe('translation: ServiceEntry endpoints → LocalityLbEndpoints', () => {
  const od = '    outlierDetection: { consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 30s }';

  it('with outlier detection, the mesh default (enabled) gives proxy-relative priorities: same zone, same region, elsewhere', () => {
    const { cla, cluster } = assignmentFor(od, 'us-east/a');
    assert.deepEqual(cla.endpoints.map((e) => [e.locality, e.priority, e.lb_endpoints.map((l) => l.endpoint.address.socket_address.address)]), [
      [{ region: 'eu-west', zone: 'a', sub_zone: '' }, 2, ['10.0.0.3']],
      [{ region: 'us-east', zone: 'a', sub_zone: '' }, 0, ['10.0.0.1']],
      [{ region: 'us-east', zone: 'b', sub_zone: '' }, 1, ['10.0.0.2']],
    ]);
    // The mesh default names no failover: istiod leaves the cluster without locality weighting.
    assert.equal(cluster.common_lb_config?.locality_weighted_lb_config, undefined);
  });

  it('without outlier detection there is no failover: one priority, grouped by locality', () => {
    const { cla } = assignmentFor('    loadBalancer: { simple: ROUND_ROBIN }', 'us-east/a');
    assert.deepEqual(cla.endpoints.map((e) => e.priority), [undefined, undefined, undefined]);
  });

  it('distribute sets locality weights and locality-weighted balancing; an unknown proxy locality sets no priorities', () => {
    const { cla, cluster } = assignmentFor('    loadBalancer: { localityLbSetting: { distribute: [{ from: "us-east/*", to: { "us-east/*": 80, "eu-west/*": 20 } }] } }', 'us-east/b');
    assert.deepEqual(cla.endpoints.map((e) => e.load_balancing_weight?.value), [20, 40, 40]);
    assert.deepEqual(cluster.common_lb_config?.locality_weighted_lb_config, {});
    assert.deepEqual(assignmentFor(od, undefined).cla.endpoints.map((e) => e.priority), [undefined, undefined, undefined]);
  });

  it('refuses what istiod\'s validation refuses', () => {
    for (const [rule, path] of [
      ['    loadBalancer: { localityLbSetting: { distribute: [{ from: "a", to: { b: 50 } }] } }', 'distribute[0].to'],
      ['    loadBalancer: { localityLbSetting: { failover: [{ from: us-east, to: us-east }] } }', 'failover[0]'],
      ['    loadBalancer: { localityLbSetting: { failover: [{ from: us-east/a, to: eu-west }] } }', 'failover[0]'],
      ['    loadBalancer: { localityLbSetting: { distribute: [{ from: "a", to: { b: 100 } }], failover: [{ from: x, to: y }] } }', 'failover'],
    ] as const) {
      assert.throws(() => assignmentFor(rule, 'us-east/a'), (err: unknown) => err instanceof MeshConfigError && err.path.endsWith(`localityLbSetting.${path}`), rule);
    }
  });
});
