/**
 * Istio's own Gateway API translation testdata (pilot/pkg/config/kube/gateway/
 * testdata/mesh.yaml and its golden VirtualServices; see
 * test/fixtures/gateway-api/README.md): the mesh VirtualServices meshlet makes
 * of the input route the same hosts, in the same order, with the same
 * matches, header operations and destinations as istiod's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { admitResources } from '../../../src/config/admission.js';
import { parseYaml } from '../../../src/config/load.js';
import { withGatewayApiRoutes } from '../../../src/config/gateway-api/index.js';
import type { HTTPRoute, IstioResource, ResourceOf } from '../../../src/config/istio-types.js';
import { parseDuration } from '../../../src/core/duration.js';

const dir = new URL('../../fixtures/gateway-api/istio/', import.meta.url);
const read = (f: string) => readFileSync(new URL(f, dir), 'utf8');

/** The Services Istio's test harness defines for mesh.yaml, as ServiceEntries. */
function services(hosts: Array<[name: string, ns: string, ports: number[]]>): string {
  return hosts.map(([name, ns, ports]) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: ${ns} }
spec:
  hosts: [${name}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [${ports.map((p) => `{ number: ${p}, name: http-${p}, protocol: HTTP }`).join(', ')}]
  endpoints: [{ address: 127.0.0.1 }]
`).join('---\n');
}

/** A route as istiod's golden writes it: zero weights omitted, hosts with cluster.local. */
function normalize(routes: readonly HTTPRoute[]): unknown {
  return JSON.parse(JSON.stringify(routes, (k, v) => (k === 'weight' && v === 0 ? undefined : v)).replaceAll('domain.suffix', 'cluster.local'));
}

test('mesh.yaml: the mesh VirtualServices match istiod\'s golden output', () => {
  const input = read('testdata-mesh.yaml') + '---\n' + services([
    ['echo', 'default', [80]], ['example', 'default', [80]], ['echo-port', 'default', [80]],
    ['echo-1', 'default', [80, 8080]], ['echo-2', 'default', [80]], ['httpbin-apple', 'apple', [80]],
  ]);
  const admitted = admitResources(parseYaml(input, 'mesh.yaml'), 'analyze');
  const ours = withGatewayApiRoutes(admitted.resources).filter((r): r is ResourceOf<'VirtualService'> => r.kind === 'VirtualService');
  const docs = parseAllDocuments(read('testdata-mesh.yaml.golden')).map((d) => d.toJS()).filter(Boolean) as Array<{ kind: string; metadata: { namespace: string }; spec: { gateways?: string[]; hosts: string[]; http?: HTTPRoute[] } }>;
  const meshGolden = docs.filter((d) => d.kind === 'VirtualService' && d.spec.gateways?.includes('mesh') && d.spec.http);
  assert.ok(meshGolden.length >= 6, 'the golden file has the mesh VirtualServices');
  // istiod writes one VirtualService per (namespace, port, host); meshlet one per (namespace, host) whose
  // routes carry the port match: compare per namespace and host, port by port.
  const byHost = new Map<string, HTTPRoute[]>();
  for (const d of meshGolden) {
    const key = `${d.metadata.namespace}/${d.spec.hosts[0]!.replace('domain.suffix', 'cluster.local')}`;
    byHost.set(key, [...(byHost.get(key) ?? []), ...d.spec.http!]);
  }
  for (const [key, routes] of byHost) {
    const vs = ours.find((v) => `${v.metadata.namespace}/${v.spec.hosts![0]}` === key);
    assert.ok(vs, `meshlet makes a VirtualService for ${key}`);
    assert.deepEqual(vs.spec.gateways, ['mesh']);
    const port = (r: HTTPRoute) => r.match?.[0]?.port ?? 0;
    const sort = (rs: readonly HTTPRoute[]) => [...rs].sort((a, b) => port(a) - port(b));
    assert.deepEqual(normalize(sort(vs.spec.http!)), normalize(sort(routes)), key);
  }
  // Istio's route-semantics annotation marks them, and nothing else was made for mesh parents.
  const made = ours.filter((v) => v.metadata.annotations?.['internal.istio.io/route-semantics'] === 'gateway' && v.spec.gateways?.includes('mesh'));
  assert.equal(made.length, byHost.size);
  // The `dual` route also attaches to the Gateway: that VirtualService is istiod's too.
  const dual = docs.find((d) => d.kind === 'VirtualService' && d.spec.hosts[0] === 'foo.example.com')!;
  const ourDual = ours.find((v) => v.spec.hosts?.[0] === 'foo.example.com');
  assert.deepEqual(ourDual?.spec.gateways, dual.spec.gateways);
  assert.deepEqual(normalize(ourDual!.spec.http!), normalize(dual.spec.http!));
});

test('mesh.yaml: the consumer route (Service in another namespace) applies only to its own namespace', () => {
  const input = read('testdata-mesh.yaml') + '---\n' + services([['httpbin-apple', 'apple', [80]], ['echo', 'default', [80]]]);
  const admitted = admitResources(parseYaml(input, 'mesh.yaml'), 'analyze');
  const vs = withGatewayApiRoutes(admitted.resources).find((r: IstioResource) => r.kind === 'VirtualService' && r.spec.hosts?.[0] === 'httpbin-apple.apple.svc.cluster.local');
  assert.equal(vs?.metadata.namespace, 'default');
  assert.equal(vs?.metadata.annotations?.['internal.meshlet.dev/consumer-namespace'], 'default');
});

test('grpc.yaml (a GRPCRoute on a Gateway): the Istio Gateway and bound VirtualServices match istiod\'s golden output', () => {
  const input = read('testdata-grpc.yaml') + '---\n' + services([['httpbin', 'default', [80]]]);
  const admitted = admitResources(parseYaml(input, 'grpc.yaml'), 'analyze');
  const ours = withGatewayApiRoutes(admitted.resources);
  const golden = parseAllDocuments(read('testdata-grpc.yaml.golden')).map((d) => d.toJS()).filter(Boolean) as Array<{ kind: string; metadata: { name: string; namespace: string }; spec: Record<string, unknown> }>;
  assert.ok(golden.length >= 3);
  for (const g of golden) {
    const mine = ours.find((r) => r.kind === g.kind && r.metadata.name === g.metadata.name && r.metadata.namespace === g.metadata.namespace);
    assert.ok(mine, `meshlet makes ${g.kind} ${g.metadata.namespace}/${g.metadata.name}`);
    if (g.kind === 'Gateway') {
      assert.deepEqual((mine.spec as { servers: unknown }).servers, g.spec.servers);
    } else {
      const spec = mine.spec as { gateways?: string[]; hosts?: string[]; http?: HTTPRoute[] };
      assert.deepEqual(spec.gateways, g.spec.gateways);
      assert.deepEqual(spec.hosts, g.spec.hosts);
      assert.deepEqual(normalize(spec.http!), normalize(g.spec.http as HTTPRoute[]));
    }
  }
});

/** Durations as milliseconds, so `3ms` and istiod's `0.003s` compare equal. */
function durations(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value), (k, v) => (['timeout', 'perTryTimeout', 'backoff'].includes(k) && typeof v === 'string' ? parseDuration(v) : v));
}

test('http.yaml (HTTPRoutes on a Gateway): every Istio Gateway and VirtualService matches istiod\'s golden, but CORS and InferencePool', () => {
  const svc = (n: string) => services([[n, 'default', [80]]]);
  const input = [read('testdata-http.yaml'), ...['httpbin', 'httpbin-second', 'httpbin-wildcard', 'httpbin-mirror', 'httpbin-other'].map(svc)].join('---\n');
  const admitted = admitResources(parseYaml(input, 'http.yaml'), 'analyze');
  const ours = withGatewayApiRoutes(admitted.resources);
  const golden = parseAllDocuments(read('testdata-http.yaml.golden')).map((d) => d.toJS()).filter(Boolean) as Array<{ kind: string; metadata: { name: string; namespace: string }; spec: { servers?: unknown; gateways?: string[]; hosts?: string[]; http?: HTTPRoute[] } }>;
  // Not applied by meshlet, and said so: CORS filters are refused, InferencePool backends do not resolve.
  const byName = new Map(admitted.statuses.map((s) => [s.name, s]));
  assert.equal(byName.get('http-route-cors')?.status, 'rejected');
  assert.equal(byName.get('http-route-cors-wildcard-1')?.status, 'rejected');
  assert.equal(byName.get('multi-route-infpool-1')?.conditions?.find((c) => c.type === 'ResolvedRefs')?.reason, 'InvalidKind');
  let compared = 0;
  for (const g of golden) {
    if (/cors|infpool/.test(g.metadata.name)) continue;
    const mine = ours.find((r) => r.kind === g.kind && r.metadata.name === g.metadata.name && r.metadata.namespace === g.metadata.namespace);
    assert.ok(mine, `meshlet makes ${g.kind} ${g.metadata.namespace}/${g.metadata.name}`);
    const spec = mine.spec as typeof g.spec;
    if (g.kind === 'Gateway') assert.deepEqual(spec.servers, g.spec.servers);
    else {
      assert.deepEqual([spec.gateways, spec.hosts], [g.spec.gateways, g.spec.hosts], g.metadata.name);
      assert.deepEqual(durations(normalize(spec.http!)), durations(normalize(g.spec.http!)), g.metadata.name);
    }
    compared++;
  }
  assert.ok(compared >= 8, `compared ${compared}`);
});
