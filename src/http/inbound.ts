/**
 * Framework-neutral inbound HTTP: what the Express middleware and the Fastify
 * plugin both do around a Node request. Per request, in Envoy's order:
 * telemetry starts (peer metadata stripped, trace context extracted, SERVER
 * span), our metadata-exchange headers go on the response, the inbound policy
 * chain runs (authorization, local rate limit), then the app runs inside the
 * request's context so every outbound mesh call is a child span. Telemetry
 * finishes when the response ends or the connection closes early.
 */
import type { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from '@opentelemetry/api';
import { runInContext } from '../telemetry/run-in-context.js';
import { InboundPathSettings } from '../core/inbound-path.js';
import { pathNormalizationSettings, type PathNormalizationSettings } from '../core/path-normalization.js';
import { EMPTY_INBOUND_POLICY, InboundPolicyCompiler, type InboundLocalReply, type InboundPolicy, type InboundPolicySource, type InboundRequestView } from '../core/inbound-policy.js';
import { localIdentity, peerIdentity } from '../security/tls.js';
import type { InboundCall, InboundOutcome } from '../telemetry/inbound.js';
import { PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER } from '../telemetry/peer-metadata.js';
import type { MeshTelemetry } from '../telemetry/telemetry.js';
import { normalizeMethod } from '../telemetry/semconv.js';
import { joinedHeader } from './headers.js';
import { headerBlockBytes, requestLineBytes, statusLineBytes } from './wire-bytes.js';
import { normalizeRequest } from './normalize-request.js';
import { bindEmitter, countResponseBytes, type ContextRunner } from './request-hooks.js';

/** What the inbound adapters need from a mesh (a `Mesh` is one). */
export interface InboundMesh {
  readonly telemetry: MeshTelemetry;
  /** The store outbound calls read their parent context from. */
  readonly context: AsyncLocalStorage<Context>;
  /** The snapshot in force; its `virtual_inbound` listener is the inbound policy. */
  readonly snapshot: InboundPolicySource;
  /** The mesh's shared inbound server, when it keeps one (so adapters share rate-limit buckets). */
  readonly inbound?: InboundServer;
}

/** Options of {@link InboundServer}. */
export interface InboundServerOptions {
  /** Compiles the snapshot's inbound chain; pass one with authorization factories or a test clock. */
  policies?: InboundPolicyCompiler;
  /** The mesh's path normalization, for snapshots whose inbound listener does not say (default BASE). */
  pathNormalization?: PathNormalizationSettings;
}

/** Finds the low-cardinality route template once the framework has routed (Express). */
export type RouteResolver = (req: IncomingMessage) => string | undefined;

/**
 * The inbound side of one mesh. Create one per mesh (the adapters do, via
 * {@link inboundServerFor}) so every adapter of a workload shares its
 * policy state.
 */
export class InboundServer {
  /** The inbound policy compiler (one per mesh: its token buckets are the workload's). */
  readonly policies: InboundPolicyCompiler;
  /** The path normalization of each snapshot (its inbound HCM's, else the mesh's). */
  readonly paths: InboundPathSettings;

  constructor(readonly mesh: InboundMesh, options: InboundServerOptions = {}) {
    this.policies = options.policies ?? new InboundPolicyCompiler();
    this.paths = new InboundPathSettings(options.pathNormalization ?? pathNormalizationSettings('BASE'));
  }

  /**
   * Normalizes a request as the sidecar would (method, path; `req.url`
   * rewritten in place) under the snapshot in force. Returns the local reply
   * when the sidecar would have refused it. Idempotent per request.
   */
  normalize(req: object): InboundLocalReply | undefined {
    return normalizeRequest(req, this.paths.forSnapshot(this.mesh.snapshot));
  }

  /**
   * Starts handling a request: telemetry, response metadata headers, inbound
   * policy. When `exchange.localReply` is set the adapter sends it instead of
   * running the app; otherwise it runs the app with {@link run}.
   * @throws MeshConfigError when the snapshot's inbound chain cannot be compiled.
   */
  begin(req: IncomingMessage, res: ServerResponse, httpRoute?: string, routeAtEnd?: RouteResolver): InboundExchange {
    // mesh.createServer(app) with app.use(mesh.express()): one request, one exchange (one span, one count).
    const existing = exchangeOf(req);
    if (existing !== undefined && existing.res === res) {
      existing.adopt(httpRoute, routeAtEnd);
      return existing;
    }
    // First, as Envoy's HCM: policies, telemetry and the app all see the normalized request.
    const refused = this.normalize(req);
    // The inbound listener and filter chain serving the port the request arrived on.
    const policy = this.policies.forSnapshot(this.mesh.snapshot, req.socket?.localPort);
    return new InboundExchange(this.mesh, policy, req, res, httpRoute, routeAtEnd, refused);
  }

  /**
   * Runs `fn` inside the request's context — for meshlet's outbound calls
   * (`mesh.context`) and for the OpenTelemetry API's active context (when the
   * app registered a context manager) — and binds the request's event
   * listeners to it, so code resumed by body parsers ('data'/'end') keeps it.
   */
  run<A extends unknown[], R>(exchange: InboundExchange, fn: (...args: A) => R, ...args: A): R {
    // A body parser resumes the app from the request's 'data'/'end' events. A request with no body has none
    // worth binding (parsers skip it), and binding costs an own property on a framework's request (slow).
    if (mayHaveBody(exchange.req)) bindEmitter(exchange.req, this.mesh.context, exchange.context, runInContext as ContextRunner);
    return runInContext(this.mesh.context, exchange.context, fn, undefined, args);
  }

  /**
   * The inbound path of `mesh.createServer`, the same as `mesh.express()`'s:
   * SERVER span, reporter="destination" metrics, metadata exchange on the
   * response, the inbound filters, and `serve` run in the request's context.
   */
  readonly chain = (req: IncomingMessage, res: ServerResponse, serve: (req: IncomingMessage, res: ServerResponse) => void): void => {
    let exchange: InboundExchange;
    try {
      exchange = this.begin(req, res);
    } catch {
      // An inbound chain that cannot compile refuses, as Envoy with a listener it could not build.
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('inbound policy unavailable');
      return;
    }
    if (exchange.localReply !== undefined) return exchange.sendLocalReply();
    this.run(exchange, serve, req, res);
  };

  /** Runs `fn` in the context of a request already begun (a later framework hook). */
  reenter<A extends unknown[], R>(req: IncomingMessage, fn: (...args: A) => R, ...args: A): R {
    const ex = exchangeOf(req);
    return ex === undefined ? fn(...args) : runInContext(this.mesh.context, ex.context, fn, undefined, args);
  }
}

/** HTTP/2, a chunked body, or a content-length other than 0 (RFC 9112 §6.3: no body otherwise). */
function mayHaveBody(req: IncomingMessage): boolean {
  if (req.httpVersionMajor !== 1) return true;
  const headers = req.headers;
  const length = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

const servers = new WeakMap<InboundMesh, InboundServer>();

/**
 * The mesh's inbound server: `mesh.inbound` when the mesh keeps one, else one
 * made for this mesh on first use and shared by every adapter created for it.
 */
export function inboundServerFor(mesh: InboundMesh): InboundServer {
  if (mesh.inbound !== undefined) return mesh.inbound;
  let server = servers.get(mesh);
  if (server === undefined) servers.set(mesh, (server = new InboundServer(mesh)));
  return server;
}

/** Beside the request, not on it (see normalize-request.ts: a property added to an Express request is slow). */
const exchanges = new WeakMap<IncomingMessage, InboundExchange>();

/** The exchange a request belongs to, once begun. */
export function exchangeOf(req: IncomingMessage): InboundExchange | undefined {
  return exchanges.get(req);
}

/** One inbound request through the mesh. */
export class InboundExchange implements InboundRequestView {
  /** The telemetry call: SERVER span and metric family. */
  readonly call: InboundCall;
  /** Run the app inside this: the extracted trace with the SERVER span active. */
  readonly context: Context;
  /** Set when the inbound policy answered: send it instead of running the app. */
  readonly localReply: InboundLocalReply | undefined;
  /** Response body bytes the app wrote. */
  responseBytes = 0;
  /** The connection's bytesWritten when the request began (HTTP/1: the response's wire size is the difference). */
  private readonly writtenAtStart: number | undefined;
  private done = false;

  /** @internal use {@link InboundServer.begin} */
  constructor(
    private readonly mesh: InboundMesh,
    policy: InboundPolicy,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    private httpRoute: string | undefined,
    private routeAtEnd: RouteResolver | undefined,
    refused?: InboundLocalReply,
  ) {
    const inbound = mesh.telemetry.inbound;
    const socket = req.socket as IncomingMessage['socket'] & { encrypted?: boolean };
    // Envoy's peer_metadata filter answers in kind: each exchange header only when the caller sent it (read before start() takes them).
    const peerSentId = req.headers[PEER_METADATA_ID_HEADER] !== undefined;
    const peerSentValue = req.headers[PEER_METADATA_HEADER] !== undefined;
    this.call = inbound.start({
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: req.headers,
      protocolVersion: req.httpVersion,
      scheme: socket?.encrypted ? 'https' : 'http',
      clientAddress: socket?.remoteAddress,
      peerPrincipal: this.sourcePrincipal,
      localPrincipal: localIdentity(socket as Parameters<typeof localIdentity>[0]),
      httpRoute,
      socket,
    });
    this.context = this.call.context;
    // Read before our own response headers are set; an HTTP/2 session's socket carries other streams too.
    this.writtenAtStart = req.httpVersionMajor === 1 && typeof socket?.bytesWritten === 'number' ? socket.bytesWritten : undefined;
    exchanges.set(req, this);
    const own = inbound.responseHeaders;
    if (own !== undefined && !res.headersSent) {
      if (peerSentId) res.setHeader(PEER_METADATA_ID_HEADER, own.id);
      if (peerSentValue) res.setHeader(PEER_METADATA_HEADER, own.value);
    }
    // HTTP/1 metrics read the response's size off the socket; HTTP/2 and access logs (%BYTES_SENT% is the body) count what the app writes.
    if (this.writtenAtStart === undefined || inbound.logsAccess) countResponseBytes(res, this);
    // 'close' follows 'finish' on a completed response and also ends an aborted one.
    res.on('close', this.onEnd);
    this.localReply = refused ?? (policy === EMPTY_INBOUND_POLICY ? undefined : policy.decodeHeaders(this));
    if (this.localReply !== undefined) this.recordLocalReply(this.localReply);
  }

  /** A framework adapter joined an exchange the server began: it knows the route template. */
  adopt(httpRoute: string | undefined, routeAtEnd: RouteResolver | undefined): void {
    if (httpRoute !== undefined && this.httpRoute === undefined) {
      this.httpRoute = httpRoute;
      if (this.call.span.isRecording()) this.call.span.setAttribute('http.route', httpRoute);
    }
    this.routeAtEnd ??= routeAtEnd;
  }

  // InboundRequestView, for the policy filters.
  get method(): string {
    return this.req.method ?? 'GET';
  }

  get path(): string {
    const url = this.req.url ?? '/';
    const q = url.indexOf('?');
    return q === -1 ? url : url.slice(0, q);
  }

  /** Every value of a header joined with `,` (Envoy's view of a repeated header, as AuthorizationPolicy matches it). */
  header(name: string): string | undefined {
    return joinedHeader(this.req, name);
  }

  get sourcePrincipal(): string | undefined {
    return peerIdentity(this.req.socket as Parameters<typeof peerIdentity>[0]);
  }

  get sourceIp(): string | undefined {
    return this.req.socket?.remoteAddress;
  }

  get destinationIp(): string | undefined {
    return this.req.socket?.localAddress;
  }

  get destinationPort(): number | undefined {
    return this.req.socket?.localPort;
  }

  get requestedServerName(): string | undefined {
    const name = (this.req.socket as { servername?: string | false } | undefined)?.servername;
    return typeof name === 'string' ? name : undefined;
  }

  setRequestHeader(name: string, value: string): void {
    this.req.headers[name] = value;
  }

  get url(): string {
    return this.req.url ?? '/';
  }

  /** jwt_authn without `forward`: the app never sees the token (both of Node's header views). */
  removeRequestHeader(name: string): void {
    delete this.req.headers[name];
    const raw = this.req.rawHeaders;
    for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.toLowerCase() === name) raw.splice(i, 2);
  }

  /** Dynamic metadata by filter (jwt_authn's payload, read by the RBAC filters after it). */
  private dynamic: Record<string, Record<string, unknown>> | undefined;

  metadata(filter: string): Record<string, unknown> | undefined {
    return this.dynamic?.[filter];
  }

  setMetadata(filter: string, value: Record<string, unknown>): void {
    this.dynamic = { ...this.dynamic, [filter]: value };
  }

  /** An AUDIT (RBAC LOG) or dry-run policy matched: a span event, as Envoy leaves a hint for its access log. */
  rbacLog(event: { readonly policy: string; readonly action: string; readonly shadow: boolean }): void {
    const span = this.call.span;
    if (span.isRecording()) span.addEvent('meshlet.rbac', { 'meshlet.rbac.policy': event.policy, 'meshlet.rbac.action': event.action, 'meshlet.rbac.shadow': event.shadow });
  }

  addResponseHeader(name: string, value: string): void {
    if (!this.res.headersSent) this.res.setHeader(name, value);
  }

  /** The local reply's headers, `x-meshlet-flags` included, for the adapter to send. */
  localReplyHeaders(): Array<readonly [string, string]> {
    const r = this.localReply;
    if (r === undefined) return [];
    return [...r.headers, ['x-meshlet-flags', r.flags], ['content-type', 'text/plain']];
  }

  /** Sends the local reply on the raw response (adapters that do not go through their framework's reply). */
  sendLocalReply(): void {
    const r = this.localReply;
    if (r === undefined || this.res.headersSent) return;
    this.res.statusCode = r.status;
    for (const [name, value] of this.localReplyHeaders()) this.res.setHeader(name, value);
    this.res.setHeader('content-length', Buffer.byteLength(r.body));
    this.res.end(r.body);
  }

  private recordLocalReply(reply: InboundLocalReply): void {
    const { tracer } = this.mesh.telemetry;
    const span = this.call.span;
    if (reply.flags === 'RL') tracer.rateLimited(span, 'local', reply.source);
    else if (span.isRecording()) span.addEvent('meshlet.local_reply', { 'meshlet.flags': reply.flags, 'meshlet.details': reply.details, 'meshlet.source': reply.source });
  }

  private readonly onEnd = (): void => {
    if (this.done) return;
    this.done = true;
    const { req, res } = this;
    const finished = res.writableFinished;
    const statusCode = finished || res.headersSent ? res.statusCode : 0;
    // Envoy's DC: the downstream went away before the response was complete.
    const flags = this.localReply?.flags ?? (finished ? '-' : 'DC');
    const span = this.call.span;
    if (this.httpRoute === undefined && this.routeAtEnd !== undefined && span.isRecording()) {
      const route = this.routeAtEnd(req);
      if (route !== undefined) {
        this.httpRoute = route;
        span.setAttribute('http.route', route);
        span.updateName(`${normalizeMethod(req.method ?? 'GET')} ${route}`);
      }
    }
    const inbound = this.mesh.telemetry.inbound;
    if (!inbound.observes(span)) return span.end();
    inbound.finish(this.call, {
      statusCode,
      flags,
      requestBytes: this.requestWireBytes(),
      responseBytes: this.responseWireBytes(statusCode),
      ...(inbound.logsAccess && this.accessLogDetails()),
    });
  };

  /** What only access logs read: body sizes, response headers, the local reply's details. */
  private accessLogDetails(): Pick<InboundOutcome, 'requestBodyBytes' | 'responseBodyBytes' | 'responseHeader' | 'details'> {
    const length = Number(this.req.headers['content-length']);
    const res = this.res;
    return {
      requestBodyBytes: Number.isFinite(length) && length > 0 ? length : 0,
      responseBodyBytes: this.responseBytes,
      responseHeader: (name) => {
        const v = res.getHeader(name);
        return v === undefined ? undefined : Array.isArray(v) ? v[0] : String(v);
      },
      ...(this.localReply !== undefined && { details: this.localReply.details }),
    };
  }

  /** Request line, headers and body (its content-length; a chunked body counts as its headers only). */
  private requestWireBytes(): number {
    const req = this.req;
    const length = Number(req.headers['content-length']);
    return requestLineBytes(req.method ?? 'GET', req.url ?? '/') + headerBlockBytes(req.rawHeaders) + (Number.isFinite(length) && length > 0 ? length : 0);
  }

  /** HTTP/1: what the connection carried for this response (status line, headers, framing, body); HTTP/2: headers and body. */
  private responseWireBytes(statusCode: number): number {
    const socket = this.req.socket;
    if (this.writtenAtStart !== undefined && typeof socket?.bytesWritten === 'number' && socket.bytesWritten >= this.writtenAtStart) {
      const written = socket.bytesWritten - this.writtenAtStart;
      if (written > 0) return written;
    }
    if (statusCode === 0) return this.responseBytes;
    const res = this.res;
    // HTTP/2 has no status text (reading it warns); its :status is about a status line's size.
    return statusLineBytes(this.req.httpVersionMajor === 1 ? res.statusMessage : undefined) + headerBlockBytes(res.getHeaders() as Record<string, string | string[] | number | undefined>) + this.responseBytes;
  }
}
