/**
 * Envoy's HTTP fault filter (envoy.extensions.filters.http.fault.v3.HTTPFault):
 * a fixed delay and/or an abort, each applied to a percentage of requests.
 * Compiled once per route; `decideFault` is two random draws at most and
 * returns one of four preallocated decisions, so the hot path allocates nothing.
 *
 * Not supported (ignored at compile): header-controlled faults
 * (`header_abort`, `header_delay`), `headers` / `downstream_nodes` /
 * `upstream_cluster` matching, response rate limiting.
 */
import type { Any, FractionalPercent } from '../config/envoy.js';
import { TYPE_URL } from '../config/envoy.js';
import { MeshConfigError } from '../errors.js';
import { protoToMs, type ProtoDuration } from './duration.js';
import { fractionToProbability, sample } from './fractional-percent.js';
import type { RandomSource } from './random.js';

/** The HTTPFault fields meshlet reads, in proto-loader object form. */
export interface HTTPFault {
  delay?: { fixed_delay?: ProtoDuration; header_delay?: Record<string, never>; percentage?: FractionalPercent };
  abort?: { http_status?: number; grpc_status?: number; header_abort?: Record<string, never>; percentage?: FractionalPercent };
  max_active_faults?: { value: number };
}

/** What the request path does for one request. */
export interface FaultDecision {
  /** Milliseconds to wait before sending (0: no delay; flag `DI` when > 0). */
  readonly delayMs: number;
  /** Answer locally with this HTTP status instead of sending (flag `FI`). */
  readonly abortHttpStatus?: number;
  /** For gRPC callers: answer with this grpc-status (HTTP 200, trailers-only), flag `FI`. */
  readonly abortGrpcStatus?: number;
}

/** The shared "no fault" decision: compare with `===` or check the fields. */
export const NO_FAULT: FaultDecision = Object.freeze({ delayMs: 0 });

/** A compiled HTTPFault. */
export interface FaultPolicy {
  readonly delayMs: number;
  /** Probability in [0, 1] that the delay applies. */
  readonly delayProbability: number;
  readonly abortHttpStatus: number | undefined;
  readonly abortGrpcStatus: number | undefined;
  /** Probability in [0, 1] that the abort applies. */
  readonly abortProbability: number;
  /** Envoy's max_active_faults (undefined: unlimited); the caller counts active faults. */
  readonly maxActiveFaults: number | undefined;
  /** Preallocated outcomes, indexed by (delay ? 1 : 0) | (abort ? 2 : 0). */
  readonly outcomes: readonly [FaultDecision, FaultDecision, FaultDecision, FaultDecision];
}

const KIND = 'envoy.extensions.filters.http.fault.v3.HTTPFault';

/**
 * Compiles an `Any(HTTPFault)` (a route's `typed_per_filter_config
 * ['envoy.filters.http.fault']` or the listener filter's typed_config).
 * Returns undefined when nothing would ever be injected.
 * An absent `percentage` is 0%, as in Envoy (the Istio translator always writes it).
 * @throws MeshConfigError for a wrong type URL or an out-of-range status.
 */
export function compileFault(httpFault: Any | undefined, resource = ''): FaultPolicy | undefined {
  if (!httpFault) return undefined;
  if (httpFault['@type'] !== TYPE_URL.fault) {
    throw new MeshConfigError(KIND, resource, '@type', `expected ${TYPE_URL.fault}, got ${String(httpFault['@type'])}`);
  }
  const fault = httpFault as unknown as HTTPFault;
  let delayMs = 0;
  let delayProbability = 0;
  if (fault.delay && fault.delay.fixed_delay) {
    delayMs = protoToMs(fault.delay.fixed_delay) ?? 0;
    delayProbability = delayMs > 0 ? fractionToProbability(fault.delay.percentage, 0) : 0;
  }
  let abortHttpStatus: number | undefined;
  let abortGrpcStatus: number | undefined;
  let abortProbability = 0;
  if (fault.abort) {
    if (fault.abort.http_status !== undefined) {
      abortHttpStatus = Number(fault.abort.http_status);
      if (!(abortHttpStatus >= 200 && abortHttpStatus < 600)) {
        throw new MeshConfigError(KIND, resource, 'abort.http_status', `${abortHttpStatus} is not in [200, 600)`);
      }
    } else if (fault.abort.grpc_status !== undefined) {
      abortGrpcStatus = Number(fault.abort.grpc_status);
      if (!(abortGrpcStatus >= 0 && abortGrpcStatus <= 16)) {
        throw new MeshConfigError(KIND, resource, 'abort.grpc_status', `${abortGrpcStatus} is not a gRPC status code (0–16)`);
      }
    }
    if (abortHttpStatus !== undefined || abortGrpcStatus !== undefined) abortProbability = fractionToProbability(fault.abort.percentage, 0);
  }
  if (delayProbability === 0 && abortProbability === 0) return undefined;

  const abortOnly: FaultDecision = Object.freeze({ delayMs: 0, abortHttpStatus, abortGrpcStatus });
  const delayOnly: FaultDecision = Object.freeze({ delayMs });
  const both: FaultDecision = Object.freeze({ delayMs, abortHttpStatus, abortGrpcStatus });
  return Object.freeze({
    delayMs,
    delayProbability,
    abortHttpStatus,
    abortGrpcStatus,
    abortProbability,
    maxActiveFaults: fault.max_active_faults ? Number(fault.max_active_faults.value) : undefined,
    outcomes: [NO_FAULT, delayOnly, abortOnly, both] as const,
  });
}

/**
 * Draws the fault for one request: the delay first, then the abort, each
 * independently (Envoy applies the delay and then evaluates the abort).
 */
export function decideFault(policy: FaultPolicy | undefined, random: RandomSource): FaultDecision {
  if (!policy) return NO_FAULT;
  const delay = sample(policy.delayProbability, random) ? 1 : 0;
  const abort = sample(policy.abortProbability, random) ? 2 : 0;
  return policy.outcomes[delay | abort];
}

/**
 * The grpc-status a gRPC caller sees for an HTTP-status abort, per Envoy's
 * Grpc::Utility::httpToGrpcStatus (and the gRPC HTTP-to-status mapping).
 */
export function grpcStatusForHttp(httpStatus: number): number {
  switch (httpStatus) {
    case 400: return 13; // INTERNAL
    case 401: return 16; // UNAUTHENTICATED
    case 403: return 7; // PERMISSION_DENIED
    case 404: return 12; // UNIMPLEMENTED
    case 429: case 502: case 503: case 504: return 14; // UNAVAILABLE
    default: return 2; // UNKNOWN
  }
}
