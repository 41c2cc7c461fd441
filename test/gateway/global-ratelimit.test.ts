import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRateLimitService } from '../../src/ratelimit/index.js';
import { startServer, type TestServer } from '../helpers/http-servers.js';
import { REDIS_SKIP, redisServerBinary, startRedis, type TestRedis } from '../helpers/redis.js';
import { backendService, boundRoutes, call, docs, gatewayDoc, startGateway } from './helpers.js';

// The seed's global limit: more than 5 requests per minute at the gateway → 429.
const rlsConfig = `
domain: pets
descriptors:
  - key: generic_key
    value: gateway
    rate_limit: { unit: minute, requests_per_unit: 5 }
`;

// The default call timeout is generous: a loaded machine must not turn a slow first check into "allow".
function gatewayConfig(backendPort: number, rlsPort: number, failureModeDeny = false, timeout = '5s'): string {
  return docs(backendService('client', backendPort), gatewayDoc(), boundRoutes('["*"]', `    - route: [{ destination: { host: client, port: { number: 8080 } } }]`), `
apiVersion: meshlet.dev/v1alpha1
kind: RateLimit
metadata: { name: gateway-limit, namespace: default }
spec:
  host: "*"
  global:
    service: 127.0.0.1:${rlsPort}
    domain: pets
    timeout: ${timeout}
    failureModeDeny: ${failureModeDeny}
    descriptors: [{ entries: [{ key: generic_key, value: gateway }] }]
`);
}

// A fixed clock keeps all requests in one window whatever the wall-clock minute.
const fixedNow = () => Date.UTC(2026, 0, 1, 12, 0, 10);

describe('global rate limiting at the gateway', () => {
  let backend: TestServer;
  before(async () => {
    backend = await startServer('client');
  });
  after(async () => {
    await backend.close();
  });

  it('answers the 6th request within the minute with 429/RL and x-envoy-ratelimited', async () => {
    const rls = await createRateLimitService({ config: rlsConfig, port: 0, now: fixedNow });
    const gw = await startGateway(gatewayConfig(backend.port, rls.port));
    try {
      const results = [];
      for (let i = 0; i < 6; i++) results.push(await call(gw, 'shop.example.com'));
      assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200, 200, 429]);
      assert.equal(results[5]!.headers['x-meshlet-flags'], 'RL');
      assert.equal(results[5]!.headers['x-envoy-ratelimited'], 'true');
    } finally {
      await gw.close();
      await rls.close();
    }
  });

  it('two gateways and two rate-limit services sharing one real redis-server allow exactly 5 per minute', { skip: redisServerBinary() ? false : REDIS_SKIP }, async () => {
    const redis = (await startRedis()) as TestRedis;
    const rlsA = await createRateLimitService({ config: rlsConfig, port: 0, redis: redis.url, now: fixedNow });
    const rlsB = await createRateLimitService({ config: rlsConfig, port: 0, redis: redis.url, now: fixedNow });
    const gwA = await startGateway(gatewayConfig(backend.port, rlsA.port));
    const gwB = await startGateway(gatewayConfig(backend.port, rlsB.port));
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) statuses.push((await call(i % 2 ? gwB : gwA, 'shop.example.com')).status);
      assert.equal(statuses.filter((s) => s === 200).length, 5);
      assert.equal(statuses.filter((s) => s === 429).length, 7);
    } finally {
      await Promise.all([gwA.close(), gwB.close()]);
      await Promise.all([rlsA.close(), rlsB.close()]);
      await redis.close();
    }
  });

  it('loses no request when the rate-limit service dies under load (failureModeDeny false), within the call timeout', async () => {
    const rls = await createRateLimitService({ config: `domain: pets\ndescriptors:\n  - { key: generic_key, value: gateway, rate_limit: { unit: minute, requests_per_unit: 100000 } }\n`, port: 0 });
    const gw = await startGateway(gatewayConfig(backend.port, rls.port, false, '50ms'));
    try {
      const statuses: number[] = [];
      const slowest: number[] = [];
      // Bounded by count (30 batches before the kill, 30 after) and, as a safety net, by time.
      const deadline = Date.now() + 30_000;
      let killed = false;
      for (let i = 0; i < 60 && Date.now() < deadline; i++) {
        if (i === 30) {
          killed = true;
          await rls.close();
        }
        const started = performance.now();
        const batch = await Promise.all(Array.from({ length: 5 }, () => call(gw, 'shop.example.com')));
        slowest.push(performance.now() - started);
        statuses.push(...batch.map((r) => r.status));
      }
      assert.ok(killed, 'the service was killed mid-run');
      assert.ok(statuses.length > 150);
      assert.deepEqual([...new Set(statuses)], [200]);
      // Each check waits at most the 50 ms call timeout: the typical batch stays well under a second
      // (a median, so a loaded CI machine's scheduling hiccups do not decide the result).
      const afterKill = slowest.slice(35).sort((a, b) => a - b);
      const median = afterKill[Math.floor(afterKill.length / 2)]!;
      assert.ok(median < 1000, `median batch after the kill: ${median} ms`);
    } finally {
      await gw.close();
      await rls.close().catch(() => undefined);
    }
  });
});
