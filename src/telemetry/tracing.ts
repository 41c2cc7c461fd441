/**
 * Spans for the mesh's request path: one SERVER span per inbound request, one
 * CLIENT span per outbound request and a CLIENT child per retry attempt, with
 * OpenTelemetry HTTP semantic-convention attributes plus `meshlet.route`,
 * `meshlet.cluster` and `meshlet.flags`.
 *
 * Cost when tracing is off: the tracer is the API's no-op one, `startSpan`
 * returns a non-recording span around the parent's context (so propagation
 * still carries the caller's trace) and no attribute object is ever built —
 * every attribute write is behind `span.isRecording()`. The sampling decision
 * is the provider's sampler's (ParentBased by default in the SDK), so a
 * caller's `sampled=0` is honoured — unless a Telemetry resource sets
 * sampling or turns span reporting off (see telemetry-policy.ts).
 */
import {
  type Attributes,
  type Context,
  type Span,
  type Tracer,
  type TracerProvider,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { defaultRandom, type RandomSource } from '../core/random.js';
import { headerValue, type HeaderSource, isSecretHeader } from './headers.js';
import { normalizeMethod, redactQuery, redactUrl } from './semconv.js';
import { meshSpan, type TelemetryPolicy } from './telemetry-policy.js';

/** Name of the instrumentation scope meshlet's spans are recorded under. */
export const TRACER_NAME = 'meshlet';

/** Options of {@link MeshTracer}. */
export interface MeshTracerOptions {
  /** The provider; default the global one (`trace.getTracerProvider()`), looked up on each span so late registration works. */
  tracerProvider?: TracerProvider;
  /** Instrumentation scope version. */
  version?: string;
  /**
   * Header names recorded as `http.request.header.<name>` / `http.response.header.<name>`.
   * Secret headers (Authorization, Cookie, Set-Cookie, Proxy-Authorization,
   * x-*-token …, see {@link isSecretHeader}) are dropped even when listed.
   */
  recordHeaders?: readonly string[];
  /** The mesh's random source, for Telemetry `randomSamplingPercentage` draws (default Math.random). */
  random?: RandomSource;
}

/** What an outbound request span is made from. */
export interface ClientSpanInfo {
  /** HTTP method, any case. */
  method: string;
  /** The full URL as the app asked for it (credentials and signed query values are redacted before recording). */
  url: string;
  /** Host the request goes to (the service host, not the picked endpoint). */
  serverAddress: string;
  /** Port the request goes to. */
  serverPort: number;
  /** `http` (default) or `grpc`. */
  protocol?: 'http' | 'grpc';
  /** `1.1` or `2`. */
  protocolVersion?: string;
  /** Name of the matched route (VirtualService http[].name or the RDS route name). */
  route?: string;
  /** The Envoy cluster name, e.g. `outbound|8000|v1|calculate.default.svc.cluster.local`. */
  cluster?: string;
  /** For gRPC: `package.Service` and method name. */
  rpcService?: string;
  rpcMethod?: string;
  /** Request headers, read only for the configured recordHeaders. */
  headers?: HeaderSource;
}

/** What an inbound request span is made from. */
export interface ServerSpanInfo {
  /** HTTP method, any case. */
  method: string;
  /** Path of the request target, without the query. */
  path: string;
  /** Query string without the `?`, when there is one. */
  query?: string;
  /** `http` or `https`. */
  scheme?: string;
  /** Host header / authority the request was sent to. */
  serverAddress?: string;
  serverPort?: number;
  /** Peer address of the connection. */
  clientAddress?: string;
  /** `http` (default) or `grpc`. */
  protocol?: 'http' | 'grpc';
  protocolVersion?: string;
  /** Low-cardinality route template (`/users/:id`) — becomes `http.route` and the span name. */
  httpRoute?: string;
  /** The mesh's route name, when inbound policy matched one. */
  route?: string;
  rpcService?: string;
  rpcMethod?: string;
  /** Request headers, read for `user_agent.original` and the configured recordHeaders. */
  headers?: HeaderSource;
}

/** How a request ended. */
export interface SpanOutcome {
  /** HTTP status (the local reply's status for mesh-generated replies). */
  statusCode?: number;
  /** Envoy response flags, e.g. `UT`, `UO,URX`; `-` or absent when none. */
  flags?: string;
  /** gRPC status code, when the call was gRPC. */
  grpcStatus?: number;
  /** The error when the request failed without a response. */
  error?: unknown;
  /** Response headers, read only for the configured recordHeaders. */
  headers?: HeaderSource;
}

/** The spans of one mesh. */
export class MeshTracer {
  private readonly provider: TracerProvider | undefined;
  private readonly version: string | undefined;
  private cachedTracer: Tracer | undefined;
  private readonly requestHeaderKeys: ReadonlyArray<readonly [string, string]>;
  private readonly responseHeaderKeys: ReadonlyArray<readonly [string, string]>;
  private readonly random: RandomSource;
  /**
   * Sampling and span reporting from Telemetry resources; undefined (the
   * common case) keeps every span decision the provider's, at no cost.
   */
  policy: TelemetryPolicy | undefined;

  constructor(options: MeshTracerOptions = {}) {
    this.provider = options.tracerProvider;
    this.version = options.version;
    this.random = options.random ?? defaultRandom;
    const names = (options.recordHeaders ?? []).map((h) => h.toLowerCase()).filter((h) => !isSecretHeader(h));
    this.requestHeaderKeys = names.map((h) => [h, `http.request.header.${h}`] as const);
    this.responseHeaderKeys = names.map((h) => [h, `http.response.header.${h}`] as const);
  }

  /** Whether any request header is recorded on spans (callers skip building a header view otherwise). */
  get recordsRequestHeaders(): boolean {
    return this.requestHeaderKeys.length > 0;
  }

  /** The OTel tracer spans are started on. */
  get tracer(): Tracer {
    // An explicit provider is fixed; the global one goes through the API's proxy, itself cheap and late-bound.
    if (this.cachedTracer === undefined) {
      this.cachedTracer = (this.provider ?? trace.getTracerProvider()).getTracer(TRACER_NAME, this.version);
    }
    return this.cachedTracer;
  }

  /** Starts the CLIENT span of an outbound request, child of `parent` (usually the inbound request's context). */
  startClientSpan(parent: Context, info: ClientSpanInfo): Span {
    if (this.policy !== undefined) {
      const decided = meshSpan(parent, this.policy.client, this.random);
      if (decided !== undefined) return decided;
    }
    const span = this.tracer.startSpan(normalizeMethod(info.method), { kind: SpanKind.CLIENT }, parent);
    if (span.isRecording()) this.setClientAttributes(span, info);
    return span;
  }

  /**
   * Starts the CLIENT span of one attempt of an outbound request, child of the
   * request's span context. `attempt` 0 is the first try; later ones carry
   * `http.request.resend_count`. Inject the attempt's context into its headers.
   */
  startAttemptSpan(requestContext: Context, info: ClientSpanInfo, attempt: number): Span {
    const span = this.tracer.startSpan(normalizeMethod(info.method), { kind: SpanKind.CLIENT }, requestContext);
    if (span.isRecording()) {
      this.setClientAttributes(span, info);
      if (attempt > 0) span.setAttribute('http.request.resend_count', attempt);
    }
    return span;
  }

  /** Starts the SERVER span of an inbound request, child of the context extracted from its headers. */
  startServerSpan(extracted: Context, info: ServerSpanInfo): Span {
    if (this.policy !== undefined) {
      const decided = meshSpan(extracted, this.policy.server, this.random);
      if (decided !== undefined) return decided;
    }
    const method = normalizeMethod(info.method);
    const span = this.tracer.startSpan(method, { kind: SpanKind.SERVER }, extracted);
    if (span.isRecording()) this.setServerAttributes(span, method, info);
    return span;
  }

  /** Records the outcome of an outbound request and ends its span; status >= 400 is an error (semantic conventions). */
  endClientSpan(span: Span, outcome: SpanOutcome): void {
    if (span.isRecording()) this.recordOutcome(span, outcome, 400);
    span.end();
  }

  /** Records the outcome of an inbound request and ends its span; only status >= 500 is an error (semantic conventions). */
  endServerSpan(span: Span, outcome: SpanOutcome): void {
    if (span.isRecording()) this.recordOutcome(span, outcome, 500);
    span.end();
  }

  /** Span event: a fault-injection abort replied `status` instead of calling upstream. */
  faultAbort(span: Span, status: number): void {
    if (span.isRecording()) span.addEvent('meshlet.fault.abort', { 'http.response.status_code': status, 'meshlet.flags': 'FI' });
  }

  /** Span event: a fault-injection delay of `delayMs` was applied before the call. */
  faultDelay(span: Span, delayMs: number): void {
    if (span.isRecording()) span.addEvent('meshlet.fault.delay', { 'meshlet.fault.delay_ms': delayMs, 'meshlet.flags': 'DI' });
  }

  /** Span event: outlier detection ejected `endpoint` (`host:port`) of `cluster`. */
  ejection(span: Span, endpoint: string, cluster: string, reason?: string): void {
    if (!span.isRecording()) return;
    const attrs: Attributes = { 'meshlet.endpoint': endpoint, 'meshlet.cluster': cluster };
    if (reason !== undefined) attrs['meshlet.ejection.reason'] = reason;
    span.addEvent('meshlet.outlier.ejection', attrs);
  }

  /** Span event on a request's span: the try before failed with `reason` (a status code or a failure kind) and is retried. */
  retrying(span: Span, resendCount: number, reason: string): void {
    if (span.isRecording()) span.addEvent('meshlet.retry', { 'http.request.resend_count': resendCount, 'meshlet.retry.reason': reason });
  }

  /** Span event: a local or global rate limit rejected the request (429 `RL`). */
  rateLimited(span: Span, scope: 'local' | 'global', limiter?: string): void {
    if (!span.isRecording()) return;
    const attrs: Attributes = { 'meshlet.ratelimit.scope': scope, 'meshlet.flags': 'RL' };
    if (limiter !== undefined) attrs['meshlet.ratelimit.name'] = limiter;
    span.addEvent('meshlet.ratelimit.rejected', attrs);
  }

  private recordOutcome(span: Span, outcome: SpanOutcome, errorFrom: number): void {
    const status = outcome.statusCode;
    if (status !== undefined && status > 0) span.setAttribute('http.response.status_code', status);
    // A mesh response flag is always recorded: it is why a 503 came from the mesh and not the upstream.
    if (outcome.flags !== undefined && outcome.flags !== '-' && outcome.flags !== '') span.setAttribute('meshlet.flags', outcome.flags);
    if (outcome.grpcStatus !== undefined) span.setAttribute('rpc.grpc.status_code', outcome.grpcStatus);
    if (outcome.headers !== undefined && this.responseHeaderKeys.length > 0) {
      const attrs: Attributes = {};
      this.copyHeaders(attrs, outcome.headers, this.responseHeaderKeys);
      span.setAttributes(attrs);
    }
    const err = outcome.error;
    if (err !== undefined) {
      const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
      span.setAttribute('error.type', typeof code === 'string' ? code : err instanceof Error ? err.name : '_OTHER');
      if (err instanceof Error) span.recordException(err);
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
    } else if (status !== undefined && status >= errorFrom) {
      span.setAttribute('error.type', String(status));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
  }

  private setServerAttributes(span: Span, method: string, info: ServerSpanInfo): void {
    // As for CLIENT spans: one setAttribute per key, no network.protocol.name (always `http` here).
    span.setAttribute('http.request.method', method);
    if (method === '_OTHER') span.setAttribute('http.request.method_original', info.method);
    span.setAttribute('url.path', info.path);
    if (info.query) span.setAttribute('url.query', redactQuery(info.query));
    span.setAttribute('url.scheme', info.scheme ?? 'http');
    if (info.serverAddress !== undefined) span.setAttribute('server.address', info.serverAddress);
    if (info.serverPort !== undefined) span.setAttribute('server.port', info.serverPort);
    if (info.clientAddress !== undefined) span.setAttribute('client.address', info.clientAddress);
    if (info.protocolVersion !== undefined) span.setAttribute('network.protocol.version', info.protocolVersion);
    if (info.route !== undefined) span.setAttribute('meshlet.route', info.route);
    if (info.httpRoute !== undefined) {
      span.setAttribute('http.route', info.httpRoute);
      span.updateName(`${method} ${info.httpRoute}`);
    }
    if (info.protocol === 'grpc') {
      const attrs: Attributes = {};
      setRpc(attrs, info.rpcService, info.rpcMethod);
      span.setAttributes(attrs);
    }
    if (info.headers !== undefined) {
      const ua = headerValue(info.headers, 'user-agent');
      if (ua !== undefined) span.setAttribute('user_agent.original', ua);
      if (this.requestHeaderKeys.length > 0) {
        const attrs: Attributes = {};
        this.copyHeaders(attrs, info.headers, this.requestHeaderKeys);
        span.setAttributes(attrs);
      }
    }
  }

  private setClientAttributes(span: Span, info: ClientSpanInfo): void {
    // One setAttribute per key, no intermediate object: this runs for every sampled request.
    // network.protocol.name is left out: the conventions require it only when it is not `http`.
    const method = normalizeMethod(info.method);
    span.setAttribute('http.request.method', method);
    if (method === '_OTHER') span.setAttribute('http.request.method_original', info.method);
    span.setAttribute('url.full', redactUrl(info.url));
    span.setAttribute('server.address', info.serverAddress);
    span.setAttribute('server.port', info.serverPort);
    if (info.protocolVersion !== undefined) span.setAttribute('network.protocol.version', info.protocolVersion);
    if (info.route !== undefined) span.setAttribute('meshlet.route', info.route);
    if (info.cluster !== undefined) span.setAttribute('meshlet.cluster', info.cluster);
    if (info.protocol === 'grpc') {
      const attrs: Attributes = {};
      setRpc(attrs, info.rpcService, info.rpcMethod);
      span.setAttributes(attrs);
    }
    if (info.headers !== undefined && this.requestHeaderKeys.length > 0) {
      const attrs: Attributes = {};
      this.copyHeaders(attrs, info.headers, this.requestHeaderKeys);
      span.setAttributes(attrs);
    }
  }

  private copyHeaders(attrs: Attributes, headers: HeaderSource, keys: ReadonlyArray<readonly [string, string]>): void {
    for (const [name, key] of keys) {
      const v = headerValue(headers, name);
      if (v !== undefined) attrs[key] = [v];
    }
  }
}

function setRpc(attrs: Attributes, service: string | undefined, method: string | undefined): void {
  attrs['rpc.system'] = 'grpc';
  if (service !== undefined) attrs['rpc.service'] = service;
  if (method !== undefined) attrs['rpc.method'] = method;
}
