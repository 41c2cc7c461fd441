import assert from 'node:assert/strict';
import test from 'node:test';
import { TYPE_URL } from '../../src/config/envoy.js';
import {
  translateConnectionPool, translateFault, translateOutlierDetection, translateRateLimitLocal,
} from '../../src/config/translate-resilience.js';
import { MeshConfigError } from '../../src/errors.js';
import { normalize } from '../../src/xds/protos.js';

/**
 * Encodes `obj` with its protobuf type and decodes it again, then removes what
 * decoding adds (oneof case names, int64 as strings, '@type') so a field the
 * type does not know, or a wrong shape, shows up as a difference.
 */
function roundTrip(typeUrl: string, obj: object): unknown {
  const clean = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map((x) => clean(x));
    if (typeof v !== 'object' || v === null) return v;
    const keys = new Set(Object.keys(v));
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === '@type') continue;
      if (typeof x === 'string' && keys.has(x) && x !== k) continue; // oneof discriminator
      out[k] = k === 'seconds' && typeof x === 'string' ? Number(x) : clean(x);
    }
    return out;
  };
  const { '@type': _t, ...rest } = obj as Record<string, unknown>;
  void _t;
  return { decoded: clean(normalize(typeUrl, obj)), original: clean(rest) };
}

function assertProtoValid(typeUrl: string, obj: object): void {
  const { decoded, original } = roundTrip(typeUrl, obj) as { decoded: unknown; original: unknown };
  assert.deepEqual(decoded, original);
}

const at = { kind: 'DestinationRule', resource: 'default/calculate', path: 'spec.trafficPolicy' };

test('fault: percentages become MILLION fractions truncated as istiod; absent percentage is 100%', () => {
  assert.deepEqual(translateFault({ abort: { httpStatus: 503, percentage: { value: 100 } } }), {
    '@type': TYPE_URL.fault,
    abort: { http_status: 503, percentage: { numerator: 1_000_000, denominator: 'MILLION' } },
  });
  assert.deepEqual(translateFault({ delay: { fixedDelay: '5s', percentage: { value: 0.1 } } }), {
    '@type': TYPE_URL.fault,
    delay: { fixed_delay: { seconds: 5, nanos: 0 }, percentage: { numerator: 1000, denominator: 'MILLION' } },
  });
  const both = translateFault({ delay: { fixedDelay: '1.5s' }, abort: { grpcStatus: 'unavailable' } })!;
  assert.deepEqual(both.delay, { fixed_delay: { seconds: 1, nanos: 500_000_000 }, percentage: { numerator: 1_000_000, denominator: 'MILLION' } });
  assert.deepEqual(both.abort, { grpc_status: 14, percentage: { numerator: 1_000_000, denominator: 'MILLION' } });
  assert.deepEqual(translateFault({ delay: { fixedDelay: '1s', percent: 5 } })!.delay, { fixed_delay: { seconds: 1, nanos: 0 }, percentage: { numerator: 50_000, denominator: 'MILLION' } });
  assert.equal(translateFault({ abort: {} }), undefined);
  assert.equal(translateFault(undefined), undefined);
  // A valid HTTPFault for the protobuf type, field for field.
  assertProtoValid(TYPE_URL.fault, both);
});

test('fault: bad values name their field', () => {
  const where = { kind: 'VirtualService', resource: 'default/calculate', path: 'spec.http[0].fault' };
  assert.throws(() => translateFault({ abort: { httpStatus: 503, percentage: { value: 150 } } }, where), (e: unknown) => e instanceof MeshConfigError && e.path === 'spec.http[0].fault.abort.percentage.value');
  assert.throws(() => translateFault({ abort: { grpcStatus: 'NOPE' } }, where), (e: unknown) => e instanceof MeshConfigError && e.path === 'spec.http[0].fault.abort.grpcStatus');
  assert.throws(() => translateFault({ delay: { fixedDelay: 'soon' } }, where), (e: unknown) => e instanceof MeshConfigError && e.path === 'spec.http[0].fault.delay.fixedDelay');
});

test('outlierDetection: the seed DestinationRule, as istiod writes it', () => {
  const out = translateOutlierDetection({ consecutive5xxErrors: 3, interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: 100 }, at);
  assert.deepEqual(out, {
    outlier_detection: {
      enforcing_success_rate: { value: 0 },
      consecutive_5xx: { value: 3 },
      enforcing_consecutive_5xx: { value: 100 },
      interval: { seconds: 10, nanos: 0 },
      base_ejection_time: { seconds: 30, nanos: 0 },
      max_ejection_percent: { value: 100 },
    },
    common_lb_config: { healthy_panic_threshold: { value: 0 } },
  });
});

test('outlierDetection: gateway errors, zero counts, local origin split, minHealthPercent', () => {
  const out = translateOutlierDetection({
    consecutive5xxErrors: 0, consecutiveGatewayErrors: 4, splitExternalLocalOriginErrors: true,
    consecutiveLocalOriginFailures: 2, maxEjectionPercent: 0, minHealthPercent: 30,
  });
  assert.deepEqual(out.outlier_detection, {
    enforcing_success_rate: { value: 0 },
    consecutive_5xx: { value: 0 },
    enforcing_consecutive_5xx: { value: 0 },
    consecutive_gateway_failure: { value: 4 },
    enforcing_consecutive_gateway_failure: { value: 100 },
    split_external_local_origin_errors: true,
    consecutive_local_origin_failure: { value: 2 },
    enforcing_consecutive_local_origin_failure: { value: 100 },
    enforcing_local_origin_success_rate: { value: 0 },
  });
  assert.deepEqual(out.common_lb_config, { healthy_panic_threshold: { value: 30 } });
  // Without the split, consecutiveLocalOriginFailures is ignored, as istiod does.
  assert.equal(translateOutlierDetection({ consecutiveLocalOriginFailures: 2 }).outlier_detection.consecutive_local_origin_failure, undefined);
  assert.throws(() => translateOutlierDetection({ interval: '10 seconds' }, at), (e: unknown) => e instanceof MeshConfigError && e.path === 'spec.trafficPolicy.interval');
  assertProtoValid(TYPE_URL.cluster, { name: 'c', ...out });
});

test('connectionPool: circuit breaker thresholds, connect timeout and HTTP protocol options as istiod', () => {
  const out = translateConnectionPool({
    tcp: { maxConnections: 1, connectTimeout: '250ms', maxConnectionDuration: '1h' },
    http: { http1MaxPendingRequests: 1, http2MaxRequests: 10, maxRequestsPerConnection: 5, maxRetries: 2, idleTimeout: '30s' },
  }, at);
  assert.deepEqual(out, {
    circuit_breakers: { thresholds: [{
      max_retries: { value: 2 }, max_requests: { value: 10 }, max_connections: { value: 1 }, max_pending_requests: { value: 1 }, track_remaining: true,
    }] },
    connect_timeout: { seconds: 0, nanos: 250_000_000 },
    common_http_protocol_options: {
      idle_timeout: { seconds: 30, nanos: 0 },
      max_requests_per_connection: { value: 5 },
      max_connection_duration: { seconds: 3600, nanos: 0 },
    },
  });
  assertProtoValid(TYPE_URL.cluster, { name: 'c', ...out });
});

test('connectionPool: zeros keep the unlimited defaults; tcp.idleTimeout is the fallback', () => {
  const out = translateConnectionPool({ tcp: { maxConnections: 0, idleTimeout: '5s' }, http: { http1MaxPendingRequests: 0 } });
  const max = { value: 4_294_967_295 };
  assert.deepEqual(out.circuit_breakers.thresholds[0], { max_retries: max, max_requests: max, max_connections: max, max_pending_requests: max, track_remaining: true });
  assert.deepEqual(out.common_http_protocol_options, { idle_timeout: { seconds: 5, nanos: 0 } });
  assert.equal(out.connect_timeout, undefined);
  assert.throws(() => translateConnectionPool({ tcp: { maxConnections: -1 } }, at), (e: unknown) => e instanceof MeshConfigError && e.path === 'spec.trafficPolicy.tcp.maxConnections');
});

test('RateLimit kind local bucket → LocalRateLimit, enabled and enforced 100%', () => {
  const any = translateRateLimitLocal({ tokenBucket: { maxTokens: 5, tokensPerFill: 5, fillInterval: '60s' } })!;
  assert.deepEqual(any, {
    '@type': TYPE_URL.localRateLimit,
    stat_prefix: 'http_local_rate_limiter',
    token_bucket: { max_tokens: 5, tokens_per_fill: { value: 5 }, fill_interval: { seconds: 60, nanos: 0 } },
    filter_enabled: { runtime_key: 'local_rate_limit_enabled', default_value: { numerator: 100, denominator: 'HUNDRED' } },
    filter_enforced: { runtime_key: 'local_rate_limit_enforced', default_value: { numerator: 100, denominator: 'HUNDRED' } },
    enable_x_ratelimit_headers: 'DRAFT_VERSION_03',
  });
  assertProtoValid(TYPE_URL.localRateLimit, any);
  assert.equal(translateRateLimitLocal(undefined), undefined);
  assert.throws(() => translateRateLimitLocal({ tokenBucket: { maxTokens: 0, fillInterval: '1s' } }), MeshConfigError);
  assert.throws(() => translateRateLimitLocal({ tokenBucket: { maxTokens: 1, fillInterval: '10ms' } }), MeshConfigError);
});
