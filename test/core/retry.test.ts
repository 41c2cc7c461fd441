import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay, compileRetryPolicy, retriableFailure, retriableResponse, validateRetryOn } from '../../src/core/retry.js';
import { seededRandom } from '../../src/core/random.js';
import { parseDuration } from '../../src/core/duration.js';

describe("retry policy with Envoy's semantics", () => {
  const policy = (retryOn: string, codes: number[] = []) => compileRetryPolicy({ retry_on: retryOn, num_retries: { value: 3 }, retriable_status_codes: codes })!;

  it('decides by retry_on: 5xx, gateway-error, retriable-4xx, retriable-status-codes, gRPC codes', () => {
    assert.equal(retriableResponse(policy('5xx'), 500), true);
    assert.equal(retriableResponse(policy('gateway-error'), 500), false);
    assert.equal(retriableResponse(policy('gateway-error'), 504), true);
    assert.equal(retriableResponse(policy('retriable-4xx'), 409), true);
    assert.equal(retriableResponse(policy('retriable-status-codes', [418]), 418), true);
    assert.equal(retriableResponse(policy('connect-failure'), 503), false);
    assert.equal(retriableResponse(policy('unavailable'), 200, 14), true);
    assert.equal(retriableResponse(policy('unavailable'), 200, 13), false);
  });

  it('treats a per-try timeout like Envoy: retried under 5xx, gateway-error and reset only', () => {
    assert.equal(retriableFailure(policy('5xx'), 'timeout'), true);
    assert.equal(retriableFailure(policy('reset'), 'timeout'), true);
    assert.equal(retriableFailure(policy('connect-failure,retriable-status-codes'), 'timeout'), false);
    assert.equal(retriableFailure(policy('connect-failure'), 'connect-failure'), true);
  });

  it('backs off with full jitter in [0, 25 ms × (2^n − 1)], capped at 250 ms', () => {
    const p = policy('5xx');
    const random = seededRandom(11);
    for (let n = 1; n <= 6; n++) {
      for (let i = 0; i < 200; i++) {
        const d = backoffDelay(p, n, random);
        assert.ok(d >= 0 && d <= Math.min(25 * (2 ** n - 1), 250), `retry ${n}: ${d}`);
      }
    }
  });

  it('validates retryOn lists and parses Istio durations', () => {
    assert.equal(validateRetryOn('5xx, gateway-error,503'), undefined);
    assert.match(String(validateRetryOn('5xx,700')), /not an HTTP status/);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('250ms'), 250);
    assert.match(String(parseDuration('2 s')), /not a duration/);
    assert.equal(compileRetryPolicy({ num_retries: { value: 0 } }), undefined);
  });
});
