/**
 * Framework-neutral inbound telemetry: what the Express middleware, the
 * Fastify plugin and the gRPC server interceptor each do around a handler.
 * `start` strips and decodes the peer's metadata-exchange headers, extracts
 * the trace context and starts the SERVER span; the adapter runs the handler
 * inside `call.context` (AsyncLocalStorage via OTel's context manager, or its
 * own); `finish` ends the span and records `reporter="destination"` metrics.
 */
import type { Context, Span } from '@opentelemetry/api';
import { isSpanContextValid, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import type { IstioLabels, IstioMetrics, SeriesFamily } from './metrics.js';
import type { PeerMetadataCache, PeerMetadataHeaders } from './peer-metadata.js';
import { peerLabels, takePeerMetadataHeaders } from './peer-metadata.js';
import type { InboundHeaders, MeshPropagator } from './propagation.js';
import { recordMetrics } from './telemetry-policy.js';
import { Reporter } from './reporter.js';
import type { MeshTracer } from './tracing.js';
import { RecordedAccessLogEntry, responseCodeDetailsOf } from './access-log-entry.js';
import { writeAccessLogs } from './access-log.js';
import { inboundParent } from './otel-coexistence.js';

/**
 * The context a request's handler runs in. A request that carries no trace
 * and gets no span (no provider, or none recording) has nothing to
 * propagate: it runs in the root context, which the adapters enter without
 * AsyncLocalStorage (see run-in-context.ts).
 */
function contextOf(extracted: Context, span: Span): Context {
  if (extracted === ROOT_CONTEXT && !span.isRecording() && !isSpanContextValid(span.spanContext())) return ROOT_CONTEXT;
  return trace.setSpan(extracted, span);
}

/** An inbound request as an adapter sees it. */
export interface InboundRequestInfo {
  method: string;
  /** Request target: path and optional query (`/add?x=1`). */
  url: string;
  /** Node's header record; the metadata-exchange headers are deleted from it. */
  headers: InboundHeaders;
  /** `http` (default) or `grpc`. */
  protocol?: 'http' | 'grpc';
  /** `1.1` or `2`. */
  protocolVersion?: string;
  /** `http` or `https`. */
  scheme?: string;
  /** Peer address. */
  clientAddress?: string;
  /** The peer's mTLS identity (`spiffe://…`) when the connection was mutual TLS. */
  peerPrincipal?: string;
  /** The identity of the certificate this workload presented on the connection (destination_principal), when TLS. */
  localPrincipal?: string;
  /** The route template, when the framework knows it (`/users/:id`). */
  httpRoute?: string;
  /** For gRPC. */
  rpcService?: string;
  rpcMethod?: string;
  /** The connection, read only by access logs at the end (addresses, SNI). */
  socket?: InboundSocket;
  /** The peer as `ip:port`, when there is no socket to read (gRPC's getPeer()). */
  peer?: string;
}

/** What access logs read of an inbound connection (a net.Socket / TLSSocket has it all). */
export interface InboundSocket {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  /** The SNI the client asked for (TLSSocket). */
  readonly servername?: string | false | null | undefined;
}

/** How an inbound request ended. */
export interface InboundOutcome {
  statusCode: number;
  /** Envoy response flags of a mesh-generated reply (inbound rate limit `RL` …), `-` for none. */
  flags?: string;
  grpcStatus?: number;
  /** Bytes received on the wire: request headers and body, as Envoy's downstream bytes meter counts them. */
  requestBytes?: number;
  /** Bytes sent on the wire: response headers, body and trailers. */
  responseBytes?: number;
  /** gRPC messages received from the client / sent to it (istio_request/response_messages_total). */
  requestMessages?: number;
  responseMessages?: number;
  /** Body bytes only (access logs' %BYTES_RECEIVED% / %BYTES_SENT%). */
  requestBodyBytes?: number;
  responseBodyBytes?: number;
  /** Reads a response header, for %RESP(…)% and `response.headers[…]`. */
  responseHeader?: (name: string) => string | undefined;
  /** %RESPONSE_CODE_DETAILS% when the adapter knows better than the flag (`rbac_access_denied_matched_policy[…]`). */
  details?: string;
  error?: unknown;
}

/** One inbound request in flight. */
export interface InboundCall {
  /** The SERVER span. */
  readonly span: Span;
  /** Context to run the handler in: the extracted trace with the SERVER span active. */
  readonly context: Context;
  /** The metric series family of this peer (source_* from its metadata) and this workload. */
  readonly family: SeriesFamily;
  /** Start time from the telemetry clock (ms). */
  readonly startMs: number;
  /** The request, for access logs. */
  readonly request: InboundRequestInfo;
}

/** Dependencies of {@link InboundTelemetry}; a mesh builds them once. */
export interface InboundTelemetryOptions {
  propagator: MeshPropagator;
  tracer: MeshTracer;
  metrics: IstioMetrics;
  peers: PeerMetadataCache;
  /** This workload's labels as a destination (destination_*), including the service it serves. */
  destination: IstioLabels;
  /** Our own metadata-exchange headers, sent back on responses so callers learn destination_* labels. */
  ownHeaders?: PeerMetadataHeaders;
  /** Clock in ms; default performance.now. */
  now?: () => number;
  /**
   * Distinct (peer metadata value, principal) pairs whose family is cached
   * (default 512; others are resolved per request). The cardinality cap
   * itself is the metrics' `maxPeers`.
   */
  maxPeers?: number;
  /** Record istio_* metrics (default true); false wins over any Telemetry resource. */
  recordMetrics?: boolean;
}

/** The inbound half of a mesh's telemetry. */
export class InboundTelemetry extends Reporter {
  private readonly families = new Map<string, SeriesFamily>();
  private readonly now: () => number;
  private readonly maxPeers: number;

  constructor(private readonly options: InboundTelemetryOptions) {
    super(options.recordMetrics !== false);
    this.now = options.now ?? (() => performance.now());
    this.maxPeers = options.maxPeers ?? 512;
  }

  /** Response headers to add (metadata exchange), or undefined when the mesh has no identity to share. */
  get responseHeaders(): PeerMetadataHeaders | undefined {
    return this.options.ownHeaders;
  }

  /** Starts telemetry for an inbound request; call {@link finish} exactly once when it ends. */
  start(req: InboundRequestInfo): InboundCall {
    const { propagator, tracer } = this.options;
    const peerValue = takePeerMetadataHeaders(req.headers);
    const family = this.familyFor(peerValue, req.peerPrincipal, req.localPrincipal, req.protocol ?? 'http');
    // Nested under an OTel http instrumentation's SERVER span when one is active for this request.
    const extracted = inboundParent(propagator.extract(req.headers, ROOT_CONTEXT));
    const q = req.url.indexOf('?');
    const span = tracer.startServerSpan(extracted, {
      method: req.method,
      path: q === -1 ? req.url : req.url.slice(0, q),
      query: q === -1 ? undefined : req.url.slice(q + 1),
      scheme: req.scheme,
      clientAddress: req.clientAddress,
      protocol: req.protocol,
      protocolVersion: req.protocolVersion,
      httpRoute: req.httpRoute,
      rpcService: req.rpcService,
      rpcMethod: req.rpcMethod,
      headers: req.headers,
    });
    return { span, context: contextOf(extracted, span), family, startMs: this.now(), request: req };
  }

  /** Ends the SERVER span and records the destination-side istio_* metrics. */
  finish(call: InboundCall, outcome: InboundOutcome): void {
    const flags = outcome.flags ?? '-';
    this.options.tracer.endServerSpan(call.span, { statusCode: outcome.statusCode, flags, grpcStatus: outcome.grpcStatus, error: outcome.error });
    if (this.accessLogs.length > 0) this.logAccess(call, outcome, flags);
    const mask = this.metricMask;
    if (mask === 0) return;
    const series = call.family.series(outcome.statusCode, flags, outcome.grpcStatus);
    recordMetrics(series, mask, this.now() - call.startMs, outcome.requestBytes ?? 0, outcome.responseBytes ?? 0);
    if (outcome.requestMessages !== undefined) series.requestMessages += outcome.requestMessages;
    if (outcome.responseMessages !== undefined) series.responseMessages += outcome.responseMessages;
  }

  private logAccess(call: InboundCall, outcome: InboundOutcome, flags: string): void {
    const req = call.request;
    const socket = req.socket;
    const durationMs = Math.max(0, Math.floor(this.now() - call.startMs));
    const local = socket === undefined ? undefined : joinHostPort(socket.localAddress, socket.localPort);
    writeAccessLogs(this.accessLogs, new RecordedAccessLogEntry({
      startTime: Date.now() - durationMs,
      method: req.method,
      path: req.url,
      protocol: req.protocolVersion === '2' || req.protocolVersion === '2.0' ? 'HTTP/2' : `HTTP/${req.protocolVersion ?? '1.1'}`,
      authority: headerOf(req.headers, ':authority') ?? headerOf(req.headers, 'host'),
      responseCode: outcome.statusCode,
      responseFlags: flags,
      responseCodeDetails: outcome.details ?? responseCodeDetailsOf(flags, outcome.statusCode),
      upstreamTransportFailureReason: undefined,
      grpcStatus: outcome.grpcStatus,
      bytesReceived: outcome.requestBodyBytes ?? 0,
      bytesSent: outcome.responseBodyBytes ?? 0,
      durationMs,
      // The app is the inbound "upstream": it serves on the address the request arrived at (Envoy: inbound|port||).
      upstreamHost: local,
      upstreamCluster: socket?.localPort === undefined ? undefined : `inbound|${socket.localPort}||`,
      upstreamLocalAddress: undefined,
      downstreamLocalAddress: local,
      downstreamRemoteAddress: socket === undefined ? req.peer : joinHostPort(socket.remoteAddress, socket.remotePort),
      requestedServerName: typeof socket?.servername === 'string' && socket.servername !== '' ? socket.servername : undefined,
      routeName: 'default',
      mtls: req.peerPrincipal !== undefined && req.localPrincipal !== undefined,
    }, req.headers as Record<string, string | string[] | undefined>, outcome.responseHeader));
  }

  private familyFor(peerValue: string | undefined, principal: string | undefined, local: string | undefined, protocol: string): SeriesFamily {
    const key = `${protocol}\u0001${principal ?? ''}\u0001${local ?? ''}\u0001${peerValue ?? ''}`;
    let fam = this.families.get(key);
    if (fam !== undefined) return fam;
    const { metrics, peers, destination } = this.options;
    const labels: IstioLabels = {
      ...destination,
      ...peerLabels(peers.get(peerValue), 'source', principal),
      ...(local !== undefined && { destination_principal: local }),
      reporter: 'destination',
      request_protocol: protocol,
      // The stats filter: mutual_tls when both ends presented a certificate, else none.
      connection_security_policy: principal && local ? 'mutual_tls' : 'none',
    };
    fam = metrics.family(labels);
    // Peer metadata is caller input: bound the map; metrics.family caps the distinct peers it labels.
    if (this.families.size < this.maxPeers) this.families.set(key, fam);
    return fam;
  }
}

function headerOf(headers: InboundHeaders, name: string): string | undefined {
  const v = (headers as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(v) ? v[0] : v;
}

/** `ip:port`, `[v6]:port`. */
export function joinHostPort(host: string | undefined, port: number | undefined): string | undefined {
  if (host === undefined) return undefined;
  const h = host.includes(':') ? `[${host}]` : host;
  return port === undefined ? h : `${h}:${port}`;
}
