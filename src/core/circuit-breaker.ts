/**
 * Envoy's per-cluster resource manager (circuit breaking): counters for
 * connections, pending requests, requests and retries, each with a maximum.
 * A request that would overflow is answered at once with 503 flag `UO`; it
 * never waits in an unbounded queue. Compiled from
 * Cluster.circuit_breakers.thresholds (priority DEFAULT).
 */
import type { CircuitBreakerThresholds, Cluster } from '../config/envoy.js';

/** Thresholds with the fields envoy.ts does not list yet. */
export interface CircuitBreakerThresholdsV3 extends CircuitBreakerThresholds {
  track_remaining?: boolean;
  retry_budget?: { budget_percent?: { value: number }; min_retry_concurrency?: { value: number } };
}

/** Compiled thresholds of the DEFAULT priority. */
export interface CircuitBreakerPolicy {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
  /** Retry budget: when set, replaces maxRetries with budgetPercent × (active + pending requests), at least minRetryConcurrency. */
  readonly retryBudget: { readonly budgetPercent: number; readonly minRetryConcurrency: number } | undefined;
}

/** Envoy's defaults: 1024 connections, pending and requests, 3 retries. */
export const DEFAULT_CIRCUIT_BREAKERS: CircuitBreakerPolicy = Object.freeze({
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
  retryBudget: undefined,
});

/** Compiles the DEFAULT-priority thresholds of a cluster (Envoy defaults for absent fields). */
export function compileCircuitBreakers(cluster: Pick<Cluster, 'circuit_breakers'>): CircuitBreakerPolicy {
  const all = (cluster.circuit_breakers?.thresholds ?? []) as CircuitBreakerThresholdsV3[];
  const t = all.find((x) => x.priority === undefined || x.priority === 'DEFAULT' || (x.priority as unknown) === 0);
  if (!t) return DEFAULT_CIRCUIT_BREAKERS;
  const d = DEFAULT_CIRCUIT_BREAKERS;
  const rb = t.retry_budget;
  return Object.freeze({
    maxConnections: t.max_connections ? Number(t.max_connections.value) : d.maxConnections,
    maxPendingRequests: t.max_pending_requests ? Number(t.max_pending_requests.value) : d.maxPendingRequests,
    maxRequests: t.max_requests ? Number(t.max_requests.value) : d.maxRequests,
    maxRetries: t.max_retries ? Number(t.max_retries.value) : d.maxRetries,
    retryBudget: rb
      ? Object.freeze({
          budgetPercent: rb.budget_percent ? Number(rb.budget_percent.value) : 20,
          minRetryConcurrency: rb.min_retry_concurrency ? Number(rb.min_retry_concurrency.value) : 3,
        })
      : undefined,
  });
}

/** A request that may wait in a cluster's pending queue ({@link CircuitBreaker.admitHttp1}). */
export interface PendingRequest {
  /** Set by the breaker while the request waits; read-only for the request. */
  queued: boolean;
  /** Called once, synchronously from another request's release, when the request may dispatch. */
  onAdmitted(): void;
}

/** One bounded counter (Envoy's ResourceImpl). */
export class ResourceLimit {
  /** Currently held. */
  count = 0;
  constructor(public max: number) {}
  /** Whether one more may be taken. */
  canCreate(): boolean {
    return this.count < this.max;
  }
  /** Remaining capacity (Envoy's remaining_* gauges with track_remaining). */
  remaining(): number {
    return Math.max(0, this.max - this.count);
  }
}

/** Gauges and overflow counters, named as Envoy's cluster stats. */
export interface CircuitBreakerStats {
  cx_open: number;
  rq_pending_open: number;
  rq_open: number;
  rq_retry_open: number;
  remaining_cx: number;
  remaining_pending: number;
  remaining_rq: number;
  remaining_retries: number;
  upstream_cx_overflow: number;
  upstream_rq_pending_overflow: number;
  upstream_rq_retry_overflow: number;
}

/**
 * The circuit breakers of one cluster. Every `tryAcquire…` that returns true
 * must be paired with exactly one `release…`.
 *
 * For an HTTP/1.1 pool (one request per connection) use {@link admitHttp1}:
 * a request is active when a connection slot is free, pending when all
 * `max_connections` are busy and `max_pending_requests` has room, and an
 * overflow otherwise. For HTTP/2 / gRPC, where requests are streams, use
 * {@link tryAcquireRequest}. Retries use {@link tryAcquireRetry}.
 */
export class CircuitBreaker {
  readonly policy: CircuitBreakerPolicy;
  readonly connections: ResourceLimit;
  readonly pendingRequests: ResourceLimit;
  readonly requests: ResourceLimit;
  readonly retries: ResourceLimit;
  /** The HTTP/1.1 pending queue (FIFO from queueHead; cancelled entries have `queued` false). */
  private queue: PendingRequest[] = [];
  private queueHead = 0;
  private cxOverflow = 0;
  private pendingOverflow = 0;
  private retryOverflow = 0;

  constructor(policy: CircuitBreakerPolicy = DEFAULT_CIRCUIT_BREAKERS) {
    this.policy = policy;
    this.connections = new ResourceLimit(policy.maxConnections);
    this.pendingRequests = new ResourceLimit(policy.maxPendingRequests);
    this.requests = new ResourceLimit(policy.maxRequests);
    this.retries = new ResourceLimit(policy.maxRetries);
  }

  /** Takes a connection slot; false (counted as upstream_cx_overflow) when max_connections is reached. */
  tryAcquireConnection(): boolean {
    if (!this.connections.canCreate()) {
      this.cxOverflow++;
      return false;
    }
    this.connections.count++;
    return true;
  }

  /** Gives a connection slot back. */
  releaseConnection(): void {
    if (this.connections.count > 0) this.connections.count--;
  }

  /** Takes a pending-request slot; false (upstream_rq_pending_overflow) when full. */
  tryAcquirePendingRequest(): boolean {
    if (!this.pendingRequests.canCreate()) {
      this.pendingOverflow++;
      return false;
    }
    this.pendingRequests.count++;
    return true;
  }

  /** Gives a pending-request slot back. */
  releasePendingRequest(): void {
    if (this.pendingRequests.count > 0) this.pendingRequests.count--;
  }

  /** Takes an active-request (stream) slot; false when max_requests is reached (Envoy counts it as upstream_rq_pending_overflow). */
  tryAcquireRequest(): boolean {
    if (!this.requests.canCreate()) {
      this.pendingOverflow++;
      return false;
    }
    this.requests.count++;
    return true;
  }

  /** Gives an active-request slot back. */
  releaseRequest(): void {
    if (this.requests.count > 0) this.requests.count--;
  }

  /**
   * Admits one request to an HTTP/1.1 pool whose connections are capped at
   * max_connections. Active requests are capped by max_connections and
   * max_requests; past that a request waits in a FIFO pending queue of at most
   * max_pending_requests (Envoy's pending requests), and past that it overflows.
   * A queued request is told by `waiter.onAdmitted()` when a slot frees.
   * @returns 'active' (dispatch now), 'pending' (wait for `onAdmitted`), or undefined for an overflow
   *   (answer 503 `UO`). Call {@link releaseHttp1} once when the request ends, whatever it returned.
   */
  admitHttp1(waiter: PendingRequest): 'active' | 'pending' | undefined {
    if (this.requests.count < this.activeCap() && this.pendingRequests.count === 0) {
      this.requests.count++;
      return 'active';
    }
    if (this.pendingRequests.canCreate()) {
      this.pendingRequests.count++;
      waiter.queued = true;
      this.queue.push(waiter);
      return 'pending';
    }
    this.pendingOverflow++;
    return undefined;
  }

  /**
   * A request admitted by {@link admitHttp1} ended. A queued one just leaves the
   * queue; an active one frees its slot for the oldest queued request, which is
   * admitted synchronously (its `onAdmitted` runs before this returns).
   */
  releaseHttp1(waiter: PendingRequest): void {
    if (waiter.queued) {
      waiter.queued = false;
      this.pendingRequests.count--;
      // Cancelled entries stay in the array until they reach its head; compact when they dominate.
      if (this.queue.length - this.queueHead > 2 * this.pendingRequests.count + 16) this.compactQueue();
      return;
    }
    if (this.requests.count > 0) this.requests.count--;
    const cap = this.activeCap();
    while (this.requests.count < cap && this.pendingRequests.count > 0) {
      const next = this.queue[this.queueHead]!;
      this.queue[this.queueHead++] = undefined as unknown as PendingRequest;
      if (!next.queued) continue;
      next.queued = false;
      this.pendingRequests.count--;
      this.requests.count++;
      next.onAdmitted();
    }
    if (this.queueHead === this.queue.length) this.queue.length = this.queueHead = 0;
  }

  private activeCap(): number {
    return Math.min(this.connections.max, this.requests.max);
  }

  private compactQueue(): void {
    const live: PendingRequest[] = [];
    for (let i = this.queueHead; i < this.queue.length; i++) if (this.queue[i]!.queued) live.push(this.queue[i]!);
    this.queue = live;
    this.queueHead = 0;
  }

  /** The current retry limit: max_retries, or the retry budget over active + pending requests. */
  retryLimit(): number {
    const budget = this.policy.retryBudget;
    if (!budget) return this.retries.max;
    const outstanding = this.requests.count + this.pendingRequests.count;
    return Math.max(budget.minRetryConcurrency, Math.floor((budget.budgetPercent / 100) * outstanding));
  }

  /** Takes a retry slot; false (upstream_rq_retry_overflow) when retries are exhausted: do not retry. */
  tryAcquireRetry(): boolean {
    if (this.retries.count >= this.retryLimit()) {
      this.retryOverflow++;
      return false;
    }
    this.retries.count++;
    return true;
  }

  /** Gives a retry slot back when the retried attempt ends. */
  releaseRetry(): void {
    if (this.retries.count > 0) this.retries.count--;
  }

  /** Envoy-named gauges and counters, for config dumps and metrics. */
  stats(): CircuitBreakerStats {
    return {
      cx_open: this.connections.canCreate() ? 0 : 1,
      rq_pending_open: this.pendingRequests.canCreate() ? 0 : 1,
      rq_open: this.requests.canCreate() ? 0 : 1,
      rq_retry_open: this.retries.count < this.retryLimit() ? 0 : 1,
      remaining_cx: this.connections.remaining(),
      remaining_pending: this.pendingRequests.remaining(),
      remaining_rq: this.requests.remaining(),
      remaining_retries: Math.max(0, this.retryLimit() - this.retries.count),
      upstream_cx_overflow: this.cxOverflow,
      upstream_rq_pending_overflow: this.pendingOverflow,
      upstream_rq_retry_overflow: this.retryOverflow,
    };
  }
}
