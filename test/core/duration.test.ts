/**
 * Durations: Istio's YAML strings (Go time.ParseDuration, as istio's legacy
 * jsonpb unmarshal reads google.protobuf.Duration) and protobuf Durations,
 * with every timer delay clamped to what Node can arm.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_DURATION_MS, MAX_TIMER_MS, msToProto, parseDuration, protoToMs, timerDelay } from '../../src/core/duration.js';

describe('parseDuration', () => {
  it('single units: h, m, s, ms, us/µs/μs, ns', () => {
    assert.equal(parseDuration('2h'), 7_200_000);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('2s'), 2000);
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('1500us'), 1.5);
    assert.equal(parseDuration('1500\u00b5s'), 1.5, 'micro sign');
    assert.equal(parseDuration('1500\u03bcs'), 1.5, 'Greek mu');
    assert.equal(parseDuration('2000000ns'), 2);
  });

  it('compound and fractional values as Go accepts them', () => {
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('1m30s500ms'), 90_500);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('1.5h'), 5_400_000);
    assert.equal(parseDuration('.5s'), 500);
    assert.equal(parseDuration('1.s'), 1000);
    assert.equal(parseDuration('0'), 0, 'Go takes a bare 0');
    assert.equal(parseDuration('0s'), 0);
  });

  it('bad strings give a reason, not a number', () => {
    for (const bad of ['', '10', '1x', 's', '.s', '1h30', '1 s', 'PT1S', '1sec', '1S']) {
      const r = parseDuration(bad);
      assert.equal(typeof r, 'string', `${JSON.stringify(bad)} gave ${r}`);
    }
    assert.match(parseDuration('1x') as string, /"1x" is not a duration/);
    assert.equal(typeof parseDuration(5 as unknown as string), 'string', 'not a string');
  });

  it("MAX_DURATION_MS is Go's time.Duration limit (2^63-1 ns)", () => {
    assert.equal(MAX_DURATION_MS, Math.floor(Number(2n ** 63n - 1n) / 1e6));
  });
});

describe('timers', () => {
  it('MAX_TIMER_MS is the longest delay Node keeps (2^31-1 ms)', () => {
    assert.equal(MAX_TIMER_MS, 2 ** 31 - 1);
  });

  it('timerDelay clamps above MAX_TIMER_MS and below 0', () => {
    assert.equal(timerDelay(1000), 1000);
    assert.equal(timerDelay(MAX_TIMER_MS + 1), MAX_TIMER_MS);
    assert.equal(timerDelay(Number.POSITIVE_INFINITY), MAX_TIMER_MS);
    assert.equal(timerDelay(-5), 0);
    assert.equal(timerDelay(Number.NaN), 0);
  });
});

describe('protobuf Duration', () => {
  it('msToProto splits seconds and nanos', () => {
    assert.deepEqual(msToProto(1500), { seconds: 1, nanos: 500_000_000 });
    assert.deepEqual(msToProto(0), { seconds: 0, nanos: 0 });
    assert.deepEqual(msToProto(0.5), { seconds: 0, nanos: 500_000 });
    assert.deepEqual(msToProto(5_400_000), { seconds: 5400, nanos: 0 });
  });

  it('protoToMs: undefined stays undefined; int64 seconds may be a string', () => {
    assert.equal(protoToMs(undefined), undefined);
    assert.equal(protoToMs(null), undefined);
    assert.equal(protoToMs({}), 0);
    assert.equal(protoToMs({ seconds: '3', nanos: 250_000_000 }), 3250);
    assert.equal(protoToMs({ nanos: 1_000_000 }), 1);
  });

  it('protoToMs clamps to MAX_TIMER_MS (protobuf allows 10,000 years)', () => {
    assert.equal(protoToMs({ seconds: '315576000000' }), MAX_TIMER_MS);
    assert.equal(protoToMs({ seconds: 2_147_483 }), 2_147_483_000, 'just under the clamp');
  });

  it('an Istio string survives the round trip through the proto form', () => {
    for (const s of ['1h30m', '500ms', '1.5s', '250us']) {
      const ms = parseDuration(s) as number;
      assert.equal(protoToMs(msToProto(ms)), ms, s);
    }
  });
});
