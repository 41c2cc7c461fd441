import assert from 'node:assert/strict';
import test from 'node:test';
import { TYPE_URL } from '../../src/config/envoy.js';
import { translateLocalRateLimitFilter, translateRateLimitLocal } from '../../src/config/translate-resilience.js';
import { compileLocalRateLimit, LocalRateLimiter, RateLimitOutcome, TokenBucket } from '../../src/core/token-bucket.js';
import { MeshConfigError } from '../../src/errors.js';
import { normalize } from '../../src/xds/protos.js';

test('5 tokens per minute: the 6th call is refused, the bucket refills after the interval', () => {
  const clock = { now: 0 };
  const bucket = new TokenBucket({ maxTokens: 5, tokensPerFill: 5, fillIntervalMs: 60_000 }, () => clock.now);
  for (let i = 0; i < 5; i++) assert.equal(bucket.tryTake(), true, `call ${i + 1}`);
  assert.equal(bucket.tryTake(), false, 'the 6th');
  assert.equal(bucket.remaining(), 0);
  clock.now = 59_999;
  assert.equal(bucket.tryTake(), false, 'no fill before the interval');
  assert.equal(bucket.msToNextFill(), 1);
  clock.now = 60_000;
  assert.equal(bucket.remaining(), 5);
  assert.equal(bucket.tryTake(), true);
});

test('fills are discrete, capped at max_tokens, and keep their phase', () => {
  const clock = { now: 0 };
  const bucket = new TokenBucket({ maxTokens: 10, tokensPerFill: 2, fillIntervalMs: 1000 }, () => clock.now);
  for (let i = 0; i < 10; i++) bucket.tryTake();
  clock.now = 2500; // two fills (at 1 s and 2 s)
  assert.equal(bucket.remaining(), 4);
  assert.equal(bucket.msToNextFill(), 500, 'next fill at 3 s, not 3.5 s');
  clock.now = 60_000;
  assert.equal(bucket.remaining(), 10, 'never above max_tokens');
});

test('x-ratelimit-reset is whole seconds to the next fill, as Envoy computes it', () => {
  const clock = { now: 0 };
  const bucket = new TokenBucket({ maxTokens: 5, tokensPerFill: 5, fillIntervalMs: 60_000 }, () => clock.now);
  assert.equal(bucket.resetSeconds(), 60);
  clock.now = 400;
  assert.equal(bucket.resetSeconds(), 60);
  clock.now = 1500;
  assert.equal(bucket.resetSeconds(), 59);
  clock.now = 59_999;
  assert.equal(bucket.resetSeconds(), 1);
});

test('the RateLimit kind: limiter answers 429 on the 6th call with x-ratelimit headers', () => {
  const any = translateRateLimitLocal({ tokenBucket: { maxTokens: 5, tokensPerFill: 5, fillInterval: '60s' } })!;
  const policy = compileLocalRateLimit(any)!;
  assert.equal(policy.status, 429);
  assert.equal(policy.enabled, 1);
  assert.equal(policy.enforced, 1);
  const clock = { now: 0 };
  const limiter = new LocalRateLimiter(policy, { now: () => clock.now });
  const outcomes = Array.from({ length: 6 }, () => limiter.check());
  assert.deepEqual(outcomes, [1, 1, 1, 1, 1, RateLimitOutcome.Limited]);
  clock.now = 1000;
  assert.deepEqual(limiter.xRateLimitHeaders(), { 'x-ratelimit-limit': '5', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '59' });
  clock.now = 60_000;
  assert.equal(limiter.check(), RateLimitOutcome.Allowed);
});

test("Istio's documented EnvoyFilter typed_config is accepted unchanged", () => {
  // The typed_config of Istio's "Enabling Rate Limits using Envoy" local rate limit example.
  const typedConfig = {
    '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct',
    type_url: 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
    value: {
      stat_prefix: 'http_local_rate_limiter',
      token_bucket: { max_tokens: 4, tokens_per_fill: 4, fill_interval: '60s' },
      filter_enabled: { runtime_key: 'local_rate_limit_enabled', default_value: { numerator: 100, denominator: 'HUNDRED' } },
      filter_enforced: { runtime_key: 'local_rate_limit_enforced', default_value: { numerator: 100, denominator: 'HUNDRED' } },
      response_headers_to_add: [{ append: false, header: { key: 'x-local-rate-limit', value: 'true' } }],
    },
  };
  const any = translateLocalRateLimitFilter(typedConfig);
  for (const candidate of [any, { ...normalize(TYPE_URL.localRateLimit, any), '@type': TYPE_URL.localRateLimit }]) {
    const policy = compileLocalRateLimit(candidate)!;
    assert.deepEqual(policy.tokenBucket, { maxTokens: 4, tokensPerFill: 4, fillIntervalMs: 60_000 });
    assert.deepEqual(policy.responseHeadersToAdd, [['x-local-rate-limit', 'true']]);
    assert.equal(policy.xRateLimitHeaders, false, 'off unless enable_x_ratelimit_headers is set');
    const limiter = new LocalRateLimiter(policy, { now: () => 0 });
    assert.deepEqual(Array.from({ length: 5 }, () => limiter.check()), [1, 1, 1, 1, 3]);
    assert.equal(limiter.xRateLimitHeaders(), undefined);
  }
});

test('filter_enabled / filter_enforced default to 0% as in Envoy; not enforced lets the request through', () => {
  const base = { '@type': TYPE_URL.localRateLimit, stat_prefix: 'x', token_bucket: { max_tokens: 1, fill_interval: { seconds: 60 } } };
  assert.equal(new LocalRateLimiter(compileLocalRateLimit(base)!).check(), RateLimitOutcome.Disabled);
  const notEnforced = compileLocalRateLimit({ ...base, filter_enabled: { default_value: { numerator: 100 } }, status: { code: 'ServiceUnavailable' } })!;
  assert.equal(notEnforced.status, 503);
  const limiter = new LocalRateLimiter(notEnforced, { now: () => 0 });
  assert.equal(limiter.check(), RateLimitOutcome.Allowed);
  assert.equal(limiter.check(), RateLimitOutcome.LimitedNotEnforced);
  assert.equal(compileLocalRateLimit({ ...base, status: { code: 'OK' } })!.status, 429, 'a status below 400 becomes 429');
});

test('camelCase proto3 JSON and direct @type are accepted; bad buckets are rejected with a path', () => {
  const any = translateLocalRateLimitFilter({
    '@type': TYPE_URL.localRateLimit,
    statPrefix: 'p',
    tokenBucket: { maxTokens: 2, tokensPerFill: 1, fillInterval: '0.5s' },
    filterEnabled: { defaultValue: { numerator: 100 } },
    filterEnforced: { defaultValue: { numerator: 100 } },
    enableXRatelimitHeaders: 'DRAFT_VERSION_03',
  });
  const policy = compileLocalRateLimit(any)!;
  assert.deepEqual(policy.tokenBucket, { maxTokens: 2, tokensPerFill: 1, fillIntervalMs: 500 });
  assert.equal(policy.xRateLimitHeaders, true);
  assert.throws(() => compileLocalRateLimit({ '@type': TYPE_URL.localRateLimit, token_bucket: { max_tokens: 1, fill_interval: { nanos: 10_000_000 } } }),
    (e: unknown) => e instanceof MeshConfigError && e.path === 'token_bucket.fill_interval');
  assert.throws(() => translateLocalRateLimitFilter({ '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct', type_url: TYPE_URL.fault, value: {} },
    { kind: 'EnvoyFilter', resource: 'istio-system/rl', path: 'spec.configPatches[0].patch.value' }),
  (e: unknown) => e instanceof MeshConfigError && e.kind === 'EnvoyFilter' && e.path.endsWith('typed_config.type_url'));
  assert.throws(() => translateLocalRateLimitFilter({ '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct', type_url: TYPE_URL.localRateLimit, value: { token_bucket: { max_tokens: 1, fill_interval: 'soon' } } }),
    (e: unknown) => e instanceof MeshConfigError && e.path === 'typed_config.value.token_bucket.fill_interval');
});
