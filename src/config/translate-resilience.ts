/**
 * Istio → Envoy translation of the resilience fields, field for field as
 * istiod does it (pilot/pkg/networking/core/cluster_traffic_policy.go
 * applyConnectionPool / applyOutlierDetection, route.go TranslateFault /
 * MirrorPercent). Pure functions: the translator calls them and places the
 * results on the cluster or route; core/ compiles the results.
 */
import { msToProto, parseDuration, type ProtoDuration } from '../core/duration.js';
import type { CircuitBreakerThresholdsV3 } from '../core/circuit-breaker.js';
import { percentToFractional } from '../core/fractional-percent.js';
import type { OutlierDetectionV3 } from '../core/outlier-detection.js';
import { MeshError, MeshConfigError } from '../errors.js';
import type { Any, FractionalPercent } from './envoy.js';
import { TYPE_URL } from './envoy.js';
import type { ConnectionPoolSettings, HTTPRoute, OutlierDetectionSettings, Percent, RateLimitSpec } from './istio-types.js';

/** Where an Istio field lives, for MeshConfigError. */
export interface ConfigLocation {
  kind: string;
  /** `namespace/name` */
  resource: string;
  /** JSON path of the object being translated, e.g. `spec.http[0].fault`. */
  path: string;
}

const UINT32_MAX = 4_294_967_295;

function fail(at: ConfigLocation | undefined, field: string, reason: string): never {
  throw new MeshConfigError(at?.kind ?? 'unknown', at?.resource ?? '', at ? `${at.path}.${field}` : field, reason);
}

function duration(text: string, at: ConfigLocation | undefined, field: string): ProtoDuration & { seconds: number; nanos: number } {
  const ms = parseDuration(text);
  if (typeof ms === 'string') fail(at, field, ms);
  if (ms < 1) fail(at, field, 'must be at least 1ms');
  return msToProto(ms);
}

function percent(p: Percent | undefined, at: ConfigLocation | undefined, field: string): FractionalPercent | undefined {
  if (p === undefined || p === null) return undefined;
  const value = Number(p.value ?? 0);
  if (!(value >= 0 && value <= 100)) fail(at, `${field}.value`, `${p.value} is not a percentage in [0, 100]`);
  return percentToFractional(value);
}

const FULL: FractionalPercent = { numerator: 1_000_000, denominator: 'MILLION' };

/** Istio's SupportedGRPCStatus: the names a VirtualService abort.grpcStatus may use. */
export const GRPC_STATUS_CODES: Readonly<Record<string, number>> = Object.freeze({
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, DATA_LOSS: 15, UNAUTHENTICATED: 16,
});

/**
 * VirtualService `http[].fault` → `Any(HTTPFault)` for the route's
 * typed_per_filter_config['envoy.filters.http.fault']. Percentages become
 * MILLION fractions (value × 10 000, truncated, as istiod). An absent
 * percentage is written as 100%, which is what Istio documents ("If not
 * specified, all requests are aborted/delayed"); Envoy itself reads an absent
 * percentage as 0%. Undefined when neither a delay nor an abort remains.
 */
export function translateFault(fault: HTTPRoute['fault'], at?: ConfigLocation): Any | undefined {
  if (!fault) return undefined;
  const out: Any = { '@type': TYPE_URL.fault };
  const delay = fault.delay;
  if (delay && delay.fixedDelay !== undefined) {
    const pct = percent(delay.percentage, at, 'delay.percentage')
      ?? (delay.percent !== undefined && delay.percent !== null ? percentToFractional(Number(delay.percent)) : FULL);
    out.delay = { fixed_delay: duration(delay.fixedDelay, at, 'delay.fixedDelay'), percentage: pct };
  }
  const abort = fault.abort;
  if (abort && (abort.httpStatus !== undefined || abort.grpcStatus !== undefined)) {
    const pct = percent(abort.percentage, at, 'abort.percentage') ?? FULL;
    if (abort.httpStatus !== undefined) {
      const status = Number(abort.httpStatus);
      if (!(Number.isInteger(status) && status >= 200 && status < 600)) fail(at, 'abort.httpStatus', `${abort.httpStatus} is not an HTTP status in [200, 599]`);
      out.abort = { http_status: status, percentage: pct };
    } else {
      const name = String(abort.grpcStatus).toUpperCase();
      const code = GRPC_STATUS_CODES[name];
      if (code === undefined) fail(at, 'abort.grpcStatus', `"${abort.grpcStatus}" is not a gRPC status name (e.g. UNAVAILABLE)`);
      out.abort = { grpc_status: code, percentage: pct };
    }
  }
  return out.delay || out.abort ? out : undefined;
}

/** The cluster fields a DestinationRule `outlierDetection` sets. */
export interface OutlierDetectionFields {
  outlier_detection: OutlierDetectionV3;
  /** Always set, as istiod does: minHealthPercent (default 0) disables Envoy's 50% panic threshold. */
  common_lb_config: { healthy_panic_threshold: { value: number } };
}

/**
 * DestinationRule `trafficPolicy.outlierDetection` → Cluster.outlier_detection
 * + common_lb_config.healthy_panic_threshold, as istiod's applyOutlierDetection:
 * success-rate ejection off; consecutive5xxErrors → consecutive_5xx with
 * enforcing 100 (0 when the count is 0); consecutiveGatewayErrors likewise
 * (Envoy would enforce gateway failures 0% otherwise); local-origin failures
 * only with splitExternalLocalOriginErrors; maxEjectionPercent only when > 0.
 * Fields left unset keep Envoy's defaults (e.g. 5 consecutive 5xx).
 */
export function translateOutlierDetection(od: OutlierDetectionSettings, at?: ConfigLocation): OutlierDetectionFields {
  const out: OutlierDetectionV3 = { enforcing_success_rate: { value: 0 } };
  // The deprecated consecutiveErrors meant gateway errors only (istio/api#617), as older istiod.
  if (od.consecutiveErrors !== undefined && od.consecutiveErrors > 0) {
    out.enforcing_consecutive_gateway_failure = { value: 100 };
    out.enforcing_consecutive_5xx = { value: 0 };
    out.consecutive_gateway_failure = { value: count(od.consecutiveErrors, at, 'consecutiveErrors') };
  }
  if (od.consecutive5xxErrors !== undefined && od.consecutive5xxErrors !== null) {
    const v = count(od.consecutive5xxErrors, at, 'consecutive5xxErrors');
    out.consecutive_5xx = { value: v };
    out.enforcing_consecutive_5xx = { value: v > 0 ? 100 : 0 };
  }
  if (od.consecutiveGatewayErrors !== undefined && od.consecutiveGatewayErrors !== null) {
    const v = count(od.consecutiveGatewayErrors, at, 'consecutiveGatewayErrors');
    out.consecutive_gateway_failure = { value: v };
    out.enforcing_consecutive_gateway_failure = { value: v > 0 ? 100 : 0 };
  }
  if (od.interval !== undefined) out.interval = duration(od.interval, at, 'interval');
  if (od.baseEjectionTime !== undefined) out.base_ejection_time = duration(od.baseEjectionTime, at, 'baseEjectionTime');
  if (od.maxEjectionPercent !== undefined && od.maxEjectionPercent !== null) {
    const v = Number(od.maxEjectionPercent);
    if (!(Number.isInteger(v) && v >= 0 && v <= 100)) fail(at, 'maxEjectionPercent', `${od.maxEjectionPercent} is not an integer percentage in [0, 100]`);
    if (v > 0) out.max_ejection_percent = { value: v };
  }
  if (od.splitExternalLocalOriginErrors === true) {
    out.split_external_local_origin_errors = true;
    const v = od.consecutiveLocalOriginFailures === undefined ? 0 : count(od.consecutiveLocalOriginFailures, at, 'consecutiveLocalOriginFailures');
    if (v > 0) {
      out.consecutive_local_origin_failure = { value: v };
      out.enforcing_consecutive_local_origin_failure = { value: 100 };
    }
    out.enforcing_local_origin_success_rate = { value: 0 };
  }
  const minHealth = od.minHealthPercent === undefined || od.minHealthPercent === null ? 0 : Number(od.minHealthPercent);
  if (!(minHealth >= 0 && minHealth <= 100)) fail(at, 'minHealthPercent', `${od.minHealthPercent} is not a percentage in [0, 100]`);
  return { outlier_detection: out, common_lb_config: { healthy_panic_threshold: { value: minHealth } } };
}

function count(value: unknown, at: ConfigLocation | undefined, field: string): number {
  const n = Number(value);
  if (!(Number.isInteger(n) && n >= 0 && n <= UINT32_MAX)) fail(at, field, `${String(value)} is not a non-negative integer`);
  return n;
}

/**
 * The thresholds istiod puts on every cluster: everything unlimited
 * (UINT32_MAX) instead of Envoy's 1024 / 3 retries, and track_remaining.
 */
export function defaultCircuitBreakerThresholds(): CircuitBreakerThresholdsV3 {
  return {
    max_retries: { value: UINT32_MAX },
    max_requests: { value: UINT32_MAX },
    max_connections: { value: UINT32_MAX },
    max_pending_requests: { value: UINT32_MAX },
    track_remaining: true,
  };
}

/** The cluster fields a DestinationRule `connectionPool` sets. */
export interface ConnectionPoolFields {
  circuit_breakers: { thresholds: CircuitBreakerThresholdsV3[] };
  connect_timeout?: ProtoDuration;
  common_http_protocol_options?: { idle_timeout?: ProtoDuration; max_requests_per_connection?: { value: number }; max_connection_duration?: ProtoDuration };
}

/**
 * DestinationRule `trafficPolicy.connectionPool` → circuit_breakers (one
 * DEFAULT threshold starting from istiod's unlimited defaults),
 * connect_timeout, and common_http_protocol_options, as istiod's
 * applyConnectionPool: http2MaxRequests → max_requests,
 * http1MaxPendingRequests → max_pending_requests, maxRetries →
 * max_retries, tcp.maxConnections → max_connections (each only when > 0);
 * idle_timeout from http.idleTimeout, else tcp.idleTimeout;
 * max_requests_per_connection when > 0; tcp.maxConnectionDuration.
 * connect_timeout is only written when tcp.connectTimeout is given (istiod
 * otherwise uses the mesh default, 10 s: the caller's choice).
 */
export function translateConnectionPool(cp: ConnectionPoolSettings | undefined, at?: ConfigLocation): ConnectionPoolFields {
  const threshold = defaultCircuitBreakerThresholds();
  const out: ConnectionPoolFields = { circuit_breakers: { thresholds: [threshold] } };
  if (!cp) return out;
  let idleTimeout: string | undefined;
  let maxRequestsPerConnection = 0;
  if (cp.http) {
    const h = cp.http;
    if (h.http2MaxRequests !== undefined && count(h.http2MaxRequests, at, 'http.http2MaxRequests') > 0) threshold.max_requests = { value: Number(h.http2MaxRequests) };
    if (h.http1MaxPendingRequests !== undefined && count(h.http1MaxPendingRequests, at, 'http.http1MaxPendingRequests') > 0) threshold.max_pending_requests = { value: Number(h.http1MaxPendingRequests) };
    if (h.maxRetries !== undefined && count(h.maxRetries, at, 'http.maxRetries') > 0) threshold.max_retries = { value: Number(h.maxRetries) };
    idleTimeout = h.idleTimeout;
    if (h.maxRequestsPerConnection !== undefined) maxRequestsPerConnection = count(h.maxRequestsPerConnection, at, 'http.maxRequestsPerConnection');
  }
  let maxConnectionDuration: string | undefined;
  if (cp.tcp) {
    const t = cp.tcp;
    if (t.connectTimeout !== undefined) out.connect_timeout = duration(t.connectTimeout, at, 'tcp.connectTimeout');
    if (t.maxConnections !== undefined && count(t.maxConnections, at, 'tcp.maxConnections') > 0) threshold.max_connections = { value: Number(t.maxConnections) };
    maxConnectionDuration = t.maxConnectionDuration;
    if (idleTimeout === undefined) idleTimeout = t.idleTimeout;
  }
  if (idleTimeout !== undefined || maxRequestsPerConnection > 0 || maxConnectionDuration !== undefined) {
    const options: NonNullable<ConnectionPoolFields['common_http_protocol_options']> = {};
    if (idleTimeout !== undefined) options.idle_timeout = duration(idleTimeout, at, cp.http?.idleTimeout !== undefined ? 'http.idleTimeout' : 'tcp.idleTimeout');
    if (maxRequestsPerConnection > 0) options.max_requests_per_connection = { value: maxRequestsPerConnection };
    if (maxConnectionDuration !== undefined) options.max_connection_duration = duration(maxConnectionDuration, at, 'tcp.maxConnectionDuration');
    out.common_http_protocol_options = options;
  }
  return out;
}

/** Options of {@link translateRateLimitLocal}. */
export interface LocalRateLimitOptions {
  /** stat_prefix; default `http_local_rate_limiter` (Istio's docs). */
  statPrefix?: string;
  /** Emit x-ratelimit-limit / -remaining / -reset (DRAFT_VERSION_03); default true. */
  xRateLimitHeaders?: boolean;
}

/**
 * The meshlet `RateLimit` kind's `local.tokenBucket { maxTokens,
 * tokensPerFill, fillInterval }` → `Any(LocalRateLimit)`, enabled and
 * enforced for 100% of requests (Envoy defaults both to 0%).
 */
export function translateRateLimitLocal(local: RateLimitSpec['local'], at?: ConfigLocation, options: LocalRateLimitOptions = {}): Any | undefined {
  if (!local || !local.tokenBucket) return undefined;
  const tb = local.tokenBucket;
  const maxTokens = count(tb.maxTokens, at, 'tokenBucket.maxTokens');
  if (maxTokens === 0) fail(at, 'tokenBucket.maxTokens', 'must be greater than 0');
  const tokensPerFill = tb.tokensPerFill === undefined ? 1 : count(tb.tokensPerFill, at, 'tokenBucket.tokensPerFill');
  if (tokensPerFill === 0) fail(at, 'tokenBucket.tokensPerFill', 'must be greater than 0');
  const fillInterval = duration(tb.fillInterval, at, 'tokenBucket.fillInterval');
  if (fillInterval.seconds * 1000 + fillInterval.nanos / 1e6 < 50) fail(at, 'tokenBucket.fillInterval', 'must be at least 50ms (Envoy local rate limit)');
  const out: Any = {
    '@type': TYPE_URL.localRateLimit,
    stat_prefix: options.statPrefix ?? 'http_local_rate_limiter',
    token_bucket: { max_tokens: maxTokens, tokens_per_fill: { value: tokensPerFill }, fill_interval: fillInterval },
    filter_enabled: { runtime_key: 'local_rate_limit_enabled', default_value: { numerator: 100, denominator: 'HUNDRED' } },
    filter_enforced: { runtime_key: 'local_rate_limit_enforced', default_value: { numerator: 100, denominator: 'HUNDRED' } },
  };
  if (options.xRateLimitHeaders !== false) out.enable_x_ratelimit_headers = 'DRAFT_VERSION_03';
  return out;
}

const TYPED_STRUCT_URLS = new Set(['type.googleapis.com/udpa.type.v1.TypedStruct', 'type.googleapis.com/xds.type.v3.TypedStruct']);

/**
 * An EnvoyFilter patch's `typed_config` for `envoy.filters.http.local_ratelimit`
 * → `Any(LocalRateLimit)` in proto-loader object form. Accepts Istio's
 * documented form unchanged (`@type: …udpa.type.v1.TypedStruct`, `type_url`,
 * `value` in proto3 JSON: `fill_interval: 60s`, `append: false`, lowerCamel or
 * snake_case keys) and a direct `@type: …LocalRateLimit` object.
 */
export function translateLocalRateLimitFilter(typedConfig: unknown, at?: ConfigLocation): Any {
  if (typeof typedConfig !== 'object' || typedConfig === null) fail(at, 'typed_config', 'must be an object');
  const tc = typedConfig as Record<string, unknown>;
  let body: Record<string, unknown>;
  let prefix = 'typed_config';
  const type = String(tc['@type'] ?? '');
  if (TYPED_STRUCT_URLS.has(type)) {
    const url = String(tc.type_url ?? tc.typeUrl ?? '');
    if (url !== TYPE_URL.localRateLimit) fail(at, 'typed_config.type_url', `expected ${TYPE_URL.localRateLimit}, got "${url}"`);
    body = (tc.value ?? {}) as Record<string, unknown>;
    prefix = 'typed_config.value';
  } else if (type === TYPE_URL.localRateLimit) {
    body = { ...tc };
    delete body['@type'];
  } else {
    fail(at, 'typed_config.@type', `expected a TypedStruct or ${TYPE_URL.localRateLimit}, got "${type}"`);
  }
  try {
    return { '@type': TYPE_URL.localRateLimit, ...jsonToLocalRateLimit(snakeKeys(body) as Record<string, unknown>) };
  } catch (err) {
    if (err instanceof MeshError) throw err;
    const e = err as { field?: string; message?: string };
    fail(at, `${prefix}.${e.field ?? ''}`, e.message ?? String(err));
  }
}

function snakeKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeKeys);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k.startsWith('@') ? k : k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = snakeKeys(v);
  return out;
}

class FieldError extends Error {
  constructor(readonly field: string, message: string) {
    super(message);
  }
}

function jsonDuration(v: unknown, field: string): ProtoDuration {
  if (typeof v === 'object' && v !== null) return v as ProtoDuration;
  // proto3 JSON writes Durations as seconds with an "s" suffix ("60s", "0.5s"); Istio users also write "1m".
  const ms = parseDuration(String(v));
  if (typeof ms === 'string') throw new FieldError(field, ms);
  return msToProto(ms);
}

function jsonWrapped(v: unknown): { value: unknown } {
  return typeof v === 'object' && v !== null && 'value' in v ? (v as { value: unknown }) : { value: v };
}

function jsonTokenBucket(tb: Record<string, unknown>, field: string): Record<string, unknown> {
  const out: Record<string, unknown> = { ...tb };
  if (tb.tokens_per_fill !== undefined) out.tokens_per_fill = jsonWrapped(tb.tokens_per_fill);
  if (tb.fill_interval !== undefined) out.fill_interval = jsonDuration(tb.fill_interval, `${field}.fill_interval`);
  if (tb.max_tokens !== undefined) out.max_tokens = Number(tb.max_tokens);
  return out;
}

function jsonHeaders(list: unknown): unknown {
  if (!Array.isArray(list)) return list;
  return list.map((h: Record<string, unknown>) => {
    const { append, ...rest } = h;
    if (append === undefined || rest.append_action !== undefined) return rest;
    // The deprecated BoolValue `append` → append_action, as Envoy interprets it.
    const on = typeof append === 'object' && append !== null ? (append as { value?: boolean }).value : append;
    return { ...rest, append_action: on === false ? 'OVERWRITE_IF_EXISTS_OR_ADD' : 'APPEND_IF_EXISTS_OR_ADD' };
  });
}

function jsonToLocalRateLimit(v: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...v };
  if (v.token_bucket && typeof v.token_bucket === 'object') out.token_bucket = jsonTokenBucket(v.token_bucket as Record<string, unknown>, 'token_bucket');
  for (const key of ['response_headers_to_add', 'request_headers_to_add_when_not_enforced']) if (v[key] !== undefined) out[key] = jsonHeaders(v[key]);
  if (v.always_consume_default_token_bucket !== undefined) out.always_consume_default_token_bucket = jsonWrapped(v.always_consume_default_token_bucket);
  if (Array.isArray(v.descriptors)) {
    out.descriptors = v.descriptors.map((d: Record<string, unknown>, i: number) =>
      d.token_bucket ? { ...d, token_bucket: jsonTokenBucket(d.token_bucket as Record<string, unknown>, `descriptors[${i}].token_bucket`) } : d);
  }
  return out;
}

/**
 * Istio `mirrorPercentage` / deprecated `mirrorPercent` → the mirror
 * policy's runtime_fraction, as istiod's MirrorPercent: absent → 100%
 * (1 000 000 / MILLION); an explicit 0 → null, meaning "write no mirror policy".
 */
export function translateMirrorFraction(mirrorPercentage: Percent | undefined, mirrorPercent?: number, at?: ConfigLocation): { default_value: FractionalPercent } | null {
  if (mirrorPercentage !== undefined && mirrorPercentage !== null) {
    const fraction = percent(mirrorPercentage, at, 'mirrorPercentage')!;
    return fraction.numerator > 0 ? { default_value: fraction } : null;
  }
  if (mirrorPercent !== undefined && mirrorPercent !== null) {
    return mirrorPercent > 0 ? { default_value: percentToFractional(Number(mirrorPercent)) } : null;
  }
  return { default_value: { ...FULL } };
}
