/**
 * One outbound HTTP request through the mesh: Envoy's router filter in
 * miniature. It picks the destination cluster, sends attempts to endpoints
 * chosen by the cluster's load balancer, enforces the route timeout and the
 * per-try timeout, retries per the route's retry policy with jittered
 * back-off, and answers with a local reply when it has to.
 */
import type { Dispatcher } from 'undici';
import type { CompiledCluster } from '../core/cluster.js';
import type { Host } from '../core/load-balancer.js';
import type { RandomSource } from '../core/random.js';
import { backoffDelay, retriableFailure, retriableResponse, type AttemptFailure } from '../core/retry.js';
import { pickClusterIndex, rewritePath, type CompiledRoute } from '../core/route.js';
import type { Snapshot } from '../core/snapshot.js';
import type { ResponseFlag } from '../errors.js';
import { replayableBody, type ReplayableBody } from './body.js';
import type { LegacyHandler } from './handler.js';
import { mutateRawHeaders, outboundHeaders, type RawHeaders } from './headers.js';
import { flagHeader, sendLocalReply, type LocalReplyMode } from './local-reply.js';

/** What an exchange needs from the mesh that runs it. */
export interface ExchangeContext {
  readonly random: RandomSource;
  readonly localReplies: LocalReplyMode;
  /** The connection pool for an endpoint. */
  pool(host: Host, cluster: CompiledCluster): Dispatcher;
}

const PENDING = 0;
const FORWARDING = 1;
const DONE = 2;

const connectErrorCodes = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED', 'UND_ERR_CONNECT']);

class Attempt implements LegacyHandler {
  abortUpstream: ((reason?: unknown) => void) | undefined;
  /** the response is being drained because the exchange will retry */
  discard = false;
  /** the exchange has moved on; abort as soon as undici lets us */
  abandoned = false;
  timedOut = false;
  timer: NodeJS.Timeout | undefined;
  private released = false;

  constructor(readonly exchange: Exchange, readonly host: Host) {
    host.active++;
  }

  /** Gives the host's active-request slot back (once) and stops the per-try timer. */
  release(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.released) return;
    this.released = true;
    this.host.active--;
  }

  onConnect(abort: (reason?: unknown) => void): void {
    this.abortUpstream = abort;
    if (this.abandoned) abort(new Error('attempt abandoned'));
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void, text: string): boolean {
    return this.exchange.attemptHeaders(this, status, raw, resume, text);
  }

  onData(chunk: Buffer): boolean {
    if (this.discard || this.abandoned) return true;
    return this.exchange.handler.onData?.(chunk) !== false;
  }

  onComplete(trailers: Buffer[] | string[] | null): void {
    this.exchange.attemptComplete(this, trailers);
  }

  onError(err: Error): void {
    this.exchange.attemptError(this, err);
  }

  /** Stops this attempt whether or not undici has connected it yet. */
  abandon(reason: unknown): void {
    this.abandoned = true;
    if (this.timer) clearTimeout(this.timer);
    this.abortUpstream?.(reason);
  }
}

export class Exchange {
  private state = PENDING;
  private attempt: Attempt | undefined;
  private retriesLeft: number;
  private retryNumber = 0;
  private clusterIndex = 0;
  private cluster: CompiledCluster | undefined;
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private lastHost: Host | undefined;
  private body: ReplayableBody;
  private attemptOptions: Dispatcher.DispatchOptions | undefined;
  private lastFailure: AttemptFailure | undefined;
  /** flags to report on a response that otherwise went through (e.g. DI) */
  flags: ResponseFlag | undefined;

  constructor(
    private readonly ctx: ExchangeContext,
    readonly snapshot: Snapshot,
    readonly route: CompiledRoute,
    private readonly opts: Dispatcher.DispatchOptions,
    readonly handler: LegacyHandler,
    private readonly authority: string,
    private readonly path: string,
  ) {
    this.retriesLeft = route.retry?.numRetries ?? 0;
    this.body = replayableBody(opts.body);
  }

  /** Starts the exchange: tells the caller it is connected, arms the route timeout, sends. */
  start(): void {
    this.handler.onConnect?.((reason) => this.abort(reason));
    if (this.state === DONE) return;
    if (this.route.timeoutMs > 0) this.timer = setTimeout(() => this.onRouteTimeout(), this.route.timeoutMs);
    this.clusterIndex = pickClusterIndex(this.route, this.ctx.random);
    const name = this.route.clusters[this.clusterIndex]!;
    this.cluster = this.snapshot.clusters.get(name);
    if (!this.cluster) return this.localReply('NC', 503, `no cluster: the route's cluster "${name}" is not known`);
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
    const perTry = retry?.perTryTimeoutMs ?? 0;
    if (perTry > 0) attempt.timer = setTimeout(() => this.onPerTryTimeout(attempt), perTry);
    this.ctx.pool(host, cluster).dispatch(this.optionsForAttempt(), attempt as unknown as Dispatcher.DispatchHandler);
  }

  private optionsForAttempt(): Dispatcher.DispatchOptions {
    const first = this.attemptOptions === undefined;
    if (first) {
      const route = this.route;
      const mutations = [route.requestHeaders, route.clusterRequestHeaders[this.clusterIndex]!];
      const host = route.hostRewrite ?? this.authority;
      this.attemptOptions = {
        ...this.opts,
        path: route.prefixRewrite !== undefined || route.regexRewrite ? rewriteWithQuery(route, this.path, this.opts.path) : this.opts.path,
        headers: outboundHeaders(this.opts.headers as RawHeaders, host, mutations, undefined),
        body: this.body.next() as Dispatcher.DispatchOptions['body'],
      };
      return this.attemptOptions;
    }
    return { ...this.attemptOptions!, body: this.body.next() as Dispatcher.DispatchOptions['body'] };
  }

  /** Called by the current attempt when upstream response headers arrive. */
  attemptHeaders(attempt: Attempt, status: number, raw: Buffer[], resume: () => void, text: string): boolean {
    if (attempt !== this.attempt || this.state !== PENDING) {
      attempt.abandon(new Error('stale attempt'));
      return false;
    }
    const retry = this.route.retry;
    if (retry && this.retriesLeft > 0 && this.body.replayable && retriableResponse(retry, status, grpcStatusOf(raw, retry.on))) {
      attempt.discard = true; // drain it, then retry on completion
      return true;
    }
    if (attempt.timer) clearTimeout(attempt.timer);
    this.state = FORWARDING;
    const route = this.route;
    const headers = mutateRawHeaders(raw, [route.responseHeaders, route.clusterResponseHeaders[this.clusterIndex]!], this.flags ? flagHeader(this.flags) : undefined);
    return this.handler.onHeaders?.(status, headers, resume, text) !== false;
  }

  attemptComplete(attempt: Attempt, trailers: Buffer[] | string[] | null): void {
    attempt.release();
    if (attempt !== this.attempt || attempt.abandoned || this.state === DONE) return;
    if (attempt.discard) return this.retryAfterBackoff();
    this.finish();
    this.handler.onComplete?.(trailers);
  }

  attemptError(attempt: Attempt, err: Error): void {
    attempt.release();
    if (attempt !== this.attempt || this.state === DONE || (attempt.abandoned && !attempt.timedOut)) return;
    if (this.state === FORWARDING) {
      this.finish();
      this.handler.onError(err);
      return;
    }
    const failure: AttemptFailure = attempt.timedOut ? 'timeout' : isConnectError(err) ? 'connect-failure' : 'reset';
    this.lastFailure = failure;
    const retry = this.route.retry;
    if (retry && this.retriesLeft > 0 && this.body.replayable && retriableFailure(retry, failure)) return this.retryAfterBackoff();
    this.replyForFailure(failure, err);
  }

  private replyForFailure(failure: AttemptFailure, err: Error | undefined): void {
    switch (failure) {
      case 'timeout':
        return this.localReply('UT', 504, 'upstream request timeout');
      case 'connect-failure':
        return this.retryNumber > 0
          ? this.localReply('URX', 503, `upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection failure${detail(err)}`)
          : this.localReply('UF', 503, `upstream connect error or disconnect/reset before headers. reset reason: connection failure${detail(err)}`);
      default:
        return this.localReply(this.retryNumber > 0 ? 'URX' : 'UC', 503, `upstream connect error or disconnect/reset before headers. reset reason: connection termination${detail(err)}`);
    }
  }

  private retryAfterBackoff(): void {
    this.retriesLeft--;
    this.retryNumber++;
    const delay = backoffDelay(this.route.retry!, this.retryNumber, this.ctx.random);
    if (delay <= 0) return this.sendAttempt();
    this.attempt = undefined;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.state === PENDING) this.sendAttempt();
    }, delay);
  }

  private onPerTryTimeout(attempt: Attempt): void {
    if (attempt !== this.attempt || this.state !== PENDING) return;
    attempt.timedOut = true;
    attempt.abandon(new Error('per-try timeout'));
    // undici calls onError for an aborted attempt only once it was connected; decide now either way.
    if (attempt.abortUpstream === undefined) this.attemptError(attempt, new Error('per-try timeout'));
  }

  private onRouteTimeout(): void {
    this.timer = undefined;
    if (this.state === DONE) return;
    const forwarding = this.state === FORWARDING;
    this.attempt?.abandon(new Error('route timeout'));
    if (forwarding) {
      this.finish();
      this.handler.onError(Object.assign(new Error('upstream request timeout'), { code: 'MESH_TIMEOUT', flag: 'UT' }));
    } else {
      this.localReply('UT', 504, 'upstream request timeout');
    }
  }

  /** The caller aborted (signal, stream destroyed). */
  abort(reason: unknown): void {
    if (this.state === DONE) return;
    this.finish();
    this.attempt?.abandon(reason);
    this.handler.onError(reason instanceof Error ? reason : new Error(String(reason ?? 'aborted')));
  }

  /** Answers the caller from the mesh itself. */
  localReply(flag: ResponseFlag, status: number, message: string): void {
    if (this.state === DONE) return;
    this.finish();
    this.attempt?.abandon(new Error('local reply'));
    sendLocalReply(this.handler, this.ctx.localReplies, flag, status, message);
  }

  private finish(): void {
    this.state = DONE;
    if (this.timer) clearTimeout(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.timer = this.retryTimer = undefined;
  }

  /** The failure that ended the last attempt, if any (for telemetry). */
  get failure(): AttemptFailure | undefined {
    return this.lastFailure;
  }
}

function rewriteWithQuery(route: CompiledRoute, path: string, full: string): string {
  const rewritten = rewritePath(route, path);
  return full.length > path.length ? rewritten + full.slice(path.length) : rewritten;
}

function isConnectError(err: Error): boolean {
  const code = (err as { code?: string }).code;
  return code !== undefined && connectErrorCodes.has(code);
}

function detail(err: Error | undefined): string {
  const code = (err as { code?: string } | undefined)?.code;
  return code ? ` (${code})` : '';
}

const grpcStatusName = 'grpc-status';
/** gRPC status from a trailers-only response, read only when the policy retries on gRPC codes. */
function grpcStatusOf(raw: Buffer[], on: number): number | undefined {
  if (on < 1 << 16) return undefined;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toString('latin1').toLowerCase() === grpcStatusName) return Number(raw[i + 1]!.toString('latin1'));
  return undefined;
}
