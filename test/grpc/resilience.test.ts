import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { createMesh, seededRandom } from '../../src/index.js';
import { createMeshGrpc } from '../../src/grpc/index.js';
import { calculate, CalculateClient, type Result } from '../../examples/grpc/proto.js';
import { grpcCalculateService, grpcCalculateSubsets, startGrpcServer, type GrpcServerOptions, type GrpcTestServer } from '../helpers/grpc-servers.js';
import { calculateRoutes, docs } from '../helpers/mesh-config.js';

const TARGET = 'calculate.default.svc.cluster.local:9000';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One mesh + meshed client over the given servers (all labelled v1 unless said otherwise). */
async function setup(servers: Array<{ port: number; version: string }>, routes: string, trafficPolicy = '') {
  const random = seededRandom(7);
  const mesh = await createMesh({ random, config: docs(grpcCalculateService(servers), grpcCalculateSubsets(trafficPolicy), calculateRoutes(routes)) });
  const grpc = createMeshGrpc(mesh, { random });
  const client = new CalculateClient(TARGET, credentials.createInsecure(), grpc.clientOptions());
  return {
    client,
    async close() {
      client.close();
      await grpc.close(0);
      await mesh.close();
    },
  };
}

async function withServer<T>(options: GrpcServerOptions, fn: (s: GrpcTestServer) => Promise<T>): Promise<T> {
  const s = await startGrpcServer('v1', options);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

const errorOf = (p: Promise<unknown>): Promise<ServiceError> => p.then(() => assert.fail('expected the call to fail'), (e: ServiceError) => e);

describe('gRPC resilience policies', () => {
  it('a 500 ms route timeout gives DEADLINE_EXCEEDED (UT) against a slow server', async () => {
    await withServer({ unary: async () => { await sleep(2000); return undefined; } }, async (slow) => {
      const { client, close } = await setup([{ port: slow.port, version: 'v1' }], `
    - timeout: 500ms
      route: [{ destination: { host: calculate, subset: v1 } }]`);
      try {
        const t0 = performance.now();
        const err = await errorOf(calculate(client, { x: 1, y: 2 }));
        const elapsed = performance.now() - t0;
        assert.equal(err.code, status.DEADLINE_EXCEEDED);
        assert.ok(elapsed >= 450 && elapsed < 1900, `elapsed ${elapsed}`);
      } finally {
        await close();
      }
    });
  });

  it('UNAVAILABLE twice then OK succeeds with retries, and the server saw 3 calls', async () => {
    await withServer({ unary: (_c, s) => (s.calls <= 2 ? { code: status.UNAVAILABLE, details: 'warming up' } : undefined) }, async (flaky) => {
      const { client, close } = await setup([{ port: flaky.port, version: 'v1' }], `
    - retries: { attempts: 3, retryOn: unavailable }
      route: [{ destination: { host: calculate, subset: v1 } }]`);
      try {
        const r = await calculate(client, { x: 2, y: 3 });
        assert.equal(r.value, 5);
        assert.equal(flaky.calls, 3);
      } finally {
        await close();
      }
    });
  });

  it('does not retry a status that retryOn does not list', async () => {
    await withServer({ unary: () => ({ code: status.INTERNAL, details: 'boom' }) }, async (broken) => {
      const { client, close } = await setup([{ port: broken.port, version: 'v1' }], `
    - retries: { attempts: 3, retryOn: unavailable }
      route: [{ destination: { host: calculate, subset: v1 } }]`);
      try {
        const err = await errorOf(calculate(client, { x: 2, y: 3 }));
        assert.equal(err.code, status.INTERNAL);
        assert.equal(broken.calls, 1);
      } finally {
        await close();
      }
    });
  });

  it('does not retry once a response message has arrived (server streaming)', async () => {
    await withServer({ seriesFailAfter: 2 }, async (s) => {
      const { client, close } = await setup([{ port: s.port, version: 'v1' }], `
    - retries: { attempts: 3, retryOn: unavailable }
      route: [{ destination: { host: calculate, subset: v1 } }]`);
      try {
        const got: Result[] = [];
        const err = await new Promise<ServiceError>((resolve) => {
          const stream = client.Series({ x: 1, y: 1, count: 5 });
          stream.on('data', (r: Result) => got.push(r));
          stream.on('error', resolve);
          stream.on('end', () => resolve(undefined as never));
        });
        assert.equal(err?.code, status.UNAVAILABLE);
        assert.deepEqual(got.map((r) => r.value), [2, 3]);
        assert.equal(s.calls, 1);
      } finally {
        await close();
      }
    });
  });

  it('retries a per-try timeout on another attempt', async () => {
    await withServer({ unary: async (_c, s) => { if (s.calls === 1) await sleep(1500); return undefined; } }, async (s) => {
      const { client, close } = await setup([{ port: s.port, version: 'v1' }], `
    - retries: { attempts: 2, perTryTimeout: 200ms, retryOn: deadline-exceeded }
      route: [{ destination: { host: calculate, subset: v1 } }]`);
      try {
        const t0 = performance.now();
        assert.equal((await calculate(client, { x: 1, y: 1 })).value, 2);
        assert.ok(performance.now() - t0 < 1400);
        assert.equal(s.calls, 2);
      } finally {
        await close();
      }
    });
  });

  it('retries a connect failure on another endpoint (Istio default retry policy)', async () => {
    await withServer({}, async (live) => {
      const dead = await startGrpcServer('v1');
      const deadPort = dead.port;
      await dead.close();
      const { client, close } = await setup([{ port: deadPort, version: 'v1' }, { port: live.port, version: 'v1' }], `
    - route: [{ destination: { host: calculate, subset: v1 } }]`);
      try {
        for (let i = 0; i < 10; i++) assert.equal((await calculate(client, { x: 1, y: 1 })).value, 2);
        assert.equal(live.calls, 10);
      } finally {
        await close();
      }
    });
  });

  it('fault abort returns the configured grpcStatus without reaching the server (FI)', async () => {
    await withServer({}, async (s) => {
      const { client, close } = await setup([{ port: s.port, version: 'v1' }], `
    - fault: { abort: { grpcStatus: PERMISSION_DENIED, percentage: { value: 100 } } }
      route: [{ destination: { host: calculate, subset: v1 } }]`);
      try {
        const err = await errorOf(calculate(client, { x: 1, y: 1 }));
        assert.equal(err.code, status.PERMISSION_DENIED);
        assert.equal(err.metadata.get('x-meshlet-flags')[0], 'FI');
        assert.equal(s.calls, 0);
      } finally {
        await close();
      }
    });
  });

  it('fault abort with httpStatus 503 maps to UNAVAILABLE as Envoy does', async () => {
    await withServer({}, async (s) => {
      const { client, close } = await setup([{ port: s.port, version: 'v1' }], `
    - fault: { abort: { httpStatus: 503, percentage: { value: 100 } } }
      route: [{ destination: { host: calculate, subset: v1 } }]`);
      try {
        const err = await errorOf(calculate(client, { x: 1, y: 1 }));
        assert.equal(err.code, status.UNAVAILABLE);
        assert.equal(s.calls, 0);
      } finally {
        await close();
      }
    });
  });

  it('fault delay holds the call, then sends it (DI)', async () => {
    await withServer({}, async (s) => {
      const { client, close } = await setup([{ port: s.port, version: 'v1' }], `
    - fault: { delay: { fixedDelay: 300ms, percentage: { value: 100 } } }
      route: [{ destination: { host: calculate, subset: v1 } }]`);
      try {
        let flags: string | undefined;
        const t0 = performance.now();
        await new Promise<void>((resolve, reject) => {
          const call = client.Calculate({ x: 1, y: 1 }, new Metadata(), {}, (err) => (err ? reject(err) : resolve())) as { on(e: 'metadata', f: (m: Metadata) => void): void };
          call.on('metadata', (m) => { flags = m.get('x-meshlet-flags')[0] as string; });
        });
        assert.ok(performance.now() - t0 >= 280);
        assert.equal(flags, 'DI');
        assert.equal(s.calls, 1);
      } finally {
        await close();
      }
    });
  });

  it('outlier detection ejects a failing endpoint', async () => {
    const good = await startGrpcServer('v1');
    const bad = await startGrpcServer('v1', { unary: () => ({ code: status.UNAVAILABLE, details: 'sick' }) });
    const { client, close } = await setup([{ port: good.port, version: 'v1' }, { port: bad.port, version: 'v1' }], `
    - retries: { attempts: 0 }
      route: [{ destination: { host: calculate, subset: v1 } }]`, `
  trafficPolicy:
    outlierDetection: { consecutive5xxErrors: 3, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 100 }`);
    try {
      let failures = 0;
      for (let i = 0; i < 12; i++) await calculate(client, { x: 1, y: 1 }).catch(() => failures++);
      assert.equal(failures, 3, 'three consecutive failures eject the endpoint');
      assert.equal(bad.calls, 3);
      for (let i = 0; i < 20; i++) assert.equal((await calculate(client, { x: 1, y: 1 })).value, 2);
      assert.equal(bad.calls, 3);
    } finally {
      await close();
      await Promise.all([good.close(), bad.close()]);
    }
  });
});
