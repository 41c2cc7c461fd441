import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { createMesh, seededRandom, type Mesh } from '../../src/index.js';
import { createMeshGrpc, type MeshGrpc } from '../../src/grpc/index.js';
import { CalculateClient, type Result } from '../../examples/grpc/proto.js';
import { grpcCalculateService, grpcCalculateSubsets, startGrpcServer, type GrpcTestServer } from '../helpers/grpc-servers.js';
import { calculateRoutes, docs } from '../helpers/mesh-config.js';

const TARGET = 'calculate.default.svc.cluster.local:9000';

describe('gRPC streaming through the mesh', () => {
  let v1: GrpcTestServer;
  let v2: GrpcTestServer;
  let mesh: Mesh;
  let grpc: MeshGrpc;
  let client: CalculateClient;

  before(async () => {
    v1 = await startGrpcServer('v1');
    v2 = await startGrpcServer('v2');
    const random = seededRandom(3);
    // Istio's default retry policy applies: calls stay uncommitted (buffered) until the first response message.
    mesh = await createMesh({ random, config: docs(grpcCalculateService([{ port: v1.port, version: 'v1' }, { port: v2.port, version: 'v2' }]), grpcCalculateSubsets(), calculateRoutes(`
    - match: [{ uri: { prefix: /calculate.Calculate/Pipe }, headers: { slow: { exact: 'yes' } } }]
      timeout: 300ms
      route: [{ destination: { host: calculate, subset: v2 } }]
    - route: [{ destination: { host: calculate, subset: v2 } }]`)) });
    grpc = createMeshGrpc(mesh, { random });
    client = new CalculateClient(TARGET, credentials.createInsecure(), grpc.clientOptions());
  });
  after(async () => {
    client.close();
    await grpc.close(0);
    await mesh.close();
    await Promise.all([v1.close(), v2.close()]);
  });

  it('server streaming delivers every message in order', async () => {
    const got: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const s = client.Series({ x: 2, y: 1, count: 100 });
      s.on('data', (r: Result) => got.push(r.value));
      s.on('error', reject);
      s.on('end', resolve);
    });
    assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => 2 * (1 + i)));
  });

  it('client streaming folds every message', async () => {
    const result = await new Promise<Result>((resolve, reject) => {
      const w = client.Fold(new Metadata(), {}, (err, r) => (err ? reject(err) : resolve(r!)));
      for (let i = 1; i <= 5; i++) w.write({ x: i, y: 1 });
      w.end();
    });
    assert.equal(result.value, 1 * 2 * 3 * 4 * 5);
    assert.equal(result.version, 'v2');
  });

  it('a bidi stream passes 1,000 messages both ways', async () => {
    const N = 1000;
    const got: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const d = client.Pipe();
      d.on('data', (r: Result) => got.push(r.value));
      d.on('error', reject);
      d.on('end', resolve);
      let i = 0;
      const writeMore = (): void => {
        while (i < N) {
          const ok = d.write({ x: i, y: 2 });
          i++;
          if (!ok) return void d.once('drain', writeMore);
        }
        d.end();
      };
      writeMore();
    });
    assert.equal(got.length, N);
    assert.deepEqual(got, Array.from({ length: N }, (_, i) => i * 2));
  });

  it('the route timeout applies to the whole streaming call', async () => {
    const md = new Metadata();
    md.set('slow', 'yes');
    const t0 = performance.now();
    const err = await new Promise<ServiceError>((resolve) => {
      const d = client.Pipe(md);
      d.on('data', () => undefined);
      d.on('error', resolve);
      d.write({ x: 1, y: 1 });
      // never ends its side: only the timeout can finish the call
    });
    assert.equal(err.code, status.DEADLINE_EXCEEDED);
    assert.ok(performance.now() - t0 >= 250);
  });
});
