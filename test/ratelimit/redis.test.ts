import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { createRateLimitClient, createRateLimitService, createRedisBackend } from '../../src/ratelimit/index.js';
import { REDIS_SKIP, redisServerBinary, startRedis, type TestRedis } from '../helpers/redis.js';

const skip = redisServerBinary() ? false : REDIS_SKIP;
const config = `
domain: pets
descriptors:
  - key: generic_key
    value: gateway
    rate_limit: { unit: minute, requests_per_unit: 5 }
`;
const fixedNow = () => 1_699_999_990_000; // 10 s into a minute, shared by both instances
const gateway = [{ entries: [{ key: 'generic_key', value: 'gateway' }] }];

let redis: TestRedis | undefined;
before(async () => {
  if (!skip) redis = await startRedis();
});
after(async () => {
  await redis?.close();
});

test('two service instances sharing one redis-server allow exactly 5 per minute together', { skip }, async () => {
  const a = await createRateLimitService({ config, port: 0, redis: redis!.url, now: fixedNow });
  const b = await createRateLimitService({ config, port: 0, redis: redis!.url, now: fixedNow });
  const ca = createRateLimitClient({ target: `127.0.0.1:${a.port}`, timeoutMs: 2000 });
  const cb = createRateLimitClient({ target: `127.0.0.1:${b.port}`, timeoutMs: 2000 });
  const inspect = new Redis(redis!.url);
  try {
    // Alternate, then finish with a concurrent burst: the shared counter is atomic either way.
    const sequential = [];
    for (let i = 0; i < 4; i++) sequential.push(await (i % 2 ? cb : ca).shouldRateLimit('pets', gateway));
    const burst = await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 ? cb : ca).shouldRateLimit('pets', gateway)));
    const all = [...sequential, ...burst];
    assert.ok(all.every((d) => d.error === undefined), String(all.find((d) => d.error)?.error));
    assert.equal(all.filter((d) => !d.overLimit).length, 5);
    assert.deepEqual(sequential.map((d) => d.overLimit), [false, false, false, false]);
    assert.deepEqual(all.filter((d) => d.overLimit).map((d) => d.flag), Array(15).fill('RL'));

    // envoyproxy/ratelimit's key layout and a TTL of one window.
    assert.deepEqual(await inspect.keys('*'), ['pets_generic_key_gateway_1699999980']);
    assert.equal(await inspect.get('pets_generic_key_gateway_1699999980'), '20');
    const ttl = await inspect.ttl('pets_generic_key_gateway_1699999980');
    assert.ok(ttl > 0 && ttl <= 60, `ttl ${ttl}`);
  } finally {
    ca.close();
    cb.close();
    inspect.disconnect();
    await Promise.all([a.close(), b.close()]);
  }
});

test('the Redis backend pipelines every descriptor of a request in one round trip', { skip }, async () => {
  const backend = await createRedisBackend({ redis: redis!.url, keyPrefix: 'pipe:' });
  const inspect = new Redis(redis!.url);
  try {
    const before = Number((await inspect.info('stats')).match(/total_commands_processed:(\d+)/)![1]);
    assert.deepEqual(await backend.increment(['x_1', 'y_1', 'z_1'], 3, [1, 60, 3600]), [3, 3, 3]);
    assert.deepEqual(await backend.increment(['x_1', 'y_1', 'z_1'], 1, [1, 60, 3600]), [4, 4, 4]);
    // 12 commands (INCRBY + EXPIRE per key, twice) plus the INFO below.
    const afterCount = Number((await inspect.info('stats')).match(/total_commands_processed:(\d+)/)![1]);
    assert.equal(afterCount - before, 13);
    assert.equal(await inspect.get('pipe:z_1'), '4');
  } finally {
    inspect.disconnect();
    await backend.close();
  }
});

test('Redis down: the service fails fast and clients answer per failureModeDeny', { skip }, async () => {
  const own = (await startRedis())!;
  const rls = await createRateLimitService({ config, port: 0, redis: own.url, now: fixedNow });
  const allow = createRateLimitClient({ target: `127.0.0.1:${rls.port}`, timeoutMs: 1000 });
  const deny = createRateLimitClient({ target: `127.0.0.1:${rls.port}`, timeoutMs: 1000, failureModeDeny: true });
  try {
    assert.equal((await allow.shouldRateLimit('pets', gateway)).error, undefined);
    await own.close();
    await new Promise((r) => setTimeout(r, 100)); // let ioredis notice the closed socket
    const t0 = performance.now();
    const [a, d] = await Promise.all([allow.shouldRateLimit('pets', gateway), deny.shouldRateLimit('pets', gateway)]);
    assert.ok(performance.now() - t0 < 900, 'answered before the client deadline: the service does not queue on a dead Redis');
    assert.deepEqual([a.overLimit, a.error !== undefined, d.overLimit, d.flag], [false, true, true, 'RLSE']);
  } finally {
    allow.close();
    deny.close();
    await rls.close();
    await own.close();
  }
});
