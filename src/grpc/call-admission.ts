/**
 * Envoy's filter chain in front of the router for a gRPC call: a fault abort,
 * the local rate limit, then the cluster's max_requests (HTTP/2 streams). The
 * first that refuses the call decides the local reply.
 */
import { status as Status } from '@grpc/grpc-js';
import type { CompiledCluster } from '../core/cluster.js';
import type { FaultDecision } from '../core/fault.js';
import type { CompiledVirtualHost } from '../core/snapshot.js';
import { RateLimitOutcome } from '../core/token-bucket.js';
import type { ResponseFlag } from '../errors.js';
import { grpcStatusForHttp } from './status.js';

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
