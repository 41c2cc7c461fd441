/**
 * Envoy's local rate limit (envoy.extensions.filters.http.local_ratelimit.v3):
 * a token bucket that starts full, gains `tokens_per_fill` every
 * `fill_interval` up to `max_tokens`, and spends one token per request.
 * Envoy refills from a timer; here the same discrete fills are computed lazily
 * from an injected clock when the bucket is touched, so a bucket costs no timer.
 */
import type { Any, FractionalPercent } from '../config/envoy.js';
import { TYPE_URL } from '../config/envoy.js';
import { MeshConfigError } from '../errors.js';
import { protoToMs, type ProtoDuration } from './duration.js';
import { fractionToProbability, sample } from './fractional-percent.js';
import type { RandomSource } from './random.js';

/** envoy.type.v3.TokenBucket, compiled. */
export interface TokenBucketConfig {
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
}

/** A token bucket with lazy, timer-free refill. */
export class TokenBucket {
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
  private tokens: number;
  private lastFillMs: number;
  private readonly now: () => number;

  constructor(config: TokenBucketConfig, now: () => number = Date.now) {
    this.maxTokens = config.maxTokens;
    this.tokensPerFill = config.tokensPerFill;
    this.fillIntervalMs = config.fillIntervalMs;
    this.now = now;
    this.tokens = config.maxTokens;
    this.lastFillMs = now();
  }

  /** Applies every fill whose time has come (whole intervals since the last one). */
  private refill(now: number): void {
    const elapsed = now - this.lastFillMs;
    if (elapsed < this.fillIntervalMs) return;
    const fills = Math.floor(elapsed / this.fillIntervalMs);
    this.tokens = Math.min(this.maxTokens, this.tokens + fills * this.tokensPerFill);
    this.lastFillMs += fills * this.fillIntervalMs;
  }

  /** Takes one token; false when the bucket is empty. */
  tryTake(): boolean {
    this.refill(this.now());
    if (this.tokens === 0) return false;
    this.tokens--;
    return true;
  }

  /** Tokens left now (`x-ratelimit-remaining`). */
  remaining(): number {
    this.refill(this.now());
    return this.tokens;
  }

  /** Milliseconds until the next fill. */
  msToNextFill(): number {
    const now = this.now();
    this.refill(now);
    return this.fillIntervalMs - (now - this.lastFillMs);
  }

  /**
   * Whole seconds until the next fill, computed as Envoy's
   * remainingFillInterval: fill_interval − whole seconds elapsed, truncated
   * (`x-ratelimit-reset`).
   */
  resetSeconds(): number {
    const now = this.now();
    this.refill(now);
    const elapsedWholeSeconds = Math.floor((now - this.lastFillMs) / 1000);
    return Math.trunc((this.fillIntervalMs - elapsedWholeSeconds * 1000) / 1000);
  }
}

/** The LocalRateLimit fields meshlet reads, in proto-loader object form. */
export interface LocalRateLimit {
  stat_prefix?: string;
  status?: { code?: string | number };
  token_bucket?: { max_tokens?: number; tokens_per_fill?: { value: number }; fill_interval?: ProtoDuration };
  filter_enabled?: { default_value?: FractionalPercent; runtime_key?: string };
  filter_enforced?: { default_value?: FractionalPercent; runtime_key?: string };
  request_headers_to_add_when_not_enforced?: Array<{ header: { key: string; value: string } }>;
  response_headers_to_add?: Array<{ header: { key: string; value: string } }>;
  enable_x_ratelimit_headers?: string | number;
}

/** A compiled LocalRateLimit. */
export interface LocalRateLimitPolicy {
  readonly statPrefix: string;
  /** Undefined: the filter is configured but limits nothing (Envoy allows this at listener level). */
  readonly tokenBucket: TokenBucketConfig | undefined;
  /** Probability the limit is evaluated (filter_enabled; absent = 0%, as Envoy). */
  readonly enabled: number;
  /** Probability an over-limit request is refused (filter_enforced; absent = 0%). */
  readonly enforced: number;
  /** Status of a limited response (Envoy: 429 when absent or < 400). */
  readonly status: number;
  /** Extra headers on limited responses, as [name, value] pairs (names lower-cased). */
  readonly responseHeadersToAdd: ReadonlyArray<readonly [string, string]>;
  /** Extra request headers when limited but not enforced. */
  readonly requestHeadersToAddWhenNotEnforced: ReadonlyArray<readonly [string, string]>;
  /** enable_x_ratelimit_headers: DRAFT_VERSION_03 → x-ratelimit-limit / -remaining / -reset on every response. */
  readonly xRateLimitHeaders: boolean;
}

const KIND = 'envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';

/** envoy.type.v3.StatusCode names of the 4xx/5xx codes (the only ones a limit may answer with). */
const statusCodes: Record<string, number> = {
  BadRequest: 400, Unauthorized: 401, PaymentRequired: 402, Forbidden: 403, NotFound: 404, MethodNotAllowed: 405,
  NotAcceptable: 406, ProxyAuthenticationRequired: 407, RequestTimeout: 408, Conflict: 409, Gone: 410,
  LengthRequired: 411, PreconditionFailed: 412, PayloadTooLarge: 413, URITooLong: 414, UnsupportedMediaType: 415,
  RangeNotSatisfiable: 416, ExpectationFailed: 417, MisdirectedRequest: 421, UnprocessableEntity: 422, Locked: 423,
  FailedDependency: 424, UpgradeRequired: 426, PreconditionRequired: 428, TooManyRequests: 429,
  RequestHeaderFieldsTooLarge: 431, InternalServerError: 500, NotImplemented: 501, BadGateway: 502,
  ServiceUnavailable: 503, GatewayTimeout: 504, HTTPVersionNotSupported: 505, VariantAlsoNegotiates: 506,
  InsufficientStorage: 507, LoopDetected: 508, NotExtended: 510, NetworkAuthenticationRequired: 511,
};

function statusOf(code: string | number | undefined): number {
  const n = typeof code === 'number' ? code : code === undefined ? 0 : (statusCodes[code] ?? Number(code));
  return Number.isInteger(n) && n >= 400 && n < 600 ? n : 429;
}

function headerPairs(list: Array<{ header: { key: string; value: string } }> | undefined): Array<readonly [string, string]> {
  return (list ?? []).filter((h) => h && h.header).map((h) => [String(h.header.key).toLowerCase(), String(h.header.value ?? '')] as const);
}

/**
 * Compiles a TokenBucket (max_tokens > 0, tokens_per_fill default 1,
 * fill_interval required and ≥ 50 ms as Envoy's local limiter demands).
 * @throws MeshConfigError naming the bad field.
 */
export function compileTokenBucket(bucket: NonNullable<LocalRateLimit['token_bucket']>, resource = '', path = 'token_bucket'): TokenBucketConfig {
  const maxTokens = Number(bucket.max_tokens ?? 0);
  if (!(Number.isInteger(maxTokens) && maxTokens > 0)) throw new MeshConfigError(KIND, resource, `${path}.max_tokens`, 'must be an integer greater than 0');
  const tokensPerFill = bucket.tokens_per_fill ? Number(bucket.tokens_per_fill.value) : 1;
  if (!(Number.isInteger(tokensPerFill) && tokensPerFill > 0)) throw new MeshConfigError(KIND, resource, `${path}.tokens_per_fill`, 'must be an integer greater than 0');
  const fillIntervalMs = protoToMs(bucket.fill_interval);
  if (fillIntervalMs === undefined) throw new MeshConfigError(KIND, resource, `${path}.fill_interval`, 'is required');
  if (fillIntervalMs < 50) throw new MeshConfigError(KIND, resource, `${path}.fill_interval`, 'local rate limit token bucket fill timer must be >= 50ms');
  return Object.freeze({ maxTokens, tokensPerFill, fillIntervalMs });
}

/**
 * Compiles an `Any(LocalRateLimit)` (the HCM filter's typed_config or a
 * route's typed_per_filter_config['envoy.filters.http.local_ratelimit']).
 * @throws MeshConfigError for a wrong type URL or a bad token bucket.
 */
export function compileLocalRateLimit(any: Any | undefined, resource = ''): LocalRateLimitPolicy | undefined {
  if (!any) return undefined;
  if (any['@type'] !== TYPE_URL.localRateLimit) {
    throw new MeshConfigError(KIND, resource, '@type', `expected ${TYPE_URL.localRateLimit}, got ${String(any['@type'])}`);
  }
  const config = any as unknown as LocalRateLimit;
  const x = config.enable_x_ratelimit_headers;
  return Object.freeze({
    statPrefix: config.stat_prefix ?? '',
    tokenBucket: config.token_bucket ? compileTokenBucket(config.token_bucket, resource) : undefined,
    enabled: fractionToProbability(config.filter_enabled?.default_value, 0),
    enforced: fractionToProbability(config.filter_enforced?.default_value, 0),
    status: statusOf(config.status?.code),
    responseHeadersToAdd: headerPairs(config.response_headers_to_add),
    requestHeadersToAddWhenNotEnforced: headerPairs(config.request_headers_to_add_when_not_enforced),
    xRateLimitHeaders: x === 'DRAFT_VERSION_03' || x === 1,
  });
}

/** Outcome of {@link LocalRateLimiter.check}. */
export const RateLimitOutcome = {
  /** The filter is not enabled for this request (or has no bucket): no headers, go on. */
  Disabled: 0,
  /** A token was taken: go on (and add x-ratelimit headers if enabled). */
  Allowed: 1,
  /** Over the limit but not enforced: go on with requestHeadersToAddWhenNotEnforced. */
  LimitedNotEnforced: 2,
  /** Over the limit: answer `status` locally with flag `RL` and responseHeadersToAdd. */
  Limited: 3,
} as const;
export type RateLimitOutcome = (typeof RateLimitOutcome)[keyof typeof RateLimitOutcome];

/**
 * One local rate limit in force: a compiled policy and its bucket. Create one
 * per scope (per listener/route/RateLimit resource); keep it across config
 * pushes that do not change the policy so the bucket state survives.
 */
export class LocalRateLimiter {
  readonly policy: LocalRateLimitPolicy;
  readonly bucket: TokenBucket | undefined;
  private readonly random: RandomSource;

  constructor(policy: LocalRateLimitPolicy, options: { now?: () => number; random?: RandomSource } = {}) {
    this.policy = policy;
    this.bucket = policy.tokenBucket ? new TokenBucket(policy.tokenBucket, options.now) : undefined;
    this.random = options.random ?? Math.random;
  }

  /** Evaluates one request, as the filter's decodeHeaders. */
  check(): RateLimitOutcome {
    if (!this.bucket || !sample(this.policy.enabled, this.random)) return RateLimitOutcome.Disabled;
    if (this.bucket.tryTake()) return RateLimitOutcome.Allowed;
    return sample(this.policy.enforced, this.random) ? RateLimitOutcome.Limited : RateLimitOutcome.LimitedNotEnforced;
  }

  /**
   * The three draft-03 header values for a response whose request was checked
   * (any outcome but Disabled), or undefined when the policy does not emit them.
   */
  xRateLimitHeaders(): { 'x-ratelimit-limit': string; 'x-ratelimit-remaining': string; 'x-ratelimit-reset': string } | undefined {
    if (!this.policy.xRateLimitHeaders || !this.bucket) return undefined;
    return {
      'x-ratelimit-limit': String(this.bucket.maxTokens),
      'x-ratelimit-remaining': String(this.bucket.remaining()),
      'x-ratelimit-reset': String(this.bucket.resetSeconds()),
    };
  }
}
