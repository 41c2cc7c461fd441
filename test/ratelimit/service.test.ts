import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { MeshError } from '../../src/errors.js';
import { createRateLimitClient, createRateLimitService, rateLimitServiceDefinition } from '../../src/ratelimit/index.js';

const config = `
domain: pets
descriptors:
  - key: generic_key
    value: gateway
    rate_limit: { unit: minute, requests_per_unit: 5, name: gateway-5pm }
  - key: remote_address
    rate_limit: { unit: second, requests_per_unit: 100 }
`;
const fixedNow = () => 1_699_999_990_000; // 10 s into a minute: no window can roll over mid-test
const gateway = [{ entries: [{ key: 'generic_key', value: 'gateway' }] }];

test('over gRPC: the 6th request within a minute is OVER_LIMIT (429 RL) with Envoy headers', async () => {
  const rls = await createRateLimitService({ config, port: 0, host: '127.0.0.1', now: fixedNow });
  const client = createRateLimitClient({ target: `127.0.0.1:${rls.port}`, timeoutMs: 2000, enableXRateLimitHeaders: 'DRAFT_VERSION_03' });
  try {
    const decisions = [];
    for (let i = 0; i < 6; i++) decisions.push(await client.shouldRateLimit('pets', gateway));
    assert.deepEqual(decisions.map((d) => d.overLimit), [false, false, false, false, false, true]);
    assert.equal(decisions[0]!.error, undefined);
    assert.deepEqual(decisions[0]!.headers, { 'x-ratelimit-limit': '5, 5;w=60;name="gateway-5pm"', 'x-ratelimit-remaining': '4', 'x-ratelimit-reset': '50' });
    const sixth = decisions[5]!;
    assert.equal(sixth.flag, 'RL');
    assert.equal(sixth.status, 429);
    assert.equal(sixth.headers!['x-envoy-ratelimited'], 'true');
    assert.deepEqual(sixth.statuses, [{
      code: 'OVER_LIMIT', current_limit: { requests_per_unit: 5, unit: 'MINUTE', name: 'gateway-5pm' },
      limit_remaining: 0, duration_until_reset: { seconds: 50, nanos: 0 },
    }]);
    // Two descriptors in one call: each has its own status.
    const two = await client.shouldRateLimit('pets', [...gateway, { entries: [{ key: 'remote_address', value: '10.1.1.1' }] }]);
    assert.deepEqual(two.statuses!.map((s) => [s.code, s.limit_remaining]), [['OVER_LIMIT', 0], ['OK', 99]]);
    // hits_addend travels.
    const addend = await client.shouldRateLimit('pets', [{ entries: [{ key: 'remote_address', value: '10.1.1.2' }] }], 30);
    assert.equal(addend.statuses![0]!.limit_remaining, 70);
  } finally {
    client.close();
    await rls.close();
  }
});

test('a bad request is an error the client handles per failureModeDeny', async () => {
  const rls = await createRateLimitService({ config, port: 0, now: fixedNow });
  const allow = createRateLimitClient({ target: `127.0.0.1:${rls.port}`, timeoutMs: 2000 });
  const deny = createRateLimitClient({ target: `127.0.0.1:${rls.port}`, timeoutMs: 2000, failureModeDeny: true });
  try {
    const a = await allow.shouldRateLimit('', gateway);
    assert.equal(a.overLimit, false);
    assert.ok(a.error instanceof MeshError);
    assert.equal((a.error as MeshError).code, 'MESH_RATELIMIT_SERVICE');
    assert.equal(((a.error as MeshError).cause as grpc.ServiceError).code, grpc.status.INVALID_ARGUMENT);
    const d = await deny.shouldRateLimit('', gateway);
    assert.deepEqual([d.overLimit, d.flag, d.status], [true, 'RLSE', 500]);
    rls.reload('domain: pets\ndescriptors: [ { key: generic_key, rate_limit: { unit: second, requests_per_unit: 0 } } ]\n');
    assert.equal((await allow.shouldRateLimit('pets', gateway)).overLimit, true);
  } finally {
    allow.close();
    deny.close();
    await rls.close();
  }
});

test('service killed under load: every call settles within the timeout, per failureModeDeny', async () => {
  const rls = await createRateLimitService({ config, port: 0, now: fixedNow });
  const timeoutMs = 100;
  const allow = createRateLimitClient({ target: `127.0.0.1:${rls.port}`, timeoutMs });
  const deny = createRateLimitClient({ target: `127.0.0.1:${rls.port}`, timeoutMs, failureModeDeny: true });
  const ip = [{ entries: [{ key: 'remote_address', value: '10.9.9.9' }] }];
  try {
    // Load: 8 loops of bounded calls on each client; the service dies in the middle.
    let slowest = 0;
    const results: Array<{ overLimit: boolean; error?: Error; deny: boolean }> = [];
    let stop = false;
    const loop = async (c: typeof allow, isDeny: boolean) => {
      for (let i = 0; i < 200 && !stop; i++) {
        const t0 = performance.now();
        const d = await c.shouldRateLimit('pets', ip);
        slowest = Math.max(slowest, performance.now() - t0);
        results.push({ overLimit: d.overLimit, error: d.error, deny: isDeny });
      }
    };
    const loops = [];
    for (let i = 0; i < 4; i++) loops.push(loop(allow, false), loop(deny, true));
    await new Promise((r) => setTimeout(r, 100));
    await rls.close();
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(loops);
    const failed = results.filter((r) => r.error);
    assert.ok(failed.length > 0, 'calls after the kill fail');
    assert.ok(results.some((r) => !r.error), 'calls before the kill succeed');
    assert.ok(failed.every((r) => r.overLimit === r.deny), 'failureModeDeny decides failed calls');
    // Bounded: nothing waits much past the deadline (generous bound for a loaded CI box).
    assert.ok(slowest < timeoutMs + 2900, `slowest call took ${slowest.toFixed(0)} ms`);

    // After the kill, answers come at once or within the deadline, never later.
    const t0 = performance.now();
    const [a, d] = await Promise.all([allow.shouldRateLimit('pets', ip), deny.shouldRateLimit('pets', ip)]);
    assert.ok(performance.now() - t0 < timeoutMs + 2900);
    assert.deepEqual([a.overLimit, d.overLimit, d.flag], [false, true, 'RLSE']);
  } finally {
    allow.close();
    deny.close();
  }
});

test('a service that never answers: the client gives up at its deadline', async () => {
  // A stand-in service that accepts the call and sits on it.
  const server = new grpc.Server();
  const held: Array<() => void> = [];
  server.addService(rateLimitServiceDefinition(), {
    ShouldRateLimit(_call: unknown, cb: grpc.sendUnaryData<unknown>) {
      held.push(() => cb(null, { overall_code: 'OK' }));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const timeoutMs = 150;
  const client = createRateLimitClient({ target: `127.0.0.1:${port}`, timeoutMs, failureModeDeny: false });
  try {
    const t0 = performance.now();
    const d = await client.shouldRateLimit('pets', gateway);
    const elapsed = performance.now() - t0;
    assert.equal(d.overLimit, false);
    assert.equal(((d.error as MeshError).cause as grpc.ServiceError).code, grpc.status.DEADLINE_EXCEEDED);
    assert.ok(elapsed >= timeoutMs - 20 && elapsed < timeoutMs + 900, `took ${elapsed.toFixed(0)} ms`);
  } finally {
    client.close();
    for (const release of held) release();
    server.forceShutdown();
  }
});
