/**
 * GRPCRoute on a mesh (GAMMA) parent, over real grpc-js: weights (the
 * conformance suite's MeshGRPCRouteWeight, conformance/tests/mesh/grpcroute-weight.go,
 * kubernetes-sigs/gateway-api 4564255ac2c35d582249b3cdf261bdf51c8bca32, with
 * the calculate service standing in for its echo), service/method matches
 * and the RequestHeaderModifier filter (grpcroute-request-header-modifier.go).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { credentials, Metadata } from '@grpc/grpc-js';
import { createMesh, seededRandom, type Mesh } from '../../src/index.js';
import { calculate, CalculateClient } from '../../examples/grpc/proto.js';
import { startGrpcServer, type GrpcTestServer } from '../helpers/grpc-servers.js';

const TARGET = 'calculate.default.svc.cluster.local:9000';

describe('GRPCRoute (mesh)', () => {
  let v1: GrpcTestServer;
  let v2: GrpcTestServer;
  let registry: string;
  before(async () => {
    v1 = await startGrpcServer('v1');
    v2 = await startGrpcServer('v2');
    const service = (name: string, selector: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: default }
spec:
  hosts: [${name}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9000, name: grpc, protocol: GRPC }]
  workloadSelector: { labels: { ${selector} } }
`;
    const pod = (s: GrpcTestServer) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: calculate-${s.version}, namespace: default }
spec: { address: 127.0.0.1, labels: { app: calculate, version: ${s.version} }, ports: { grpc: ${s.port} } }
`;
    registry = [service('calculate', 'app: calculate'), service('calculate-v1', 'app: calculate, version: v1'), service('calculate-v2', 'app: calculate, version: v2'), pod(v1), pod(v2)].join('---\n');
  });
  after(async () => {
    await Promise.all([v1.close(), v2.close()]);
  });

  async function withClient(route: string, fn: (client: CalculateClient, mesh: Mesh) => Promise<void>): Promise<void> {
    const mesh = await createMesh({ workload: { name: 'client', namespace: 'default', labels: { app: 'client' } }, config: `${registry}---\n${route}`, random: seededRandom(7070) });
    const client = new CalculateClient(TARGET, credentials.createInsecure(), mesh.grpc.clientOptions());
    try {
      assert.ok(mesh.configStatus().every((s) => s.status === 'applied'), JSON.stringify(mesh.configStatus()));
      await fn(client, mesh);
    } finally {
      client.close();
      await mesh.close();
    }
  }

  it('MeshGRPCRouteWeight: 70/30 within ±3 points over 2,000 calls; a weight-0 backend gets none', () => withClient(`apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: weighted, namespace: default }
spec:
  parentRefs: [{ group: "", kind: Service, name: calculate, port: 9000 }]
  rules:
  - backendRefs:
    - { name: calculate-v1, port: 9000, weight: 70 }
    - { name: calculate-v2, port: 9000, weight: 30 }
    - { name: calculate-v9, port: 9000, weight: 0 }
`, async (client) => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 2000; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, () => calculate(client, { x: 2, y: 3 })));
      for (const r of batch) counts[r.version] = (counts[r.version] ?? 0) + 1;
    }
    assert.equal((counts.v1 ?? 0) + (counts.v2 ?? 0), 2000);
    assert.ok(Math.abs((counts.v1 ?? 0) / 2000 - 0.7) <= 0.03, JSON.stringify(counts));
  }));

  it('service/method matches and RequestHeaderModifier: metadata set and added on the matched rule only', () => withClient(`apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: methods, namespace: default }
spec:
  parentRefs: [{ group: "", kind: Service, name: calculate }]
  rules:
  - matches: [{ method: { service: calculate.Calculate, method: Calculate }, headers: [{ name: x-test-case, value: set }] }]
    filters: [{ type: RequestHeaderModifier, requestHeaderModifier: { set: [{ name: x-header-set, value: set-overwrites-values }] } }]
    backendRefs: [{ name: calculate-v2, port: 9000 }]
  - matches: [{ method: { service: calculate.Calculate } }]
    filters: [{ type: RequestHeaderModifier, requestHeaderModifier: { add: [{ name: x-header-add, value: add-appends-values }] } }]
    backendRefs: [{ name: calculate-v1, port: 9000 }]
`, async (client, mesh) => {
    const routes = mesh.configDump().routes.find((r) => r.name === TARGET)!.virtual_hosts[0]!.routes;
    assert.deepEqual(routes.map((r) => r.match.path ?? r.match.path_separated_prefix ?? r.match.prefix), ['/calculate.Calculate/Calculate', '/calculate.Calculate']);
    const md = new Metadata();
    md.set('x-test-case', 'set');
    md.set('x-header-set', 'original');
    const r1 = await calculate(client, { x: 2, y: 3 }, md);
    assert.equal(r1.version, 'v2');
    assert.deepEqual(v2.lastMetadata?.get('x-header-set'), ['set-overwrites-values']);
    const r2 = await calculate(client, { x: 2, y: 3 });
    assert.equal(r2.version, 'v1');
    assert.deepEqual(v1.lastMetadata?.get('x-header-add'), ['add-appends-values']);
  }));
});
