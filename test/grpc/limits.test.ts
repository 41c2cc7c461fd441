import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { credentials } from '@grpc/grpc-js';
import { createMesh } from '../../src/index.js';
import { calculate, CalculateClient, type Operands } from '../../examples/grpc/proto.js';
import { grpcCalculateService, startGrpcServer, Status } from '../helpers/grpc-servers.js';
import { docs } from '../helpers/mesh-config.js';

const TARGET = 'calculate.default.svc.cluster.local:9000';

describe('gRPC: local rate limit and connection-pool limits from the same config as HTTP', () => {
  it('answers the 6th call in a minute with UNAVAILABLE (429 → gRPC) and flag RL; the server saw 5', async () => {
    const server = await startGrpcServer('v1');
    const mesh = await createMesh({ config: docs(grpcCalculateService([{ port: server.port, version: 'v1' }]), `
apiVersion: meshlet.dev/v1alpha1
kind: RateLimit
metadata: { name: calculate-limit }
spec:
  host: calculate.default.svc.cluster.local
  local: { tokenBucket: { maxTokens: 5, tokensPerFill: 5, fillInterval: 60s } }`) });
    const client = new CalculateClient(TARGET, credentials.createInsecure(), mesh.grpc.clientOptions());
    try {
      for (let i = 0; i < 5; i++) assert.equal((await calculate(client, { x: 2, y: 3 } as Operands)).value, 5);
      await assert.rejects(calculate(client, { x: 2, y: 3 } as Operands), (err: { code?: number; details?: string }) => {
        assert.equal(err.code, Status.UNAVAILABLE);
        assert.match(String(err.details), /RL|rate/i);
        return true;
      });
      assert.equal(server.calls, 5);
    } finally {
      client.close();
      await mesh.close();
      await server.close();
    }
  });

  it('http2MaxRequests 1: concurrent calls beyond it fail at once with UNAVAILABLE (UO)', async () => {
    const server = await startGrpcServer('v1', { unary: () => new Promise((r) => setTimeout(() => r(undefined), 300)) });
    const mesh = await createMesh({ config: docs(grpcCalculateService([{ port: server.port, version: 'v1' }]), `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: calculate }
spec:
  host: calculate
  trafficPolicy: { connectionPool: { http: { http2MaxRequests: 1 } } }`) });
    const client = new CalculateClient(TARGET, credentials.createInsecure(), mesh.grpc.clientOptions());
    try {
      const outcomes = await Promise.all(Array.from({ length: 4 }, async () => {
        const started = performance.now();
        try {
          await calculate(client, { x: 1, y: 1 } as Operands);
          return { ok: true, ms: performance.now() - started };
        } catch (err) {
          return { ok: false, code: (err as { code?: number }).code, ms: performance.now() - started };
        }
      }));
      assert.equal(outcomes.filter((o) => o.ok).length, 1);
      const overflow = outcomes.filter((o) => !o.ok);
      assert.ok(overflow.every((o) => o.code === Status.UNAVAILABLE && o.ms < 250), JSON.stringify(outcomes));
    } finally {
      client.close();
      await mesh.close();
      await server.close();
    }
  });
});
