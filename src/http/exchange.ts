/**
 * One outbound HTTP request through the mesh: the undici side of a router
 * session (core/router-session.ts). The session runs the filters, admission,
 * timeouts, retries, host picks and outlier reporting; the exchange builds
 * each try's undici options (rewrites, header mutations, trace headers, a
 * replayable body), dispatches it on the endpoint's pool, and forwards the
 * committed response to the caller's handler.
 */
import type { Context } from '@opentelemetry/api';
import type { Dispatcher } from 'undici';
import type { CompiledCluster } from '../core/cluster.js';
import type { Host } from '../core/load-balancer.js';
import type { MirrorPolicy } from '../core/mirror.js';
import { rewritePath, type CompiledRoute } from '../core/route.js';
import { PENDING, RouterSession, Verdict, type RouterContext } from '../core/router-session.js';
import type { RouterAttempt } from '../core/router-attempt.js';
import type { CompiledVirtualHost, Snapshot } from '../core/snapshot.js';
import type { ResponseFlag } from '../errors.js';
import type { HeaderSource } from '../telemetry/headers.js';
import type { OutboundCall, OutboundRetry, OutboundTargetHandle, TraceCarrier } from '../telemetry/outbound.js';
import type { MeshTelemetry } from '../telemetry/telemetry.js';
import { Attempt, grpcStatusOf } from './attempt.js';
import { replayableBody, type ReplayableBody } from './body.js';
import type { LegacyHandler } from './handler.js';
import { getHeader, mutateRawHeaders, outboundHeaders, type RawHeaders } from './headers.js';
import { flagHeader, rawHeaders, sendLocalReply, sendResponse, type LocalReplyMode } from './local-reply.js';
import { takePeerMetadata } from './response-meta.js';
import { dispatchTracedByMesh } from '../telemetry/otel-coexistence.js';
import { tlsIdentitiesOf } from './pools.js';

/** The header Envoy's include_request_attempt_count adds to each try. */
const ATTEMPT_COUNT = 'x-envoy-attempt-count';
import { headerBlockBytes, requestLineBytes, statusLineBytes } from './wire-bytes.js';

/** What an exchange needs from the mesh that runs it. */
export interface ExchangeContext extends RouterContext {
  readonly localReplies: LocalReplyMode;
  readonly telemetry: MeshTelemetry;
  /** The connection pool for an endpoint. */
  pool(host: Host, cluster: CompiledCluster): Dispatcher;
  /** The trace context outbound calls are children of (the inbound request's, if any). */
  parentContext(): Context;
  /** The telemetry handle of a route's destination cluster. */
  target(route: CompiledRoute, clusterIndex: number): OutboundTargetHandle;
  /** Sends a fire-and-forget copy of the request to a mirror cluster. */
  mirror(snapshot: Snapshot, cluster: string, opts: Dispatcher.DispatchOptions, authority: string, shadowSuffix: boolean): void;
}

/** One HTTP request: a router session over undici. */
export class Exchange extends RouterSession {
  private readonly body: ReplayableBody;
  private attemptOptions: Dispatcher.DispatchOptions | undefined;
  private call: OutboundCall | undefined;
  private responseBytes = 0;
  /** Response body bytes forwarded (access logs' %BYTES_RECEIVED%). */
  private responseBodyBytes = 0;
  /** The committed response's raw headers, kept only for access logs (%RESP(…)%). */
  /** The upstream's response headers, kept for the access log's %RESP(...)%. */
  private upstreamResponseHeaders: Buffer[] | undefined;
  /** The request line and headers of the last try, as sent (istio_request_bytes counts them with the body). */
  private requestHeaderBytes = 0;
  private peerMetadata: string | undefined;
  /** The pool of the last try: its TLS identities are the principals of the istio_* series. */
  private upstream: Dispatcher | undefined;

  constructor(
    private readonly ctx: ExchangeContext,
    snapshot: Snapshot,
    vhost: CompiledVirtualHost,
    route: CompiledRoute,
    private readonly opts: Dispatcher.DispatchOptions,
    readonly handler: LegacyHandler,
    private readonly authority: string,
    private readonly path: string,
    /** host and port of the authority, for telemetry */
    private readonly server: { readonly host: string; readonly port: number; readonly servername?: string | undefined },
    /** the client's address when a gateway forwards (a `source_ip` hash policy hashes it) */
    private readonly downstream?: string | undefined,
  ) {
    super(ctx, snapshot, true, false);
    this.body = replayableBody(opts.body);
    this.replayable = this.body.replayable;
    this.selectRoute(vhost, route);
  }

  /** Starts the exchange: tells the caller it is connected, then runs the filter chain. */
  start(): void {
    this.handler.onConnect?.((reason) => this.abort(reason));
    if (this.state !== PENDING) return;
    const route = this.route!;
    this.call = this.ctx.telemetry.outbound.start(this.ctx.parentContext(), this.ctx.target(route, this.clusterIndex), {
      method: this.opts.method, url: `http://${this.authority}${this.opts.path}`, serverAddress: this.server.host, serverPort: this.server.port,
      headers: this.opts.headers as HeaderSource | undefined,
    });
    this.span = this.call.span;
    this.run();
  }

  /** A request header for rate-limit actions, pseudo-headers included (`:path` with its query, as Envoy). */
  requestHeader(name: string): string | undefined {
    if (name.charCodeAt(0) !== 58 /* : */) return getHeader(this.opts.headers as RawHeaders, name);
    switch (name) {
      case ':path': return this.opts.path;
      case ':method': return this.opts.method;
      case ':authority': return this.authority;
      default: return undefined;
    }
  }

  override downstreamAddress(): string | undefined {
    return this.downstream ?? super.downstreamAddress();
  }

  createAttempt(host: Host, retryNumber: number): Attempt {
    const attempt = new Attempt(this, host);
    if (retryNumber > 0) attempt.retry = this.ctx.telemetry.outbound.startRetry(this.call!, retryNumber);
    return attempt;
  }

  sendAttempt(attempt: RouterAttempt): void {
    const a = attempt as Attempt;
    const pool = this.ctx.pool(a.host, this.cluster!);
    this.upstream = pool;
    // The mesh traced and propagated this try itself: an OTel undici instrumentation must not do it twice.
    dispatchTracedByMesh(pool, this.optionsForAttempt(a.retry), a as unknown as Dispatcher.DispatchHandler);
  }

  cancelAttempt(attempt: RouterAttempt, reason: string): void {
    (attempt as Attempt).abort(new Error(reason));
  }

  mirror(policy: MirrorPolicy): void {
    this.ctx.mirror(this.snapshot, policy.cluster, this.optionsForAttempt(), this.authority, policy.shadowSuffix);
  }

  /** The first try's options are built once; a retry copies them with a fresh body (and its own trace headers). */
  private optionsForAttempt(retrySpan?: OutboundRetry): Dispatcher.DispatchOptions {
    if (this.attemptOptions === undefined) {
      const route = this.route!;
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
    if (this.vhost?.includeAttemptCount) {
      retry.headers = Object.assign({}, retry.headers as Record<string, string | string[]>, { [ATTEMPT_COUNT]: String(this.retryNumber + 1) });
    }
    return retry;
  }

  /** The caller's headers after the route's mutations, carrying the trace and our metadata exchange. */
  private upstreamHeaders(carrier: TraceCarrier): RawHeaders {
    const route = this.route!;
    const headers = outboundHeaders(this.opts.headers as RawHeaders, route.hostRewrite ?? this.authority, [route.requestHeaders, route.clusterRequestHeaders[this.clusterIndex]!], undefined);
    // Envoy's include_request_attempt_count: the first try says 1 (retries overwrite it above).
    if (this.vhost?.includeAttemptCount) headers[ATTEMPT_COUNT] = '1';
    this.ctx.telemetry.outbound.injectHeaders(carrier, headers);
    if (this.ctx.telemetry.outbound.recordsMetrics) this.requestHeaderBytes = requestLineBytes(this.opts.method, this.opts.path) + headerBlockBytes(headers);
    return headers;
  }

  /** Ends a retry's span (once) with the upstream's status or the error that ended the try. */
  private endRetrySpan(attempt: Attempt, error: unknown): void {
    const retry = attempt.retry;
    if (retry === undefined) return;
    attempt.retry = undefined;
    this.ctx.telemetry.outbound.finishRetry(retry, { statusCode: attempt.status > 0 ? attempt.status : undefined, error });
  }

  /** @internal A try's response headers: the session commits (forward them), retries (drain) or drops the try. */
  attemptHeaders(attempt: Attempt, status: number, raw: Buffer[], resume: () => void, text: string): boolean {
    const retry = this.route!.retry;
    const verdict = this.attemptResponse(attempt, status, retry === undefined ? undefined : grpcStatusOf(raw, retry.on));
    if (verdict === Verdict.RETRY) return true; // drain it, then retry on completion
    if (verdict === Verdict.DROP) {
      attempt.status = status;
      attempt.abandoned = true;
      attempt.abort(new Error('stale attempt'));
      return false;
    }
    if (this.ctx.telemetry.outbound.recordsMetrics) this.responseBytes += statusLineBytes(text) + headerBlockBytes(raw);
    const meta = takePeerMetadata(raw);
    this.peerMetadata = meta.value;
    if (this.ctx.telemetry.outbound.logsAccess) this.upstreamResponseHeaders = raw;
    const route = this.route!;
    const mutations = [route.responseHeaders, route.clusterResponseHeaders[this.clusterIndex]!];
    if (this.responseHeaders !== undefined) mutations.push(this.responseHeaders);
    const headers = mutateRawHeaders(meta.headers, mutations, this.extraResponseHeaders());
    return this.handler.onHeaders?.(status, headers, resume, text) !== false;
  }

  /** The response flag header and the Set-Cookie a cookie hash policy generated. */
  private extraResponseHeaders(): Buffer[] | undefined {
    const flag = this.flags ? flagHeader(this.flags) : undefined;
    if (this.setCookies === undefined) return flag;
    const out = flag ? [...flag] : [];
    for (const c of this.setCookies) out.push(Buffer.from('set-cookie', 'latin1'), Buffer.from(c, 'latin1'));
    return out;
  }

  /** @internal */
  attemptData(chunk: Buffer): boolean {
    this.responseBytes += chunk.length;
    this.responseBodyBytes += chunk.length;
    return this.handler.onData?.(chunk) !== false;
  }

  /** @internal */
  attemptComplete(attempt: Attempt, trailers: Buffer[] | string[] | null): void {
    this.endRetrySpan(attempt, undefined);
    if (this.attemptEnd(attempt)) this.handler.onComplete?.(trailers);
  }

  /** @internal */
  attemptError(attempt: Attempt, err: Error): void {
    this.endRetrySpan(attempt, err);
    this.attemptFailed(attempt, attempt.failureOf(err), err);
  }

  /** The caller aborted (signal, stream destroyed). */
  abort(reason: unknown): void {
    const err = reason instanceof Error ? reason : new Error(String(reason ?? 'aborted'));
    if (this.cancel(err)) this.handler.onError(err);
  }

  sendLocalReply(flag: ResponseFlag | undefined, status: number, _grpcStatus: number, message: string, headers: Record<string, string> | undefined): void {
    // No flag: a filter's answer (a CORS preflight), not an error — never thrown, no x-meshlet-flags.
    if (flag === undefined) return sendResponse(this.handler, status, message, headers && rawHeaders(headers));
    sendLocalReply(this.handler, this.ctx.localReplies, flag ?? 'NR', status, message, headers && rawHeaders(headers));
  }

  failDownstream(error: Error): void {
    this.handler.onError(error);
  }

  ended(error: Error | undefined): void {
    // A try the mesh gives up on (route timeout, local reply, caller abort) ends with the request.
    if (this.attempt !== undefined) this.endRetrySpan(this.attempt as Attempt, error);
    if (this.call) {
      const outbound = this.ctx.telemetry.outbound;
      if (!outbound.observes(this.call.span)) return this.call.span.end();
      const ids = this.upstream === undefined ? undefined : tlsIdentitiesOf(this.upstream);
      this.ctx.telemetry.outbound.finish(this.call, {
        ...(ids?.peer !== undefined && { peerPrincipal: ids.peer }),
        ...(ids?.local !== undefined && { localPrincipal: ids.local }),
        statusCode: this.status, flags: this.responseFlags(), responseBytes: this.responseBytes, peerMetadata: this.peerMetadata, error,
        requestBytes: this.requestHeaderBytes + this.body.bytes,
        ...(this.ctx.telemetry.outbound.logsAccess && {
          requestBodyBytes: this.body.bytes,
          responseBodyBytes: this.responseBodyBytes,
          ...(this.attempt !== undefined && { upstreamHost: (this.attempt as Attempt).host.id }),
          ...(this.upstreamResponseHeaders !== undefined && { responseHeaders: rawHeaderStrings(this.upstreamResponseHeaders) }),
        }),
      });
    }
  }
}

/** undici's raw Buffer headers as the flat string list headerValue reads. */
function rawHeaderStrings(raw: Buffer[]): string[] {
  return raw.map((b) => b.toString('latin1'));
}

function rewriteWithQuery(route: CompiledRoute, path: string, full: string): string {
  const rewritten = rewritePath(route, path);
  return full.length > path.length ? rewritten + full.slice(path.length) : rewritten;
}
