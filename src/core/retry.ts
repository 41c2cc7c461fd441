/**
 * Envoy's retry policy: which outcomes are retried (`retry_on`), how many
 * times, the per-try timeout and the jittered exponential back-off. Compiled
 * once from the route's RetryPolicy; decisions are bit tests on the hot path.
 */
import type { RetryPolicy } from '../config/envoy.js';
import { protoToMs } from './duration.js';
import type { RandomSource } from './random.js';

/** retry_on conditions as bit flags. */
export const RetryOn = {
  '5xx': 1 << 0,
  'gateway-error': 1 << 1,
  reset: 1 << 2,
  'connect-failure': 1 << 3,
  'retriable-4xx': 1 << 4,
  'refused-stream': 1 << 5,
  'retriable-status-codes': 1 << 6,
  'envoy-ratelimited': 1 << 7,
  'retriable-headers': 1 << 8,
  'http3-post-connect-failure': 1 << 9,
  'reset-before-request': 1 << 10,
  // gRPC conditions, read from grpc-status
  cancelled: 1 << 16,
  'deadline-exceeded': 1 << 17,
  internal: 1 << 18,
  'resource-exhausted': 1 << 19,
  unavailable: 1 << 20,
} as const;

export type RetryCondition = keyof typeof RetryOn;

/** How an attempt failed without a response. */
export type AttemptFailure = 'connect-failure' | 'reset' | 'timeout' | 'refused-stream';

/** A compiled retry policy. */
export interface CompiledRetryPolicy {
  readonly numRetries: number;
  readonly perTryTimeoutMs: number;
  readonly on: number;
  readonly statusCodes: readonly number[];
  /** retry_host_predicate previous_hosts: pick another endpoint when one is available. */
  readonly otherHost: boolean;
  readonly hostSelectionMaxAttempts: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
}

/** Checks a retryOn string (Istio's comma list of conditions and bare status codes). */
export function validateRetryOn(text: string): string | undefined {
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    if (/^\d+$/.test(item)) {
      const code = Number(item);
      if (code < 100 || code > 599) return `"${item}" is not an HTTP status code`;
    } else if (!(item in RetryOn)) {
      return `unknown retry condition "${item}" (expected one of ${Object.keys(RetryOn).join(', ')} or a status code)`;
    }
  }
  return undefined;
}

/** Compiles an Envoy RetryPolicy; undefined means no retries. */
export function compileRetryPolicy(policy: RetryPolicy | undefined): CompiledRetryPolicy | undefined {
  if (!policy) return undefined;
  const numRetries = policy.num_retries?.value ?? 1;
  if (numRetries <= 0) return undefined;
  let on = 0;
  for (const raw of (policy.retry_on ?? '').split(',')) {
    const bit = RetryOn[raw.trim() as RetryCondition];
    if (bit) on |= bit;
  }
  const base = protoToMs(policy.retry_back_off?.base_interval) ?? 25;
  return {
    numRetries,
    perTryTimeoutMs: protoToMs(policy.per_try_timeout) ?? 0,
    on,
    statusCodes: (policy.retriable_status_codes ?? []).map(Number),
    otherHost: (policy.retry_host_predicate ?? []).some((p) => p.name.includes('previous_hosts')),
    hostSelectionMaxAttempts: Number(policy.host_selection_retry_max_attempts ?? 1),
    backoffBaseMs: base,
    backoffMaxMs: protoToMs(policy.retry_back_off?.max_interval) ?? base * 10,
  };
}

/** Whether a response with this status (and gRPC status, if any) should be retried. */
export function retriableResponse(policy: CompiledRetryPolicy, status: number, grpcStatus?: number): boolean {
  const on = policy.on;
  if (on & RetryOn['5xx'] && status >= 500) return true;
  if (on & RetryOn['gateway-error'] && status >= 502 && status <= 504) return true;
  if (on & RetryOn['retriable-4xx'] && status === 409) return true;
  if (on & RetryOn['envoy-ratelimited'] && status === 429) return false; // only Envoy's own RL replies; none from upstream
  if (on & RetryOn['retriable-status-codes'] && policy.statusCodes.includes(status)) return true;
  if (grpcStatus !== undefined) {
    if (on & RetryOn.cancelled && grpcStatus === 1) return true;
    if (on & RetryOn['deadline-exceeded'] && grpcStatus === 4) return true;
    if (on & RetryOn['resource-exhausted'] && grpcStatus === 8) return true;
    if (on & RetryOn.internal && grpcStatus === 13) return true;
    if (on & RetryOn.unavailable && grpcStatus === 14) return true;
  }
  return false;
}

/**
 * Whether an attempt that got no response should be retried. A per-try timeout
 * counts as a 504 (5xx, gateway-error) and as a reset, as in Envoy's router.
 * For a gRPC call (`grpc`), a per-try timeout is also a DEADLINE_EXCEEDED and a
 * connect failure an UNAVAILABLE, retried under those gRPC conditions.
 */
export function retriableFailure(policy: CompiledRetryPolicy, failure: AttemptFailure, grpc = false): boolean {
  if (httpRetriableFailure(policy.on, failure)) return true;
  if (!grpc) return false;
  if (failure === 'timeout') return (policy.on & RetryOn['deadline-exceeded']) !== 0;
  return failure === 'connect-failure' && retriableResponse(policy, 200, 14 /* UNAVAILABLE */);
}

function httpRetriableFailure(on: number, failure: AttemptFailure): boolean {
  switch (failure) {
    case 'connect-failure':
      return (on & (RetryOn['connect-failure'] | RetryOn['5xx'] | RetryOn['gateway-error'] | RetryOn.reset | RetryOn['reset-before-request'])) !== 0;
    case 'refused-stream':
      return (on & (RetryOn['refused-stream'] | RetryOn['5xx'] | RetryOn.reset)) !== 0;
    case 'reset':
      return (on & (RetryOn.reset | RetryOn['5xx'] | RetryOn['gateway-error'])) !== 0;
    case 'timeout':
      return (on & (RetryOn.reset | RetryOn['5xx'] | RetryOn['gateway-error'])) !== 0;
  }
}

/**
 * Envoy's fully jittered exponential back-off: a random delay in
 * [0, base × (2^retry − 1)], capped at the maximum interval.
 */
export function backoffDelay(policy: CompiledRetryPolicy, retryNumber: number, random: RandomSource): number {
  const ceiling = Math.min(policy.backoffBaseMs * (2 ** retryNumber - 1), policy.backoffMaxMs);
  return Math.floor(random() * (ceiling + 1));
}
