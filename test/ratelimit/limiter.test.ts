import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MeshConfigError } from '../../src/errors.js';
import { createMemoryBackend, createRateLimiter, RateLimitRequestError, type RateLimitRequest } from '../../src/ratelimit/index.js';

const config = `
domain: pets
descriptors:
  - key: generic_key
    value: gateway
    rate_limit: { unit: minute, requests_per_unit: 5 }
  - key: remote_address
    rate_limit: { unit: second, requests_per_unit: 2 }
  - key: remote_address
    value: 10.0.0.9
    rate_limit: { unit: second, requests_per_unit: 4 }
  - key: path
    value: /admin*
    rate_limit: { unit: minute, requests_per_unit: 1 }
  - key: path
    value: /adm*
    rate_limit: { unit: minute, requests_per_unit: 3 }
  - key: shadow
    shadow_mode: true
    rate_limit: { unit: minute, requests_per_unit: 1 }
  - key: vip
    rate_limit: { unlimited: true }
  - key: user
    rate_limit: { unit: hour, requests_per_unit: 10, name: per-user }
  - key: plan
    value: gold
    rate_limit: { unit: hour, requests_per_unit: 1000, replaces: [ { name: per-user } ] }
`;

/** A clock 10 s into a minute window (1_699_999_980 is a multiple of 60). */
const T0 = 1_699_999_990_000;

function setup() {
  let nowMs = T0;
  const clock = { now: () => nowMs, advance: (ms: number) => (nowMs += ms) };
  const backend = createMemoryBackend({ now: clock.now });
  const limiter = createRateLimiter({ config, backend, now: clock.now });
  return { clock, limiter, backend };
}

const gateway: RateLimitRequest = { domain: 'pets', descriptors: [{ entries: [{ key: 'generic_key', value: 'gateway' }] }] };

test('5 per minute: the 6th request is OVER_LIMIT until the window resets', async () => {
  const { clock, limiter } = setup();
  const remaining: number[] = [];
  for (let i = 0; i < 5; i++) {
    const res = await limiter.shouldRateLimit(gateway);
    assert.equal(res.overall_code, 'OK');
    remaining.push(res.statuses[0]!.limit_remaining);
  }
  assert.deepEqual(remaining, [4, 3, 2, 1, 0]);
  const sixth = await limiter.shouldRateLimit(gateway);
  assert.equal(sixth.overall_code, 'OVER_LIMIT');
  assert.deepEqual(sixth.statuses[0], {
    code: 'OVER_LIMIT', current_limit: { requests_per_unit: 5, unit: 'MINUTE' }, limit_remaining: 0,
    duration_until_reset: { seconds: 50, nanos: 0 }, // 1_699_999_990 is 10 s into its minute
  });
  clock.advance(49_000);
  assert.equal((await limiter.shouldRateLimit(gateway)).overall_code, 'OVER_LIMIT');
  clock.advance(1_000); // the next fixed window starts
  const fresh = await limiter.shouldRateLimit(gateway);
  assert.equal(fresh.overall_code, 'OK');
  assert.equal(fresh.statuses[0]!.limit_remaining, 4);
  assert.deepEqual(fresh.statuses[0]!.duration_until_reset, { seconds: 60, nanos: 0 });
  await limiter.close();
});

test('the most specific rule wins, and a key-only rule counts each value separately', async () => {
  const { limiter } = setup();
  const ip = (value: string): RateLimitRequest => ({ domain: 'pets', descriptors: [{ entries: [{ key: 'remote_address', value }] }] });
  const codes = async (value: string, n: number) => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push((await limiter.shouldRateLimit(ip(value))).overall_code);
    return out;
  };
  assert.deepEqual(await codes('10.0.0.1', 3), ['OK', 'OK', 'OVER_LIMIT']); // default: 2/s
  assert.deepEqual(await codes('10.0.0.2', 3), ['OK', 'OK', 'OVER_LIMIT']); // its own counter
  assert.deepEqual(await codes('10.0.0.9', 5), ['OK', 'OK', 'OK', 'OK', 'OVER_LIMIT']); // key+value: 4/s
  // Longest wildcard prefix first: /admin* (1/min) beats /adm* (3/min).
  const path = (value: string): RateLimitRequest => ({ domain: 'pets', descriptors: [{ entries: [{ key: 'path', value }] }] });
  assert.equal((await limiter.shouldRateLimit(path('/admin/x'))).statuses[0]!.current_limit!.requests_per_unit, 1);
  assert.equal((await limiter.shouldRateLimit(path('/adm/x'))).statuses[0]!.current_limit!.requests_per_unit, 3);
  await limiter.close();
});

test('each descriptor gets its own status; overall is OVER_LIMIT if any is', async () => {
  const { limiter } = setup();
  const req: RateLimitRequest = {
    domain: 'pets',
    descriptors: [
      { entries: [{ key: 'remote_address', value: '1.1.1.1' }] },
      { entries: [{ key: 'unknown', value: 'x' }] },
      { entries: [{ key: 'vip', value: 'yes' }] },
      { entries: [{ key: 'path', value: '/admin' }] },
    ],
  };
  const first = await limiter.shouldRateLimit(req);
  assert.equal(first.overall_code, 'OK');
  assert.deepEqual(first.statuses.map((s) => [s.code, s.limit_remaining]), [['OK', 1], ['OK', 0], ['OK', 0xffffffff], ['OK', 0]]);
  assert.equal(first.statuses[1]!.current_limit, undefined);
  assert.equal(first.statuses[2]!.current_limit, undefined);
  const second = await limiter.shouldRateLimit(req);
  assert.equal(second.overall_code, 'OVER_LIMIT');
  assert.deepEqual(second.statuses.map((s) => s.code), ['OK', 'OK', 'OK', 'OVER_LIMIT']);
  await limiter.close();
});

test('shadow mode counts but answers OK', async () => {
  const { limiter } = setup();
  const req: RateLimitRequest = { domain: 'pets', descriptors: [{ entries: [{ key: 'shadow', value: 'a' }] }] };
  const results = [];
  for (let i = 0; i < 3; i++) results.push(await limiter.shouldRateLimit(req));
  assert.deepEqual(results.map((r) => r.overall_code), ['OK', 'OK', 'OK']);
  assert.deepEqual(results.map((r) => r.statuses[0]!.limit_remaining), [0, 0, 0]); // over the limit from the 2nd on
  assert.equal(results[2]!.statuses[0]!.current_limit!.requests_per_unit, 1);
  await limiter.close();
});

test('hits_addend, replaces, request overrides, unknown domains and bad requests', async () => {
  const { limiter, backend } = setup();
  const big = await limiter.shouldRateLimit({ ...gateway, hits_addend: 4 });
  assert.equal(big.statuses[0]!.limit_remaining, 1);
  assert.equal((await limiter.shouldRateLimit({ ...gateway, hits_addend: 2 })).overall_code, 'OVER_LIMIT');

  // plan=gold replaces per-user: the user limit is not applied while both match.
  const both = await limiter.shouldRateLimit({
    domain: 'pets', descriptors: [{ entries: [{ key: 'user', value: 'ann' }] }, { entries: [{ key: 'plan', value: 'gold' }] }],
  });
  assert.equal(both.statuses[0]!.current_limit, undefined);
  assert.equal(both.statuses[1]!.current_limit!.requests_per_unit, 1000);

  const override = { domain: 'pets', descriptors: [{ entries: [{ key: 'any', value: 'x' }], limit: { requests_per_unit: 1, unit: 'SECOND' } }] };
  assert.deepEqual([(await limiter.shouldRateLimit(override)).overall_code, (await limiter.shouldRateLimit(override)).overall_code], ['OK', 'OVER_LIMIT']);

  const sizeBefore = backend.size;
  const unknown = await limiter.shouldRateLimit({ domain: 'nope', descriptors: gateway.descriptors });
  assert.deepEqual(unknown, { overall_code: 'OK', statuses: [{ code: 'OK', limit_remaining: 0 }] });
  assert.equal(backend.size, sizeBefore, 'nothing is counted without a limit');

  await assert.rejects(limiter.shouldRateLimit({ domain: '', descriptors: gateway.descriptors }), RateLimitRequestError);
  await assert.rejects(limiter.shouldRateLimit({ domain: 'pets', descriptors: [] }), RateLimitRequestError);
  await limiter.close();
});

test('update swaps the config atomically and keeps the old one when invalid', async () => {
  const { limiter } = setup();
  assert.throws(() => limiter.update('domain: pets\ndescriptors: [ { key: generic_key, rate_limit: { unit: week } } ]\n'), MeshConfigError);
  assert.equal((await limiter.shouldRateLimit(gateway)).statuses[0]!.current_limit!.requests_per_unit, 5);
  limiter.update({ domain: 'pets', descriptors: [{ key: 'generic_key', rate_limit: { unit: 'second', requests_per_unit: 50 } }] });
  assert.equal((await limiter.shouldRateLimit(gateway)).statuses[0]!.current_limit!.requests_per_unit, 50);
  await limiter.close();
});

test('the memory backend sweeps expired windows on its unref\'d timer', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  let nowMs = T0;
  const backend = createMemoryBackend({ now: () => nowMs, sweepIntervalMs: 1000 });
  await backend.increment(['a_1', 'b_1'], 1, [1, 60]);
  assert.equal(backend.size, 2);
  nowMs += 2000;
  t.mock.timers.tick(1000);
  assert.equal(backend.size, 1);
  assert.deepEqual(await backend.increment(['a_1', 'b_1'], 2, [1, 60]), [2, 3]);
  await backend.close();
  assert.equal(backend.size, 0);
});
