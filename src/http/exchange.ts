/**
 * One outbound HTTP request through the mesh: Envoy's filter chain and router
 * in miniature. In order: fault injection, local then global rate limit, the
 * cluster's circuit breaker, then attempts on endpoints chosen by the
 * cluster's load balancer under the route timeout and per-try timeout, with
 * retries per the route's policy, outlier-detection reporting, mirroring and
 * telemetry around it all. The mesh answers with a local reply when it must.
 */
import type { Context } from '@opentelemetry/api';
import type { Dispatcher } from 'undici';
import type { PendingRequest } from '../core/circuit-breaker.js';
import type { CompiledCluster } from '../core/cluster.js';
import { cancelDeadline, type Deadline, type Deadlines } from '../core/deadlines.js';
import { decideFault, NO_FAULT, type FaultDecision } from '../core/fault.js';
import { descriptorsFor } from '../core/global-rate-limit.js';
import type { Host } from '../core/load-balancer.js';
import type { RandomSource } from '../core/random.js';
import { backoffDelay, retriableFailure, retriableResponse, type AttemptFailure } from '../core/retry.js';
import { pickClusterIndex, rewritePath, type CompiledRoute } from '../core/route.js';
import type { CompiledVirtualHost, Snapshot } from '../core/snapshot.js';
import { RateLimitOutcome } from '../core/token-bucket.js';
import type { ResponseFlag } from '../errors.js';
import type { HeaderSource } from '../telemetry/headers.js';
import type { OutboundCall, OutboundRetry, OutboundTargetHandle, TraceCarrier } from '../telemetry/outbound.js';
import type { MeshTelemetry } from '../telemetry/telemetry.js';
import { Attempt, grpcStatusOf, type AttemptOwner } from './attempt.js';
import { replayableBody, type ReplayableBody } from './body.js';
import type { LegacyHandler } from './handler.js';
import { getHeader, mutateRawHeaders, outboundHeaders, type RawHeaders } from './headers.js';
import { flagHeader, rawHeaders, sendLocalReply, type LocalReplyMode } from './local-reply.js';
import { takePeerMetadata } from './response-meta.js';

/** What an exchange needs from the mesh that runs it. */
export interface ExchangeContext {
  readonly random: RandomSource;
  readonly localReplies: LocalReplyMode;
  readonly telemetry: MeshTelemetry;
  /** Route and per-try timeouts. */
  readonly deadlines: Deadlines;
  /** The connection pool for an endpoint. */
  pool(host: Host, cluster: CompiledCluster): Dispatcher;
  /** The trace context outbound calls are children of (the inbound request's, if any). */
  parentContext(): Context;
  /** The telemetry handle of a route's destination cluster. */
  target(route: CompiledRoute, clusterIndex: number): OutboundTargetHandle;
  /** Asks the rate-limit service; resolves to true when the request is over limit. */
  overGlobalLimit(snapshot: Snapshot, vhost: CompiledVirtualHost, descriptors: Array<{ entries: Array<{ key: string; value: string }> }>): Promise<{ overLimit: boolean; headers?: Record<string, string> | undefined }>;
  /** Sends a fire-and-forget copy of the request to a mirror cluster. */
  mirror(snapshot: Snapshot, cluster: string, opts: Dispatcher.DispatchOptions, authority: string, shadowSuffix: boolean): void;
}

const PENDING = 0;
const FORWARDING = 1;
const DONE = 2;


export class Exchange implements AttemptOwner, PendingRequest {
  private state = PENDING;
  /** @internal Set by the cluster's circuit breaker while the request waits for a connection. */
  queued = false;
  private attempt: Attempt | undefined;
  private retriesLeft: number;
  private retryNumber = 0;
  private readonly clusterIndex: number;
  private readonly cluster: CompiledCluster | undefined;
  private timer: NodeJS.Timeout | undefined;
  private routeDeadline: Deadline | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private lastHost: Host | undefined;
  private readonly body: ReplayableBody;
  private attemptOptions: Dispatcher.DispatchOptions | undefined;
  private admitted = false;
  private retryHeld = false;
  private fault: FaultDecision = NO_FAULT;
  private call: OutboundCall | undefined;
  private status = 0;
  private responseBytes = 0;
  private peerMetadata: string | undefined;
  /** a flag to report on a response that otherwise went through (DI) */
  private flags: ResponseFlag | undefined;

  constructor(
    private readonly ctx: ExchangeContext,
    readonly snapshot: Snapshot,
    private readonly vhost: CompiledVirtualHost,
    readonly route: CompiledRoute,
    private readonly opts: Dispatcher.DispatchOptions,
    readonly handler: LegacyHandler,
    private readonly authority: string,
    private readonly path: string,
    /** host and port of the authority, for telemetry */
    private readonly server: { readonly host: string; readonly port: number; readonly servername?: string | undefined },
  ) {
    this.retriesLeft = route.retry?.numRetries ?? 0;
    this.body = replayableBody(opts.body);
    this.clusterIndex = pickClusterIndex(route, ctx.random);
    this.cluster = snapshot.clusters.get(route.clusters[this.clusterIndex]!);
  }

  /** Starts the exchange: tells the caller it is connected, then runs the filter chain. */
  start(): void {
    this.handler.onConnect?.((reason) => this.abort(reason));
    if (this.state === DONE) return;
    this.call = this.ctx.telemetry.outbound.start(this.ctx.parentContext(), this.ctx.target(this.route, this.clusterIndex), {
      method: this.opts.method, url: `http://${this.authority}${this.opts.path}`, serverAddress: this.server.host, serverPort: this.server.port,
      headers: this.opts.headers as HeaderSource | undefined,
    });
    this.fault = decideFault(this.route.fault, this.ctx.random);
    if (this.fault.delayMs > 0) {
      this.flags = 'DI';
      this.ctx.telemetry.tracer.faultDelay(this.call.span, this.fault.delayMs);
      this.timer = setTimeout(() => this.afterFaultDelay(), this.fault.delayMs);
    } else {
      this.afterFaultDelay();
    }
  }

  private afterFaultDelay(): void {
    this.timer = undefined;
    if (this.state !== PENDING) return;
    if (this.fault.abortHttpStatus !== undefined) {
      this.ctx.telemetry.tracer.faultAbort(this.call!.span, this.fault.abortHttpStatus);
      return this.localReply('FI', this.fault.abortHttpStatus, 'fault filter abort');
    }
    const limiter = this.vhost.localLimiter;
    if (limiter && limiter.check() === RateLimitOutcome.Limited) {
      this.ctx.telemetry.tracer.rateLimited(this.call!.span, 'local', this.vhost.name);
      return this.localReply('RL', limiter.policy.status, 'local_rate_limited', limiter.xRateLimitHeaders());
    }
    const global = this.vhost.globalLimit;
    if (!global) return this.route_();
    const descriptors = descriptorsFor(global, (name) => this.requestHeader(name), () => this.remoteAddress());
    if (descriptors.length === 0) return this.route_();
    this.ctx.overGlobalLimit(this.snapshot, this.vhost, descriptors).then(({ overLimit, headers }) => {
      if (this.state !== PENDING) return;
      if (!overLimit) return this.route_();
      this.ctx.telemetry.tracer.rateLimited(this.call!.span, 'global', global.domain);
      this.localReply('RL', 429, 'rate limited', { 'x-envoy-ratelimited': 'true', ...headers });
    }, () => this.route_());
  }

  /** A request header for rate-limit actions, pseudo-headers included (`:path` with its query, as Envoy). */
  private requestHeader(name: string): string | undefined {
    if (name.charCodeAt(0) !== 58 /* : */) return getHeader(this.opts.headers as RawHeaders, name);
    switch (name) {
      case ':path': return this.opts.path;
      case ':method': return this.opts.method;
      case ':authority': return this.authority;
      default: return undefined;
    }
  }

  /** The downstream caller's address: the first x-forwarded-for hop (the gateway sets it). */
  private remoteAddress(): string | undefined {
    const xff = getHeader(this.opts.headers as RawHeaders, 'x-forwarded-for');
    return xff === undefined ? undefined : xff.split(',')[0]!.trim();
  }

  /** The router: admission (the connection pool's pending queue), route timeout, then {@link forward}. */
  private route_(): void {
    const cluster = this.cluster;
    if (!cluster) return this.localReply('NC', 503, `no cluster: "${this.route.clusters[this.clusterIndex]}" is not known (its Cluster or ClusterLoadAssignment never arrived, or it does not exist)`);
    const admission = cluster.breaker.admitHttp1(this);
    if (admission === undefined) return this.localReply('UO', 503, 'upstream connect error or disconnect/reset before headers. reset reason: overflow');
    this.admitted = true;
    // The route timeout covers the wait in the pending queue, as Envoy's does.
    if (this.route.timeoutMs > 0) this.routeDeadline = this.ctx.deadlines.arm(this.route.timeoutMs, routeTimedOut, this);
    if (admission === 'active') this.forward();
  }

  /** @internal The pending queue let this request through (another request released its connection). */
  onAdmitted(): void {
    if (this.state === PENDING) this.forward();
  }

  /** Mirrors, then the first attempt. */
  private forward(): void {
    for (const m of this.route.mirrors) {
      if (m.probability >= 1 || this.ctx.random() < m.probability) this.ctx.mirror(this.snapshot, m.cluster, this.optionsForAttempt(), this.authority, m.shadowSuffix);
    }
    this.sendAttempt();
  }

  private sendAttempt(): void {
    const cluster = this.cluster!;
    const retry = this.route.retry;
    const host = cluster.pick(retry?.otherHost ? this.lastHost : undefined);
    if (!host) return this.localReply('UH', 503, 'no healthy upstream');
    const attempt = new Attempt(this, host);
    this.attempt = attempt;
    this.lastHost = host;
    if (this.retryNumber > 0) attempt.retry = this.ctx.telemetry.outbound.startRetry(this.call!, this.retryNumber);
    const perTry = retry?.perTryTimeoutMs ?? 0;
    if (perTry > 0) attempt.deadline = this.ctx.deadlines.arm(perTry, perTryTimedOut, attempt);
    this.ctx.pool(host, cluster).dispatch(this.optionsForAttempt(attempt.retry), attempt as unknown as Dispatcher.DispatchHandler);
  }

  /** The first try's options are built once; a retry copies them with a fresh body (and its own trace headers). */
  private optionsForAttempt(retrySpan?: OutboundRetry): Dispatcher.DispatchOptions {
    if (this.attemptOptions === undefined) {
      const route = this.route;
      // Object.assign, not spread-with-overrides: V8 makes the latter a slow path (~1 µs).
      const options: Dispatcher.DispatchOptions = Object.assign({}, this.opts);
      options.path = route.prefixRewrite !== undefined || route.regexRewrite ? rewriteWithQuery(route, this.path, this.opts.path) : this.opts.path;
      options.headers = this.upstreamHeaders(this.call!);
      // undici would derive it from the host header on every request (an isIP regex); the origin's is cached.
      if (route.hostRewrite === undefined && this.server.servername !== undefined) (options as { servername?: string }).servername = this.server.servername;
      options.body = this.body.next() as Dispatcher.DispatchOptions['body'];
      // maxRequestsPerConnection 1: no keep-alive (see http/pools.ts for why the pool cannot say it).
      if (this.cluster?.connectionPool.maxRequestsPerConnection === 1) options.reset = true;
      this.attemptOptions = options;
      return options;
    }
    const retry: Dispatcher.DispatchOptions = Object.assign({}, this.attemptOptions);
    retry.body = this.body.next() as Dispatcher.DispatchOptions['body'];
    if (retrySpan !== undefined) retry.headers = this.upstreamHeaders(retrySpan);
    return retry;
  }

  /** The caller's headers after the route's mutations, carrying the trace and our metadata exchange. */
  private upstreamHeaders(carrier: TraceCarrier): RawHeaders {
    const route = this.route;
    const headers = outboundHeaders(this.opts.headers as RawHeaders, route.hostRewrite ?? this.authority, [route.requestHeaders, route.clusterRequestHeaders[this.clusterIndex]!], undefined);
    this.ctx.telemetry.outbound.injectHeaders(carrier, headers);
    return headers;
  }

  /** Ends a retry's span (once) with the upstream's status or the error that ended the try. */
  private endRetrySpan(attempt: Attempt, error: unknown): void {
    const retry = attempt.retry;
    if (retry === undefined) return;
    attempt.retry = undefined;
    this.ctx.telemetry.outbound.finishRetry(retry, { statusCode: attempt.status > 0 ? attempt.status : undefined, error });
  }

  attemptHeaders(attempt: Attempt, status: number, raw: Buffer[], resume: () => void, text: string): boolean {
    attempt.status = status;
    if (attempt !== this.attempt || this.state !== PENDING) {
      attempt.abandon(new Error('stale attempt'));
      return false;
    }
    this.cluster!.outlier?.putHttpStatus(attempt.host.id, status);
    const retry = this.route.retry;
    if (retry && this.retriesLeft > 0 && this.body.replayable && retriableResponse(retry, status, grpcStatusOf(raw, retry.on)) && this.retryBudget()) {
      attempt.discard = true; // drain it, then retry on completion
      return true;
    }
    cancelDeadline(attempt.deadline);
    this.state = FORWARDING;
    this.status = status;
    const meta = takePeerMetadata(raw);
    this.peerMetadata = meta.value;
    const route = this.route;
    const headers = mutateRawHeaders(meta.headers, [route.responseHeaders, route.clusterResponseHeaders[this.clusterIndex]!], this.flags ? flagHeader(this.flags) : undefined);
    return this.handler.onHeaders?.(status, headers, resume, text) !== false;
  }

  attemptData(_attempt: Attempt, chunk: Buffer): boolean {
    this.responseBytes += chunk.length;
    return this.handler.onData?.(chunk) !== false;
  }

  attemptComplete(attempt: Attempt, trailers: Buffer[] | string[] | null): void {
    attempt.release();
    this.endRetrySpan(attempt, undefined);
    if (attempt !== this.attempt || attempt.abandoned || this.state === DONE) return;
    if (attempt.discard) return this.retryAfterBackoff(String(attempt.status));
    this.finish(undefined);
    this.handler.onComplete?.(trailers);
  }

  attemptError(attempt: Attempt, err: Error): void {
    attempt.release();
    this.endRetrySpan(attempt, err);
    if (attempt !== this.attempt || this.state === DONE || (attempt.abandoned && !attempt.timedOut)) return;
    if (this.state === FORWARDING) {
      this.finish(err);
      this.handler.onError(err);
      return;
    }
    const failure: AttemptFailure = attempt.failureOf(err);
    this.cluster!.outlier?.putLocalOrigin(attempt.host.id, failure === 'connect-failure' ? 'connect_failed' : failure === 'timeout' ? 'timeout' : 'reset');
    const retry = this.route.retry;
    if (retry && this.retriesLeft > 0 && this.body.replayable && retriableFailure(retry, failure) && this.retryBudget()) return this.retryAfterBackoff(failure);
    this.replyForFailure(failure, err);
  }

  private replyForFailure(failure: AttemptFailure, err: Error | undefined): void {
    const code = (err as { code?: string } | undefined)?.code;
    const detail = code ? ` (${code})` : '';
    switch (failure) {
      case 'timeout':
        return this.localReply('UT', 504, 'upstream request timeout');
      case 'connect-failure':
        return this.retryNumber > 0
          ? this.localReply('URX', 503, `upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection failure${detail}`)
          : this.localReply('UF', 503, `upstream connect error or disconnect/reset before headers. reset reason: connection failure${detail}`);
      default:
        return this.localReply(this.retryNumber > 0 ? 'URX' : 'UC', 503, `upstream connect error or disconnect/reset before headers. reset reason: connection termination${detail}`);
    }
  }

  /** Takes a slot of the cluster's retry budget (max_retries) for this request's retries. */
  private retryBudget(): boolean {
    if (this.retryHeld) return true;
    this.retryHeld = this.cluster!.breaker.tryAcquireRetry();
    return this.retryHeld;
  }

  private retryAfterBackoff(reason: string): void {
    this.retriesLeft--;
    this.retryNumber++;
    this.ctx.telemetry.tracer.retrying(this.call!.span, this.retryNumber, reason);
    const delay = backoffDelay(this.route.retry!, this.retryNumber, this.ctx.random);
    this.attempt = undefined;
    if (delay <= 0) return this.sendAttempt();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.state === PENDING) this.sendAttempt();
    }, delay);
  }

  /** @internal */
  onPerTryTimeout(attempt: Attempt): void {
    if (attempt !== this.attempt || this.state !== PENDING) return;
    attempt.timedOut = true;
    const connected = attempt.abortUpstream !== undefined;
    attempt.abandon(new Error('per-try timeout'));
    // undici reports an abort through onError only once the attempt was connected; decide now otherwise.
    if (!connected) this.attemptError(attempt, new Error('per-try timeout'));
  }

  /** @internal */
  onRouteTimeout(): void {
    this.routeDeadline = undefined;
    if (this.state === DONE) return;
    // Envoy reports a route timeout to outlier detection as a local-origin timeout (a gateway error).
    if (this.attempt) this.cluster!.outlier?.putLocalOrigin(this.attempt.host.id, 'timeout');
    if (this.state === FORWARDING) {
      this.attempt?.abandon(new Error('route timeout'));
      const err = Object.assign(new Error('upstream request timeout'), { code: 'MESH_TIMEOUT', flag: 'UT' });
      this.finish(err);
      this.handler.onError(err);
    } else {
      this.localReply('UT', 504, 'upstream request timeout');
    }
  }

  /** The caller aborted (signal, stream destroyed). */
  abort(reason: unknown): void {
    if (this.state === DONE) return;
    const err = reason instanceof Error ? reason : new Error(String(reason ?? 'aborted'));
    this.flags = 'DC';
    this.finish(err);
    this.attempt?.abandon(reason);
    this.handler.onError(err);
  }

  /** Answers the caller from the mesh itself. */
  private localReply(flag: ResponseFlag, status: number, message: string, headers?: Record<string, string>): void {
    if (this.state === DONE) return;
    this.status = status;
    this.flags = flag;
    this.finish(undefined);
    this.attempt?.abandon(new Error('local reply'));
    sendLocalReply(this.handler, this.ctx.localReplies, flag, status, message, headers && rawHeaders(headers));
  }

  private finish(error: Error | undefined): void {
    this.state = DONE;
    if (this.timer) clearTimeout(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    cancelDeadline(this.routeDeadline);
    this.timer = this.retryTimer = this.routeDeadline = undefined;
    if (this.admitted) this.cluster!.breaker.releaseHttp1(this);
    if (this.retryHeld) this.cluster!.breaker.releaseRetry();
    // A try the mesh gives up on (route timeout, local reply, caller abort) ends with the request.
    if (this.attempt !== undefined) this.endRetrySpan(this.attempt, error);
    if (this.call) {
      this.ctx.telemetry.outbound.finish(this.call, {
        statusCode: this.status, flags: this.flags ?? '-', responseBytes: this.responseBytes, peerMetadata: this.peerMetadata, error,
      });
    }
  }
}

function rewriteWithQuery(route: CompiledRoute, path: string, full: string): string {
  const rewritten = rewritePath(route, path);
  return full.length > path.length ? rewritten + full.slice(path.length) : rewritten;
}

// Module-level callbacks: arming a deadline allocates no closure.
function routeTimedOut(exchange: Exchange): void {
  exchange.onRouteTimeout();
}

function perTryTimedOut(attempt: Attempt): void {
  (attempt.owner as Exchange).onPerTryTimeout(attempt);
}
