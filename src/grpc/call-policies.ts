/**
 * Envoy's decisions around a gRPC call, kept out of the call's state machine:
 * the filter chain in front of the router (a fault abort, the local rate
 * limit, then the cluster's max_requests — the first that refuses decides the
 * local reply) and how an attempt's outcome feeds outlier detection and retries.
 */
import { status as Status, type StatusObject } from '@grpc/grpc-js';
import type { CompiledCluster } from '../core/cluster.js';
import type { FaultDecision } from '../core/fault.js';
import type { Host } from '../core/load-balancer.js';
import { retriableFailure, retriableResponse, RetryOn, type CompiledRetryPolicy } from '../core/retry.js';
import type { CompiledVirtualHost } from '../core/snapshot.js';
import { RateLimitOutcome } from '../core/token-bucket.js';
import type { ResponseFlag } from '../errors.js';
import { grpcStatusForHttp, grpcToHttp, isConnectFailure } from './status.js';

export interface Refusal {
  readonly flag: ResponseFlag;
  readonly http: number;
  readonly code: number;
  readonly message: string;
}

/**
 * Why the call must not be sent, or undefined when it may. On success the call
 * holds a max_requests slot of the cluster's circuit breaker (release it when done).
 */
export function refuseCall(fault: FaultDecision, vhost: CompiledVirtualHost, cluster: CompiledCluster): Refusal | undefined {
  if (fault.abortHttpStatus !== undefined || fault.abortGrpcStatus !== undefined) {
    return { flag: 'FI', http: fault.abortHttpStatus ?? 200, code: fault.abortGrpcStatus ?? grpcStatusForHttp(fault.abortHttpStatus!), message: 'fault filter abort' };
  }
  const limiter = vhost.localLimiter;
  if (limiter !== undefined && limiter.check() === RateLimitOutcome.Limited) {
    // Envoy answers a rate-limited gRPC call with the HTTP→gRPC mapping of its status (429: UNAVAILABLE).
    return { flag: 'RL', http: limiter.policy.status, code: grpcStatusForHttp(limiter.policy.status), message: 'local_rate_limited' };
  }
  if (!cluster.breaker.tryAcquireRequest()) {
    return { flag: 'UO', http: 503, code: Status.UNAVAILABLE, message: 'upstream connect error or disconnect/reset before headers. reset reason: overflow' };
  }
  return undefined;
}

/**
 * Reports an attempt's outcome to the cluster's outlier detection (a per-try
 * timeout and a connect failure are local-origin results; a status counts as
 * the HTTP status Envoy derives from it) and tells whether it was a connect failure.
 */
export function reportAttempt(cluster: CompiledCluster, host: Host, status: StatusObject, timedOut: boolean, cancelledByMesh: boolean): boolean {
  const connectFailed = !timedOut && isConnectFailure(status.code, status.details);
  if (timedOut) cluster.outlier?.putLocalOrigin(host.id, 'timeout');
  else if (connectFailed) cluster.outlier?.putLocalOrigin(host.id, 'connect_failed');
  else if (!cancelledByMesh) cluster.outlier?.putHttpStatus(host.id, grpcToHttp(status.code));
  return connectFailed;
}

/** Whether a failed attempt may be retried under the route's retry_on. */
export function retriableAttempt(retry: CompiledRetryPolicy, code: number, timedOut: boolean, connectFailed: boolean): boolean {
  if (timedOut) return retriableFailure(retry, 'timeout') || (retry.on & RetryOn['deadline-exceeded']) !== 0;
  if (connectFailed) return retriableFailure(retry, 'connect-failure') || retriableResponse(retry, 200, code);
  return retriableResponse(retry, 200, code);
}
