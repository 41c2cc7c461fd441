import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { credentials, Metadata, status } from '@grpc/grpc-js';
import { createMesh, seededRandom } from '../../src/index.js';
import { createMeshGrpc } from '../../src/grpc/index.js';
import { calculate, CalculateClient } from '../../examples/grpc/proto.js';
import { grpcCalculateService, grpcCalculateSubsets, startGrpcServer, type GrpcTestServer } from '../helpers/grpc-servers.js';
import { calculateRoutes, docs } from '../helpers/mesh-config.js';

const TARGET = 'calculate.default.svc.cluster.local:9000';

describe('gRPC routing over real grpc-js servers', () => {
  let v1: GrpcTestServer;
  let v2: GrpcTestServer;
  let service: string;

  before(async () => {
    v1 = await startGrpcServer('v1');
    v2 = await startGrpcServer('v2');
    service = grpcCalculateService([{ port: v1.port, version: 'v1' }, { port: v2.port, version: 'v2' }]);
  });
  after(async () => {
    await Promise.all([v1.close(), v2.close()]);
  });

  async function setup(routes: string, seed = 42) {
    const random = seededRandom(seed);
    const mesh = await createMesh({ random, config: docs(service, grpcCalculateSubsets(), calculateRoutes(routes)) });
    const grpc = createMeshGrpc(mesh, { random });
    const client = new CalculateClient(TARGET, credentials.createInsecure(), grpc.clientOptions());
    return {
      client,
      grpc,
      async close() {
        client.close();
        await grpc.close(0);
        await mesh.close();
      },
    };
  }

  it('splits 90/10 within ±3 points over 2,000 unary calls', async () => {
    const { client, close } = await setup(`
    - route:
        - { destination: { host: calculate, subset: v1 }, weight: 90 }
        - { destination: { host: calculate, subset: v2 }, weight: 10 }`);
    try {
      const counts: Record<string, number> = {};
      for (let i = 0; i < 2000; i += 100) {
        const batch = await Promise.all(Array.from({ length: 100 }, () => calculate(client, { x: 3, y: 4 })));
        for (const r of batch) {
          counts[r.version] = (counts[r.version] ?? 0) + 1;
          assert.equal(r.value, r.version === 'v1' ? 7 : 12);
        }
      }
      assert.equal((counts.v1 ?? 0) + (counts.v2 ?? 0), 2000);
      const share = (counts.v1 ?? 0) / 2000;
      assert.ok(Math.abs(share - 0.9) <= 0.03, `v1 share ${share}`);
    } finally {
      await close();
    }
  });

  it('routes metadata `version: dog` to v2 and the rest to v1, matching on the :path prefix', async () => {
    const { client, close } = await setup(`
    - match: [{ uri: { prefix: /calculate.Calculate/ }, headers: { version: { exact: dog } } }]
      route: [{ destination: { host: calculate, subset: v2 } }]
    - match: [{ uri: { prefix: /calculate.Calculate/ } }]
      route: [{ destination: { host: calculate, subset: v1 } }]`);
    try {
      const dog = new Metadata();
      dog.set('version', 'dog');
      for (let i = 0; i < 20; i++) {
        assert.equal((await calculate(client, { x: 3, y: 4 }, dog)).version, 'v2');
        assert.equal((await calculate(client, { x: 3, y: 4 })).version, 'v1');
      }
      assert.equal(v2.lastMetadata?.get('version')[0], 'dog');
      assert.equal(v1.lastMetadata?.get(':authority').length ?? 0, 0); // pseudo-headers are not metadata
    } finally {
      await close();
    }
  });

  it('fails UNAVAILABLE naming NR when no route matches the method', async () => {
    const { client, close } = await setup(`
    - match: [{ uri: { prefix: /other.Service/ } }]
      route: [{ destination: { host: calculate, subset: v1 } }]`);
    try {
      await assert.rejects(calculate(client, { x: 1, y: 2 }), (err: { code: number; details: string; metadata: Metadata }) => {
        assert.equal(err.code, status.UNAVAILABLE);
        assert.match(err.details, /\(NR\)/);
        assert.equal(err.metadata.get('x-meshlet-flags')[0], 'NR');
        return true;
      });
    } finally {
      await close();
    }
  });

  it('fails UNAVAILABLE naming UH when the subset has no endpoint', async () => {
    const { client, close } = await setup(`
    - route: [{ destination: { host: calculate, subset: v3 } }]`);
    try {
      await assert.rejects(calculate(client, { x: 1, y: 2 }), (err: { code: number; details: string }) => {
        assert.equal(err.code, status.UNAVAILABLE);
        assert.match(err.details, /no healthy upstream \(UH\)|\(NC\)/);
        return true;
      });
    } finally {
      await close();
    }
  });

  it('passes hosts the mesh does not know straight through (ALLOW_ANY), or fails NR under REGISTRY_ONLY', async () => {
    const mesh = await createMesh({ config: docs(service, grpcCalculateSubsets(), calculateRoutes(`
    - route: [{ destination: { host: calculate, subset: v1 } }]`)) });
    const open = createMeshGrpc(mesh);
    const strict = createMeshGrpc(mesh, { outboundTrafficPolicy: 'REGISTRY_ONLY' });
    const direct = new CalculateClient(`127.0.0.1:${v2.port}`, credentials.createInsecure(), open.clientOptions());
    const blocked = new CalculateClient(`127.0.0.1:${v2.port}`, credentials.createInsecure(), strict.clientOptions());
    try {
      assert.equal((await calculate(direct, { x: 2, y: 5 })).value, 10);
      await assert.rejects(calculate(blocked, { x: 2, y: 5 }), (err: { code: number; details: string }) => err.code === status.UNAVAILABLE && /\(NR\)/.test(err.details));
    } finally {
      direct.close();
      blocked.close();
      await Promise.all([open.close(0), strict.close(0)]);
      await mesh.close();
    }
  });

  it('keeps one endpoint channel per endpoint, shared by clients, closed with the mesh', async () => {
    const { client, grpc, close } = await setup(`
    - route:
        - { destination: { host: calculate, subset: v1 }, weight: 50 }
        - { destination: { host: calculate, subset: v2 }, weight: 50 }`);
    const second = new CalculateClient(TARGET, credentials.createInsecure(), grpc.clientOptions());
    try {
      const creds = credentials.createInsecure();
      const third = new CalculateClient(TARGET, creds, grpc.clientOptions());
      await Promise.all(Array.from({ length: 40 }, (_, i) => calculate([client, second][i % 2]!, { x: 1, y: 1 })));
      assert.ok(grpc.endpointChannels <= 4, `channels ${grpc.endpointChannels}`);
      third.close();
    } finally {
      second.close();
      await close();
    }
    assert.equal(grpc.endpointChannels, 0);
  });
});
