/**
 * exportTo as istiod applies it. Each case cites the rule it copies, at
 * istio/istio 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c:
 * pilot/pkg/model/push_context.go (IsServiceVisible / serviceExportTo,
 * initVirtualServices + VirtualServicesForGateway, setDestinationRules +
 * destinationRule + getExportedDestinationRuleFromNamespace, the
 * exportToDefaults from MeshConfig).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseYaml } from '../../src/config/load.js';
import { parseResources } from '../../src/config/resources.js';
import { translate, TranslateCache, type ProxyInfo } from '../../src/config/translate.js';
import { checkMeshConfig } from '../../src/config/mesh-config.js';
import { MeshConfigError } from '../../src/errors.js';
import type { EnvoyResources } from '../../src/config/envoy.js';

const proxy = (namespace: string, extra: Partial<ProxyInfo> = {}): ProxyInfo => ({ name: 'client', namespace, labels: { app: 'client' }, ...extra });
const parse = (yaml: string) => parseResources(parseYaml(yaml, 'test'));

const se = (ns: string, host: string, exportTo?: string) => `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${host.split('.')[0]}-${ns}, namespace: ${ns} }
spec:
  hosts: [${host}]
  resolution: STATIC
  ports: [{ number: 80, name: http }]
  endpoints: [{ address: 127.0.0.1, labels: { version: v1 } }]
${exportTo ? `  exportTo: ${exportTo}\n` : ''}`;

const vs = (ns: string, name: string, host: string, dest: string, exportTo?: string) => `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: ${ns} }
spec:
  hosts: [${host}]
  http: [{ name: ${name}, route: [{ destination: { host: ${dest} } }] }]
${exportTo ? `  exportTo: ${exportTo}\n` : ''}`;

const dr = (ns: string, name: string, host: string, lb: string, exportTo?: string) => `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: ${ns} }
spec:
  host: ${host}
  trafficPolicy: { loadBalancer: { simple: ${lb} } }
${exportTo ? `  exportTo: ${exportTo}\n` : ''}`;

const HOST = 'api.example.com';
/** The route name the proxy's route table for `host:80` uses, or undefined when it has none. */
const routeName = (out: EnvoyResources, host = HOST) => out.routes.find((r) => r.name === `${host}:80`)?.virtual_hosts[0]!.routes[0]!.name;
const lbOf = (out: EnvoyResources, host = HOST) => out.clusters.find((c) => c.name === `outbound|80||${host}`)?.lb_policy;

describe('VirtualService exportTo (initVirtualServices, VirtualServicesForGateway)', () => {
  const base = se('b', HOST) + se('b', 'other.example.com');

  it('a VirtualService exported to `.` from b is not seen by a workload in a; it is in b', () => {
    const config = parse(base + vs('b', 'private-b', HOST, 'other.example.com', '["."]'));
    assert.equal(routeName(translate(config, proxy('a'))), 'default', 'a sees the service, not the VirtualService');
    assert.equal(routeName(translate(config, proxy('b'))), 'private-b');
  });

  it('exported to a namespace by name: seen there and nowhere else; `~` is refused for a VirtualService', () => {
    const config = parse(base + vs('b', 'to-a', HOST, 'other.example.com', '[a]'));
    assert.equal(routeName(translate(config, proxy('a'))), 'to-a');
    assert.equal(routeName(translate(config, proxy('c'))), 'default');
    // Istio's controller turns `.` into the own namespace; a list without it hides it from its own namespace too.
    assert.equal(routeName(translate(config, proxy('b'))), 'default');
    assert.throws(() => parse(vs('b', 'none', HOST, HOST, '["~"]')), (e: unknown) => e instanceof MeshConfigError && e.path === 'spec.exportTo[0]');
  });

  it('of several for one host, the own namespace\'s wins over an exported one, which wins over a public one', () => {
    // VirtualServicesForGateway: privateByNamespace, then exportedToNamespace, then public; first wins per host.
    const config = parse(base + vs('c', 'public-c', HOST, 'other.example.com') + vs('d', 'to-a-d', HOST, 'other.example.com', '[a]') + vs('a', 'own-a', HOST, 'other.example.com', '["."]'));
    assert.equal(routeName(translate(config, proxy('a'))), 'own-a');
    const withoutOwn = parse(base + vs('c', 'public-c', HOST, 'other.example.com') + vs('d', 'to-a-d', HOST, 'other.example.com', '[a]'));
    assert.equal(routeName(translate(withoutOwn, proxy('a'))), 'to-a-d');
    assert.equal(routeName(translate(withoutOwn, proxy('e'))), 'public-c');
  });

  it('meshConfig defaultVirtualServiceExportTo [.] makes a VirtualService without exportTo private; its own exportTo wins', () => {
    const meshConfig = checkMeshConfig({ defaultVirtualServiceExportTo: ['.'] }, 'MeshOptions', 'meshConfig', 'meshConfig');
    const config = parse(base + vs('b', 'plain', HOST, 'other.example.com'));
    assert.equal(routeName(translate(config, proxy('a', { exportTo: meshConfig }))), 'default');
    assert.equal(routeName(translate(config, proxy('b', { exportTo: meshConfig }))), 'plain');
    assert.equal(routeName(translate(config, proxy('a'))), 'plain', 'the default default is *');
    const explicit = parse(base + vs('b', 'public', HOST, 'other.example.com', '["*"]'));
    assert.equal(routeName(translate(explicit, proxy('a', { exportTo: meshConfig }))), 'public');
  });
});

describe('ServiceEntry exportTo (IsServiceVisible, serviceExportTo)', () => {
  it('`.` hides the entry from other namespaces: no route table, no cluster', () => {
    const config = parse(se('b', HOST, '["."]'));
    assert.equal(routeName(translate(config, proxy('a'))), undefined);
    assert.equal(lbOf(translate(config, proxy('a'))), undefined);
    assert.equal(routeName(translate(config, proxy('b'))), 'default');
  });

  it('`~` hides it from every namespace, its own included; a namespace list shows it to those namespaces', () => {
    const none = parse(se('b', HOST, '["~"]'));
    for (const ns of ['a', 'b']) assert.equal(routeName(translate(none, proxy(ns))), undefined, ns);
    const listed = parse(se('b', HOST, '[a, c]'));
    assert.equal(routeName(translate(listed, proxy('a'))), 'default');
    assert.equal(routeName(translate(listed, proxy('b'))), undefined);
  });

  it('a hidden entry leaves its host to another namespace\'s entry for the same host', () => {
    const config = parse(se('b', HOST, '["."]') + se('c', HOST).replace('127.0.0.1', '127.0.0.2'));
    const out = translate(config, proxy('a'));
    const endpoints = out.endpoints.find((e) => e.cluster_name === `outbound|80||${HOST}`)!;
    assert.equal(JSON.stringify(endpoints).includes('127.0.0.2'), true);
  });

  it('meshConfig defaultServiceExportTo [.] scopes entries without exportTo', () => {
    const meshConfig = checkMeshConfig({ defaultServiceExportTo: ['.'] }, 'MeshOptions', 'meshConfig', 'meshConfig');
    const config = parse(se('b', HOST));
    assert.equal(routeName(translate(config, proxy('a', { exportTo: meshConfig }))), undefined);
    assert.equal(routeName(translate(config, proxy('b', { exportTo: meshConfig }))), 'default');
    assert.throws(() => checkMeshConfig({ defaultServiceExportTo: ['Bad_NS'] }, 'MeshOptions', 'meshConfig', 'meshConfig'), (e: unknown) => e instanceof MeshConfigError && e.path === 'meshConfig.defaultServiceExportTo[0]');
  });
});

describe('DestinationRule lookup (destinationRule: own namespace, service namespace, root namespace)', () => {
  const service = se('svc', HOST);

  it('the workload\'s own namespace first, then the service\'s namespace, then istio-system', () => {
    const all = parse(service + dr('istio-system', 'root', HOST, 'LEAST_REQUEST') + dr('svc', 'svc', HOST, 'RANDOM') + dr('a', 'own', HOST, 'ROUND_ROBIN'));
    assert.equal(lbOf(translate(all, proxy('a'))), 'ROUND_ROBIN');
    assert.equal(lbOf(translate(all, proxy('b'))), 'RANDOM');
    const rootOnly = parse(service + dr('istio-system', 'root', HOST, 'LEAST_REQUEST'));
    assert.equal(lbOf(translate(rootOnly, proxy('b'))), 'LEAST_REQUEST');
  });

  it('a rule exported to `.` applies only in its namespace; one in a third namespace applies nowhere else', () => {
    const config = parse(service + dr('svc', 'private', HOST, 'RANDOM', '["."]'));
    assert.equal(lbOf(translate(config, proxy('svc'))), 'RANDOM');
    assert.equal(lbOf(translate(config, proxy('a'))), 'ROUND_ROBIN', 'the default policy');
    // getExportedDestinationRuleFromNamespace looks only in the service's and the root namespace.
    const third = parse(service + dr('x', 'third', HOST, 'RANDOM'));
    assert.equal(lbOf(translate(third, proxy('a'))), 'ROUND_ROBIN');
    assert.equal(lbOf(translate(third, proxy('x'))), 'RANDOM');
  });

  it('exported by name to a: a applies it, b does not; defaultDestinationRuleExportTo [.] keeps a plain rule home', () => {
    const named = parse(service + dr('svc', 'to-a', HOST, 'RANDOM', '[a]'));
    assert.equal(lbOf(translate(named, proxy('a'))), 'RANDOM');
    assert.equal(lbOf(translate(named, proxy('b'))), 'ROUND_ROBIN');
    const meshConfig = checkMeshConfig({ defaultDestinationRuleExportTo: ['.'] }, 'MeshOptions', 'meshConfig', 'meshConfig');
    const plain = parse(service + dr('svc', 'plain', HOST, 'RANDOM'));
    assert.equal(lbOf(translate(plain, proxy('a', { exportTo: meshConfig }))), 'ROUND_ROBIN');
    assert.equal(lbOf(translate(plain, proxy('svc', { exportTo: meshConfig }))), 'RANDOM');
  });
});

describe('DestinationRule wildcard hosts (MostSpecificHostMatch in destinationRule)', () => {
  it('`*.example.com` applies to api.example.com; an exact rule, then a longer wildcard, win; each step of the lookup first', () => {
    const service = se('svc', HOST);
    assert.equal(lbOf(translate(parse(service + dr('svc', 'wild', '"*.example.com"', 'RANDOM')), proxy('a'))), 'RANDOM');
    const both = parse(service + dr('svc', 'wild', '"*.com"', 'RANDOM') + dr('svc', 'longer', '"*.example.com"', 'LEAST_REQUEST'));
    assert.equal(lbOf(translate(both, proxy('a'))), 'LEAST_REQUEST');
    const exact = parse(service + dr('svc', 'longer', '"*.example.com"', 'LEAST_REQUEST') + dr('svc', 'exact', HOST, 'RANDOM'));
    assert.equal(lbOf(translate(exact, proxy('a'))), 'RANDOM');
    // A wildcard rule in the workload's own namespace beats an exact one in the service's namespace.
    const own = parse(service + dr('svc', 'exact', HOST, 'RANDOM') + dr('a', 'own-wild', '"*.example.com"', 'LEAST_REQUEST'));
    assert.equal(lbOf(translate(own, proxy('a'))), 'LEAST_REQUEST');
    assert.equal(lbOf(translate(own, proxy('b'))), 'RANDOM');
  });
});

describe('the control plane\'s translation cache scopes per namespace', () => {
  it('alternating namespaces through one TranslateCache gives each its own view, as fresh translations do', () => {
    const config = parse(se('b', HOST) + se('b', 'other.example.com', '["."]') + vs('b', 'private-b', HOST, 'other.example.com', '["."]') + vs('c', 'public-c', HOST, 'other.example.com'));
    const cache = new TranslateCache();
    for (let round = 0; round < 3; round++) {
      cache.rotate();
      for (const ns of ['a', 'b', 'c']) {
        const cached = translate(config, proxy(ns), cache);
        const fresh = translate(config, proxy(ns));
        assert.deepEqual(cached, fresh, `${ns}, round ${round}`);
      }
    }
    assert.equal(routeName(translate(config, proxy('b'), cache)), 'private-b');
    assert.equal(routeName(translate(config, proxy('a'), cache)), 'public-c');
    assert.equal(translate(config, proxy('a'), cache).routes.some((r) => r.name === 'other.example.com:80'), false);
  });
});
