/**
 * Cluster.outlier_detection compiled with Envoy's defaults and validation
 * (envoy/config/cluster/v3/outlier_detection.proto; source/common/upstream/
 * outlier_detection_impl.cc DetectorConfig and DetectorImpl::create).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Cluster } from '../../src/config/envoy.js';
import { compileOutlierDetection, compilePanicThreshold, DEFAULT_PANIC_THRESHOLD, type OutlierDetectionV3 } from '../../src/core/outlier-policy.js';
import { MeshConfigError } from '../../src/errors.js';

const compile = (od: OutlierDetectionV3 | undefined) => compileOutlierDetection({ name: 'outbound|80||a', outlier_detection: od });

function refuses(od: OutlierDetectionV3, path: string, reason: RegExp): void {
  assert.throws(() => compile(od), (err: unknown) => {
    assert.ok(err instanceof MeshConfigError, String(err));
    assert.equal(err.kind, 'envoy.config.cluster.v3.Cluster');
    assert.equal(err.resource, 'outbound|80||a');
    assert.equal(err.path, path);
    assert.match(err.reason, reason);
    return true;
  });
}

describe('compileOutlierDetection', () => {
  it('no outlier_detection: no policy', () => {
    assert.equal(compile(undefined), undefined);
  });

  it("an empty message takes every Envoy default (outlier_detection.proto)", () => {
    assert.deepEqual({ ...compile({}) }, {
      consecutive5xx: 5,
      enforcingConsecutive5xx: 100,
      consecutiveGatewayFailure: 5,
      enforcingConsecutiveGatewayFailure: 0,
      consecutiveLocalOriginFailure: 5,
      enforcingConsecutiveLocalOriginFailure: 100,
      splitExternalLocalOriginErrors: false,
      intervalMs: 10_000,
      baseEjectionTimeMs: 30_000,
      maxEjectionTimeMs: 300_000,
      maxEjectionTimeJitterMs: 0,
      maxEjectionPercent: 10,
      alwaysEjectOneHost: false,
    });
  });

  it('given fields override the defaults; a wrapped 0 is 0, not the default', () => {
    const p = compile({
      consecutive_5xx: { value: 3 }, enforcing_consecutive_5xx: { value: 0 }, interval: { seconds: 1 }, base_ejection_time: { seconds: 5 },
      max_ejection_time: { seconds: 50 }, max_ejection_time_jitter: { nanos: 2_000_000 }, max_ejection_percent: { value: 100 },
      split_external_local_origin_errors: true, always_eject_one_host: { value: true },
    })!;
    assert.equal(p.consecutive5xx, 3);
    assert.equal(p.enforcingConsecutive5xx, 0);
    assert.equal(p.intervalMs, 1000);
    assert.equal(p.baseEjectionTimeMs, 5000);
    assert.equal(p.maxEjectionTimeMs, 50_000);
    assert.equal(p.maxEjectionTimeJitterMs, 2);
    assert.equal(p.maxEjectionPercent, 100);
    assert.equal(p.splitExternalLocalOriginErrors, true);
    assert.equal(p.alwaysEjectOneHost, true);
  });

  it('max_ejection_time defaults to max(300 s, base_ejection_time) (DetectorConfig)', () => {
    assert.equal(compile({ base_ejection_time: { seconds: 400 } })!.maxEjectionTimeMs, 400_000);
  });

  it("refuses max_ejection_time below base_ejection_time with Envoy's message", () => {
    refuses({ base_ejection_time: { seconds: 60 }, max_ejection_time: { seconds: 30 } }, 'outlier_detection.max_ejection_time', /max_ejection_time cannot be smaller than base_ejection_time/);
  });

  it('refuses a zero interval (proto: interval gt 0)', () => {
    refuses({ interval: { seconds: 0, nanos: 0 } }, 'outlier_detection.interval', /greater than 0/);
  });

  it('refuses a percentage above 100 (proto: lte 100), naming the proto field', () => {
    refuses({ max_ejection_percent: { value: 101 } }, 'outlier_detection.max_ejection_percent', /101 is above 100/);
    refuses({ enforcing_consecutive_5xx: { value: 200 } }, 'outlier_detection.enforcing_consecutive_5xx', /above 100/);
    refuses({ enforcing_consecutive_gateway_failure: { value: 101 } }, 'outlier_detection.enforcing_consecutive_gateway_failure', /above 100/);
    refuses({ enforcing_consecutive_local_origin_failure: { value: 101 } }, 'outlier_detection.enforcing_consecutive_local_origin_failure', /above 100/);
  });

  it('the policy is frozen', () => {
    assert.ok(Object.isFrozen(compile({})));
  });
});

describe('compilePanicThreshold (common_lb_config.healthy_panic_threshold)', () => {
  const panic = (value: number | undefined): number => compilePanicThreshold(value === undefined ? {} : { common_lb_config: { healthy_panic_threshold: { value } } } as Pick<Cluster, 'common_lb_config'>);

  it('defaults to 50%', () => {
    assert.equal(DEFAULT_PANIC_THRESHOLD, 50);
    assert.equal(panic(undefined), 50);
  });

  it('0 disables panic mode; values round to an integer and clamp to 0–100', () => {
    assert.equal(panic(0), 0);
    assert.equal(panic(33.5), 34);
    assert.equal(panic(120), 100);
  });
});
