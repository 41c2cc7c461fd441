import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { credentials, Metadata } from '@grpc/grpc-js';
import { createMesh, seededRandom } from '../../src/index.js';
import { createMeshGrpc, parseTarget } from '../../src/grpc/index.js';
import { calculate, CalculateClient } from '../../examples/grpc/proto.js';
import { grpcCalculateService, grpcCalculateSubsets, startGrpcServer } from '../helpers/grpc-servers.js';
import { calculateRoutes, docs } from '../helpers/mesh-config.js';

describe('mesh.grpc.interceptor (bring your own channel)', () => {
  it('routes a call for a mesh authority through the mesh, and leaves other calls on the user channel with trace context', async () => {
    const v1 = await startGrpcServer('v1');
    const v2 = await startGrpcServer('v2');
    const random = seededRandom(5);
    const mesh = await createMesh({ random, config: docs(grpcCalculateService([{ port: v1.port, version: 'v1' }, { port: v2.port, version: 'v2' }]), grpcCalculateSubsets(), calculateRoutes(`
    - route: [{ destination: { host: calculate, subset: v2 } }]`)) });
    const grpc = createMeshGrpc(mesh, { random });
    // The user's channel points at v1; the mesh routes calculate to v2.
    const meshed = new CalculateClient(`127.0.0.1:${v1.port}`, credentials.createInsecure(), { interceptors: [grpc.interceptorFor('calculate.default.svc.cluster.local:9000')] });
    const plain = new CalculateClient(`127.0.0.1:${v1.port}`, credentials.createInsecure(), { interceptors: [grpc.interceptor] });
    try {
      assert.equal((await calculate(meshed, { x: 3, y: 4 })).version, 'v2');
      assert.equal((await calculate(meshed, { x: 3, y: 4 }, new Metadata(), { host: 'calculate.default.svc.cluster.local:9000' })).value, 12);
      assert.equal((await calculate(plain, { x: 3, y: 4 })).version, 'v1');
    } finally {
      meshed.close();
      plain.close();
      await grpc.close(0);
      await mesh.close();
      await Promise.all([v1.close(), v2.close()]);
    }
  });

  it('parses grpc-js targets', () => {
    assert.deepEqual(parseTarget('calculate.default.svc.cluster.local:9000'), { host: 'calculate.default.svc.cluster.local', port: 9000, authority: 'calculate.default.svc.cluster.local:9000' });
    assert.deepEqual(parseTarget('dns:///Calculate:9000'), { host: 'calculate', port: 9000, authority: 'calculate:9000' });
    assert.deepEqual(parseTarget('calculate'), { host: 'calculate', port: 443, authority: 'calculate:443' });
    assert.deepEqual(parseTarget('[::1]:50051'), { host: '::1', port: 50051, authority: '[::1]:50051' });
    assert.equal(parseTarget('unix:///tmp/sock'), undefined);
  });
});
