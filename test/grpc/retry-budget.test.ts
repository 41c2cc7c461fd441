// What gRPC gained from the one router (issue #20): the cluster's retry budget (max_retries) and the
// deadline-queue timeouts, shown against a real grpc-js server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { createMesh, seededRandom } from '../../src/index.js';
import { calculate, CalculateClient } from '../../examples/grpc/proto.js';
import { grpcCalculateService, grpcCalculateSubsets, startGrpcServer } from '../helpers/grpc-servers.js';
import { calculateRoutes, docs } from '../helpers/mesh-config.js';

const TARGET = 'calculate.default.svc.cluster.local:9000';

test('gRPC: maxRetries 1 lets one call retry at a time; the others fail on their first try (upstream_rq_retry_overflow)', async (t) => {
  let release: (() => void) | undefined;
  const held = new Promise<void>((resolve) => { release = resolve; });
  // Every call fails UNAVAILABLE once all ten have arrived, so their retries compete for the budget at once.
  const server = await startGrpcServer('v1', { unary: async (_call, s) => {
    if (s.calls === 10) release!();
    await held;
    return { code: status.UNAVAILABLE, details: 'down' };
  } });
  t.after(() => server.close());
  const mesh = await createMesh({ random: seededRandom(3), config: docs(
    grpcCalculateService([{ port: server.port, version: 'v1' }]),
    grpcCalculateSubsets('  trafficPolicy: { connectionPool: { http: { maxRetries: 1 } } }'),
    calculateRoutes(`
    - retries: { attempts: 3, retryOn: unavailable }
      route: [{ destination: { host: calculate, subset: v1 } }]`)) });
  t.after(() => mesh.close());
  const client = new CalculateClient(TARGET, credentials.createInsecure(), mesh.grpc.clientOptions());
  t.after(() => client.close());

  const results = await Promise.all(Array.from({ length: 10 }, () => calculate(client, { x: 1, y: 1 }).then(() => 'ok', (e: ServiceError) => e.code)));
  assert.deepEqual([...new Set(results)], [status.UNAVAILABLE]);
  const cluster = mesh.clusters().find((c) => c.name.includes('|v1|'))!;
  assert.ok(cluster.circuitBreakers.upstream_rq_retry_overflow >= 1, JSON.stringify(cluster.circuitBreakers));
  // Without the budget every call would have been tried 4 times.
  assert.ok(server.calls < 40, `${server.calls} tries for 10 calls`);
});

test('gRPC: the per-try timeout runs on the deadline queues and retries onto a healthy try', async (t) => {
  let first = true;
  const server = await startGrpcServer('v1', { unary: async () => {
    if (first) {
      first = false;
      await new Promise((r) => setTimeout(r, 3000));
    }
    return undefined;
  } });
  t.after(() => server.close());
  const mesh = await createMesh({ random: seededRandom(3), config: docs(
    grpcCalculateService([{ port: server.port, version: 'v1' }]),
    grpcCalculateSubsets(),
    calculateRoutes(`
    - retries: { attempts: 2, perTryTimeout: 1s, retryOn: deadline-exceeded }
      route: [{ destination: { host: calculate, subset: v1 } }]`)) });
  t.after(() => mesh.close());
  const client = new CalculateClient(TARGET, credentials.createInsecure(), mesh.grpc.clientOptions());
  t.after(() => client.close());
  const answer = await calculate(client, { x: 2, y: 2 });
  assert.equal(answer.value, 4);
  assert.equal(server.calls, 2, 'the slow first try timed out and the retry answered');
});
