/**
 * The one request state machine (Envoy's router filter and the filters in
 * front of it), for HTTP and gRPC alike. In order: fault delay and abort,
 * local then global rate limit (router-filters.ts), the cluster's admission
 * (an HTTP/1.1 pending queue or HTTP/2 max_requests), the route timeout, then
 * tries on endpoints picked by the cluster's load balancer (avoiding the
 * previous host when the policy says so) under the per-try timeout, retried
 * per `retry_on` within `num_retries` and the cluster's retry budget after a
 * jittered back-off, with outlier-detection reporting, mirroring, response
 * flags and local replies.
 *
 * A transport adapter extends {@link RouterSession} and implements its
 * {@link RouterTransport} members; it moves bytes and reports what its
 * attempts see ({@link attemptResponse}, {@link commitAttempt},
 * {@link attemptEnd}, {@link attemptFailed}). Both timeouts run on the mesh's
 * {@link Deadlines} queues with module-level callbacks, and the session is the
 * adapter's request object, so a request allocates nothing for the router.
 */
import type { PendingRequest } from './circuit-breaker.js';
import type { CompiledCluster } from './cluster.js';
import { cancelDeadline, type Deadline, type Deadlines } from './deadlines.js';
import { NO_FAULT, type FaultDecision } from './fault.js';
import { GrpcCode, grpcToHttp, grpcStatusName } from './grpc-status.js';
import type { Host } from './load-balancer.js';
import type { MirrorPolicy } from './mirror.js';
import { backoffDelay, retriableFailure, retriableResponse, type AttemptFailure } from './retry.js';
import type { RouterAttempt } from './router-attempt.js';
import { failureReply, routeTimeoutError, runFilters } from './router-filters.js';
import { pickClusterIndex, type CompiledRoute, type HeaderMutation } from './route.js';
import type { CompiledVirtualHost, Snapshot } from './snapshot.js';
import type { ResponseFlag } from '../errors.js';
import { reportedResponseFlags } from './response-flags.js';
import { cookieValueFrom, requestHash, type HashInputs } from './hash-policy.js';
import { backoffOver, perTryTimedOut, routeTimedOut } from './router-timers.js';

export { DONE, FORWARDING, PENDING, Verdict, type GlobalLimitDecision, type RouterContext, type RouterTracer, type RouterTransport } from './router-transport.js';
import { DONE, FORWARDING, PENDING, Verdict, type RouterContext, type RouterTransport } from './router-transport.js';

/** How the request holds its cluster's circuit breaker: not yet, an HTTP/1.1 connection slot, or an HTTP/2 request. */
const enum Admitted { None, Http1, Stream }

/** One request through the router; adapters extend it. */
export abstract class RouterSession implements PendingRequest, RouterTransport, HashInputs {
  /** PENDING (filters, admission, tries), FORWARDING (committed to a try's response), DONE. */
  state: number = PENDING;
  /** @internal Set by the cluster's circuit breaker while the request waits in the pending queue. */
  queued = false;
  vhost: CompiledVirtualHost | undefined = undefined;
  route: CompiledRoute | undefined = undefined;
  clusterIndex = 0;
  cluster: CompiledCluster | undefined = undefined;
  /** the current try (undefined between tries) */
  attempt: RouterAttempt | undefined = undefined;
  retryNumber = 0;
  /** false once the request cannot be replayed (a streamed body, a full replay buffer, the caller's deadline passed) */
  replayable = true;
  /** the status the caller sees: the upstream's once committed, or a local reply's */
  status = 0;
  /** the gRPC status of a local reply, or the upstream's when the adapter reads it */
  grpcStatus = 0;
  /** the response flag to report (`DI` on a forwarded response, a local reply's, `DC`) */
  flags: ResponseFlag | undefined = undefined;
  /**
   * Flags Envoy also sets that the caller's flag does not show: the
   * upstream failure behind a `URX` reply (`UF`, `UC`), `URX` on a forwarded
   * response whose retries ran out, `UO` when the retry budget refused.
   */
  private moreFlags: ResponseFlag[] | undefined = undefined;
  /** the request's span, for the session's span events (undefined: not traced) */
  span: object | undefined = undefined;
  private retriesLeft = 0;
  private lastHost: Host | undefined = undefined;
  /** @internal the fault filter's decision, read by router-filters */
  fault: FaultDecision = NO_FAULT;
  /** @internal fault delay */
  delay: Deadline | undefined = undefined;
  private routeDeadline: Deadline | undefined = undefined;
  private backoff: NodeJS.Timeout | undefined = undefined;
  private admitted: Admitted = Admitted.None;
  private retryHeld = false;
  /** the route hash policy's value for a hashing cluster: computed on the first pick (null: no policy hashed), kept for retries */
  private hash: bigint | null | undefined = undefined;
  /** Set-Cookie values a cookie hash policy generated; the adapter adds them to the upstream response */
  setCookies: readonly string[] | undefined = undefined;
  /** response headers a filter sets on the upstream response (CORS), after the route's */
  responseHeaders: HeaderMutation | undefined = undefined;

  constructor(
    readonly router: RouterContext,
    /** the snapshot the request started with; it finishes on it even if config changes */
    readonly snapshot: Snapshot,
    /** HTTP/1.1 upstreams: admission through the pending queue (else HTTP/2 max_requests) */
    private readonly pendingQueue: boolean,
    /** gRPC semantics: gRPC statuses feed retries and outlier detection, grpc_status aborts apply */
    readonly grpc: boolean,
  ) {}

  abstract requestHeader(name: string): string | undefined;
  /** Whether the caller set a deadline (gRPC's grpc-timeout), which picks the route's gRPC timeout. */
  hasCallerDeadline(): boolean {
    return this.requestHeader('grpc-timeout') !== undefined;
  }
  abstract createAttempt(host: Host, retryNumber: number): RouterAttempt | Error;
  abstract sendAttempt(attempt: RouterAttempt): void;
  abstract cancelAttempt(attempt: RouterAttempt, reason: string): void;
  abstract sendLocalReply(flag: ResponseFlag | undefined, httpStatus: number, grpcStatus: number, message: string, headers: Record<string, string> | undefined): void;
  abstract failDownstream(error: Error): void;
  abstract mirror(policy: MirrorPolicy): void;
  abstract ended(error: Error | undefined): void;

  /**
   * The downstream peer's IP for a `source_ip` hash policy: the mesh's own
   * address for an app's outbound call (as a sidecar sees the pod's IP), the
   * client's for a gateway. Adapters override it.
   */
  downstreamAddress(): string | undefined {
    return this.router.sourceAddress;
  }

  /** A generated hash cookie's value: random per request (Envoy hashes the downstream connection's addresses). */
  newCookieValue(): string {
    const r = this.router.random;
    return cookieValueFrom(`${r()}:${r()}`);
  }

  /** Takes the matched route and draws its destination cluster by weight. */
  protected selectRoute(vhost: CompiledVirtualHost, route: CompiledRoute): void {
    this.vhost = vhost;
    this.route = route;
    this.retriesLeft = route.retry?.numRetries ?? 0;
    this.clusterIndex = pickClusterIndex(route, this.router.random);
    this.cluster = this.snapshot.clusters.get(route.clusters[this.clusterIndex]!);
  }

  /** Whether a try may still be retried: retries left on the route (a transport buffers for replay only then). */
  get mayRetry(): boolean {
    return this.retriesLeft > 0;
  }

  /** Runs the filter chain, then the router. Call once, after {@link selectRoute}. */
  protected run(): void {
    runFilters(this);
  }

  /** @internal The filters let the request through: admission, the route timeout, then the first try. */
  admit(): void {
    const cluster = this.cluster;
    // Gateway API routes answer an unresolved backend with 500 (cluster_not_found_response_code).
    if (cluster === undefined) return this.localReply('NC', this.route!.clusterNotFoundStatus, this.route!.clusterNotFoundStatus === 500 ? GrpcCode.INTERNAL : GrpcCode.UNAVAILABLE, `no cluster: "${this.route!.clusters[this.clusterIndex]}" is not known (its Cluster or ClusterLoadAssignment never arrived, or it does not exist)`);
    let active = true;
    if (this.pendingQueue) {
      const admission = cluster.breaker.admitHttp1(this);
      if (admission === undefined) return this.overflow();
      this.admitted = Admitted.Http1;
      active = admission === 'active';
    } else {
      if (!cluster.breaker.tryAcquireRequest()) return this.overflow();
      this.admitted = Admitted.Stream;
    }
    // The route timeout covers the wait in the pending queue, as Envoy's does.
    const route = this.route!;
    const timeoutMs = !this.grpc ? route.timeoutMs : this.hasCallerDeadline() ? route.grpcTimeoutMs : route.grpcNoDeadlineTimeoutMs;
    if (timeoutMs > 0) this.routeDeadline = this.router.deadlines.arm(timeoutMs, routeTimedOut, this);
    if (active) this.forward();
  }

  private overflow(): void {
    this.localReply('UO', 503, GrpcCode.UNAVAILABLE, 'upstream connect error or disconnect/reset before headers. reset reason: overflow');
  }

  /** @internal The pending queue let this request through (another request released its connection). */
  onAdmitted(): void {
    if (this.state === PENDING) this.forward();
  }

  /** Mirrors, then the first try. */
  private forward(): void {
    const mirrors = this.route!.mirrors;
    for (let i = 0; i < mirrors.length; i++) {
      const m = mirrors[i]!;
      if (m.probability >= 1 || this.router.random() < m.probability) this.mirror(m);
    }
    this.nextAttempt();
  }

  private nextAttempt(): void {
    if (this.state !== PENDING) return;
    const retry = this.route!.retry;
    const cluster = this.cluster!;
    if (cluster.lb.hashed === true && this.hash === undefined) {
      const policies = this.route!.hashPolicies;
      const h = policies.length > 0 ? requestHash(policies, this) : undefined;
      this.hash = h?.hash ?? null;
      this.setCookies = h?.setCookies;
    }
    const host = cluster.pick(retry?.otherHost ? this.lastHost : undefined, this.hash ?? undefined);
    if (host === undefined) return this.localReply('UH', 503, GrpcCode.UNAVAILABLE, 'no healthy upstream');
    this.lastHost = host;
    const attempt = this.createAttempt(host, this.retryNumber);
    if (attempt instanceof Error) {
      const closed = (attempt as { code?: string }).code === 'MESH_CLOSED';
      return this.localReply(closed ? 'NC' : 'UF', 503, GrpcCode.UNAVAILABLE, closed ? attempt.message : `upstream connect error: ${attempt.message}`);
    }
    // Current before it is sent: a transport may report a failure synchronously.
    this.attempt = attempt;
    const perTry = retry?.perTryTimeoutMs ?? 0;
    if (perTry > 0) attempt.deadline = this.router.deadlines.arm(perTry, perTryTimedOut, attempt);
    this.sendAttempt(attempt);
  }

  /**
   * A try's response headers (or a gRPC trailers-only status): outlier
   * detection sees the status (gRPC: Envoy's HTTP mapping of it), then the
   * session commits to the try or retries it.
   */
  attemptResponse(attempt: RouterAttempt, status: number, grpcStatus: number | undefined): Verdict {
    if (attempt !== this.attempt || this.state !== PENDING) return Verdict.DROP;
    attempt.status = status;
    attempt.grpcStatus = grpcStatus;
    this.cluster!.outlier?.putHttpStatus(attempt.host.id, this.grpc && grpcStatus !== undefined ? grpcToHttp(grpcStatus) : status);
    const retry = this.route!.retry;
    if (retry !== undefined && this.replayable && retriableResponse(retry, status, grpcStatus)) {
      if (this.retriesLeft > 0 && this.retryBudget()) {
        attempt.discard = true;
        return Verdict.RETRY;
      }
      // Envoy's router: a retriable response past the limit is URX, past the retry budget UO.
      this.noteFlag(this.retriesLeft > 0 ? 'UO' : 'URX');
    }
    this.commit(attempt, status);
    return Verdict.COMMIT;
  }

  /**
   * Commits to a try whose response starts streaming before its status is
   * known (a gRPC response message); outlier detection hears from {@link attemptEnd}.
   * @returns false when the try is stale.
   */
  commitAttempt(attempt: RouterAttempt): boolean {
    if (attempt !== this.attempt || this.state !== PENDING) return false;
    this.commit(attempt, 200);
    return true;
  }

  private commit(attempt: RouterAttempt, status: number): void {
    cancelDeadline(attempt.deadline);
    this.state = FORWARDING;
    this.status = status;
  }

  /**
   * A try's response ended (`grpcStatus`: the final gRPC status of a response
   * committed by {@link commitAttempt}). Retries a drained try.
   * @returns true when the adapter should complete the response downstream.
   */
  attemptEnd(attempt: RouterAttempt, grpcStatus?: number): boolean {
    attempt.release();
    if (attempt !== this.attempt || attempt.abandoned || this.state === DONE) return false;
    if (attempt.discard) {
      this.retryAfterBackoff(attempt.grpcStatus !== undefined && this.grpc ? grpcStatusName(attempt.grpcStatus) : String(attempt.status));
      return false;
    }
    if (grpcStatus !== undefined && attempt.status === 0) {
      attempt.grpcStatus = grpcStatus;
      this.cluster!.outlier?.putHttpStatus(attempt.host.id, grpcToHttp(grpcStatus));
    }
    this.finish(undefined);
    return true;
  }

  /** A try failed without a (complete) response: connect failure, reset, or its per-try timeout. */
  attemptFailed(attempt: RouterAttempt, failure: AttemptFailure, error: Error | undefined): void {
    attempt.release();
    if (attempt !== this.attempt || this.state === DONE || (attempt.abandoned && !attempt.timedOut)) return;
    if (this.state === FORWARDING) {
      const err = error ?? new Error('upstream reset');
      this.finish(err);
      this.failDownstream(err);
      return;
    }
    this.cluster!.outlier?.putLocalOrigin(attempt.host.id, failure === 'connect-failure' ? 'connect_failed' : failure === 'timeout' ? 'timeout' : 'reset');
    const retry = this.route!.retry;
    const retriable = retry !== undefined && this.replayable && retriableFailure(retry, failure, this.grpc);
    if (retriable && this.retriesLeft > 0 && this.retryBudget()) {
      return this.retryAfterBackoff(failure === 'timeout' && this.grpc ? 'per-try-timeout' : failure);
    }
    // Envoy sets the failure's own flag on every upstream reset, then URX (or UO) when it may not retry.
    if (failure === 'connect-failure') this.noteFlag('UF');
    else if (failure === 'reset') this.noteFlag('UC');
    if (retriable) this.noteFlag(this.retriesLeft > 0 ? 'UO' : 'URX');
    const reply = failureReply(failure, this.retryNumber > 0, error);
    this.localReply(reply.flag, reply.status, reply.grpcStatus, reply.message);
  }

  /** Takes a slot of the cluster's retry budget (max_retries or retry_budget) for this request's retries. */
  private retryBudget(): boolean {
    if (this.retryHeld) return true;
    this.retryHeld = this.cluster!.breaker.tryAcquireRetry();
    return this.retryHeld;
  }

  private retryAfterBackoff(reason: string): void {
    this.retriesLeft--;
    this.retryNumber++;
    if (this.span !== undefined) this.router.tracer?.retrying(this.span, this.retryNumber, reason);
    const delay = backoffDelay(this.route!.retry!, this.retryNumber, this.router.random);
    this.attempt = undefined;
    if (delay <= 0) return this.nextAttempt();
    this.backoff = setTimeout(backoffOver, delay, this);
  }

  /** @internal */
  onBackoffOver(): void {
    this.backoff = undefined;
    this.nextAttempt();
  }

  /** @internal */
  onPerTryTimeout(attempt: RouterAttempt): void {
    if (attempt !== this.attempt || this.state !== PENDING) return;
    attempt.timedOut = true;
    this.abandon(attempt, 'per-try timeout');
    this.attemptFailed(attempt, 'timeout', undefined);
  }

  /** @internal */
  onRouteTimeout(): void {
    this.routeDeadline = undefined;
    if (this.state === DONE) return;
    const attempt = this.attempt;
    // Envoy reports a route timeout to outlier detection as a local-origin timeout (a gateway error).
    if (attempt !== undefined) this.cluster!.outlier?.putLocalOrigin(attempt.host.id, 'timeout');
    if (this.state === PENDING) return this.localReply('UT', 504, GrpcCode.DEADLINE_EXCEEDED, 'upstream request timeout');
    const err = routeTimeoutError();
    this.flags = 'UT';
    if (attempt !== undefined) this.abandon(attempt, 'route timeout');
    this.finish(err);
    this.failDownstream(err);
  }

  /**
   * The caller cancelled (abort signal, stream destroyed, grpc cancel): flag
   * `DC`, stop the try. The adapter tells its caller.
   * @returns false when the request had already ended.
   */
  cancel(error: Error | undefined): boolean {
    if (this.state === DONE) return false;
    this.flags = 'DC';
    this.finish(error);
    if (this.attempt !== undefined) this.abandon(this.attempt, 'cancelled');
    return true;
  }

  private noteFlag(flag: ResponseFlag): void {
    (this.moreFlags ??= []).push(flag);
  }

  /**
   * Istio's `response_flags` of this request: every flag Envoy would have
   * set, in Envoy's order (`UF,URX`), `-` for none. `flags` stays the one
   * flag of the local reply (`x-meshlet-flags`, MeshError.flag).
   */
  responseFlags(): string {
    return reportedResponseFlags(this.flags, this.moreFlags, this.fault.delayMs > 0);
  }

  /** Answers the caller from the mesh itself (the session ends first). */
  localReply(flag: ResponseFlag | undefined, status: number, grpcStatus: number, message: string, headers?: Record<string, string>): void {
    if (this.state === DONE) return;
    this.status = status;
    this.grpcStatus = grpcStatus;
    if (flag !== undefined) this.flags = flag;
    this.finish(undefined);
    if (this.attempt !== undefined) this.abandon(this.attempt, 'local reply');
    this.sendLocalReply(flag, status, grpcStatus, message, headers);
  }

  private abandon(attempt: RouterAttempt, reason: string): void {
    if (attempt.abandoned) return;
    attempt.abandoned = true;
    cancelDeadline(attempt.deadline);
    this.cancelAttempt(attempt, reason);
  }

  private finish(error: Error | undefined): void {
    this.state = DONE;
    cancelDeadline(this.delay);
    cancelDeadline(this.routeDeadline);
    if (this.backoff !== undefined) clearTimeout(this.backoff);
    this.delay = this.routeDeadline = this.backoff = undefined;
    if (this.admitted === Admitted.Http1) this.cluster!.breaker.releaseHttp1(this);
    else if (this.admitted === Admitted.Stream) this.cluster!.breaker.releaseRequest();
    this.admitted = Admitted.None;
    if (this.retryHeld) this.cluster!.breaker.releaseRetry();
    this.retryHeld = false;
    this.ended(error);
  }
}

