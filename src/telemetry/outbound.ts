/**
 * Framework-neutral outbound telemetry, for the HTTP dispatcher and the gRPC
 * client interceptor: a CLIENT span per request (and per attempt), trace and
 * metadata-exchange headers injected, `reporter="source"` metrics recorded
 * with destination_* labels learnt from the upstream's response metadata.
 */
import type { Context, Span } from '@opentelemetry/api';
import { trace } from '@opentelemetry/api';
import type { IstioLabels, IstioMetrics, SeriesFamily } from './metrics.js';
import type { PeerMetadataCache, PeerMetadataHeaders } from './peer-metadata.js';
import { PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER, peerLabels } from './peer-metadata.js';
import type { MeshPropagator, OutboundHeaders } from './propagation.js';
import { recordMetrics } from './telemetry-policy.js';
import { Reporter } from './reporter.js';
import type { ClientSpanInfo, MeshTracer } from './tracing.js';
import { RecordedAccessLogEntry, responseCodeDetailsOf } from './access-log-entry.js';
import { writeAccessLogs } from './access-log.js';
import type { HeaderSource } from './headers.js';

/** The destination of an outbound request, resolved once per route/cluster and kept. */
export interface OutboundTarget {
  /** Service FQDN (`calculate.default.svc.cluster.local`), or `unknown` for passthrough hosts. */
  service: string;
  /** Short name (`calculate`). */
  serviceName?: string;
  serviceNamespace?: string;
  /** `http` or `grpc`. */
  protocol?: 'http' | 'grpc';
  /** The Envoy cluster name, for spans. */
  cluster?: string;
  /** The route name, for spans. */
  route?: string;
}

/** How an outbound request ended. */
export interface OutboundOutcome {
  /** Response status, the local reply's status for mesh replies, 0 when no response at all. */
  statusCode: number;
  flags?: string;
  grpcStatus?: number;
  /** Bytes sent on the wire: request headers and body (Envoy's upstream view of the downstream bytes meter). */
  requestBytes?: number;
  /** Bytes received on the wire: response headers, body and trailers. */
  responseBytes?: number;
  /** gRPC messages sent / received (istio_request/response_messages_total). */
  requestMessages?: number;
  responseMessages?: number;
  /** The upstream's `x-envoy-peer-metadata` response header: gives destination_workload/app/version. */
  peerMetadata?: string | string[];
  /** The upstream's mTLS identity, when the connection was mutual TLS. */
  peerPrincipal?: string;
  /** The identity of the certificate this workload presented to the upstream (source_principal), when TLS. */
  localPrincipal?: string;
  /** The endpoint of the last try (`ip:port`), for %UPSTREAM_HOST%. */
  upstreamHost?: string;
  /** Body bytes only (access logs' %BYTES_SENT% / %BYTES_RECEIVED%). */
  requestBodyBytes?: number;
  responseBodyBytes?: number;
  /** The upstream's response headers, for %RESP(…)%. */
  responseHeaders?: HeaderSource;
  /** `HTTP/1.1` or `HTTP/2` as sent upstream (default by protocol: gRPC HTTP/2, else HTTP/1.1). */
  protocol?: string;
  error?: unknown;
}

/** One outbound request in flight. */
export class OutboundCall {
  private ownContext: Context | undefined;

  /** @internal made by {@link OutboundTelemetry.start} */
  constructor(
    readonly span: Span,
    /** The context the span was started under (the inbound request's, if any). */
    readonly parent: Context,
    /** True when `span` carries a trace of its own (recording, or a root the mesh sampled out); false when it is the parent's view. */
    readonly carries: boolean,
    readonly target: OutboundTargetHandle,
    readonly startMs: number,
    /** What the request span was made from; retry spans repeat it. */
    readonly info: ClientSpanInfo,
  ) {}

  /** The context of the request's span, for retry spans; built on first use (headers are written without it). */
  get context(): Context {
    if (this.ownContext === undefined) this.ownContext = this.carries ? trace.setSpan(this.parent, this.span) : this.parent;
    return this.ownContext;
  }
}

/** The CLIENT span of one retry, a child of its request's span. */
export interface OutboundRetry {
  readonly span: Span;
  /** The request span's context. */
  readonly parent: Context;
  readonly carries: true;
  /** The retry span's context. */
  readonly context: Context;
}

/** What trace headers are written from: a request or one of its retries. */
export type TraceCarrier = Pick<OutboundCall, 'span' | 'parent' | 'carries'>;

/** How one retry ended. */
export interface OutboundRetryOutcome {
  /** The upstream's status, when it answered. */
  statusCode?: number;
  /** The try's gRPC status, for gRPC calls. */
  grpcStatus?: number;
  error?: unknown;
}

/** Dependencies of {@link OutboundTelemetry}. */
export interface OutboundTelemetryOptions {
  propagator: MeshPropagator;
  tracer: MeshTracer;
  metrics: IstioMetrics;
  peers: PeerMetadataCache;
  /** This workload's labels as a source (source_*). */
  source: IstioLabels;
  /** Our metadata-exchange headers, sent on every outbound request. */
  ownHeaders?: PeerMetadataHeaders;
  now?: () => number;
  /** Record istio_* metrics (default true); false wins over any Telemetry resource. */
  recordMetrics?: boolean;
}

/**
 * A destination's metric families, keyed by what the upstream told us about
 * itself. Make one per route/cluster (it is cheap to keep) with
 * {@link OutboundTelemetry.target}.
 */
export class OutboundTargetHandle {
  private readonly byPeer = new Map<string, SeriesFamily>();

  /** @internal */
  constructor(
    readonly info: OutboundTarget,
    private readonly base: IstioLabels,
    private readonly metrics: IstioMetrics,
    private readonly peers: PeerMetadataCache,
  ) {}

  /** The family for the upstream's metadata value, its principal and ours (all optional). */
  family(peerMetadata: string | undefined, principal: string | undefined, local?: string): SeriesFamily {
    const key = `${principal ?? ''}\u0001${local ?? ''}\u0001${peerMetadata ?? ''}`;
    let fam = this.byPeer.get(key);
    if (fam === undefined) {
      fam = this.metrics.family({
        ...this.base, ...peerLabels(this.peers.get(peerMetadata), 'destination', principal), ...(local !== undefined && { source_principal: local }),
      });
      // An upstream sends a handful of distinct values (one per workload version); bound it anyway.
      if (this.byPeer.size < 64) this.byPeer.set(key, fam);
    }
    return fam;
  }
}

const SVC = '.svc.cluster.local';

/**
 * A Kubernetes-shaped host (`name.ns.svc.cluster.local`) names its service
 * and namespace; any other host (a ServiceEntry's `example.de`) is its own
 * service name, as istiod names ServiceEntry services, and its namespace is
 * not known from the host alone.
 */
export function serviceNameOf(host: string): string {
  if (!host.endsWith(SVC)) return host;
  const dot = host.indexOf('.');
  return dot > 0 && dot < host.length - SVC.length ? host.slice(0, dot) : host;
}

/** The namespace of a Kubernetes-shaped host, else undefined (the label reads `unknown`). */
export function serviceNamespaceOf(host: string): string | undefined {
  if (!host.endsWith(SVC)) return undefined;
  const dot = host.indexOf('.');
  const end = host.length - SVC.length;
  return dot > 0 && dot < end ? host.slice(dot + 1, end) : undefined;
}

/** The outbound half of a mesh's telemetry. */
export class OutboundTelemetry extends Reporter {
  private readonly now: () => number;

  constructor(private readonly options: OutboundTelemetryOptions) {
    super(options.recordMetrics !== false);
    this.now = options.now ?? (() => performance.now());
  }

  /** A handle for a destination; build once per route/cluster at snapshot compile time. */
  target(info: OutboundTarget): OutboundTargetHandle {
    const base: IstioLabels = {
      ...this.options.source,
      reporter: 'source',
      destination_service: info.service,
      destination_service_name: info.serviceName ?? serviceNameOf(info.service),
      destination_service_namespace: info.serviceNamespace ?? serviceNamespaceOf(info.service),
      request_protocol: info.protocol ?? 'http',
      // Istio's source reporter does not know the policy the server enforced.
      connection_security_policy: 'unknown',
    };
    return new OutboundTargetHandle(info, base, this.options.metrics, this.options.peers);
  }

  /**
   * Starts the CLIENT span of a request under `parent` (the active context —
   * the inbound request's when called from a handler).
   */
  start(parent: Context, target: OutboundTargetHandle, request: Omit<ClientSpanInfo, 'route' | 'cluster' | 'protocol'>): OutboundCall {
    const t = target.info;
    const info = request as ClientSpanInfo;
    info.route = t.route;
    info.cluster = t.cluster;
    info.protocol = t.protocol;
    const tracer = this.options.tracer;
    const span = tracer.startClientSpan(parent, info);
    // A span that records nothing carries the parent's trace context (or none): keep the parent and
    // skip building a new context per request. Under a Telemetry policy it may carry a trace the
    // mesh started itself (an unsampled root), which must reach the headers.
    return new OutboundCall(span, parent, span.isRecording() || tracer.policy !== undefined, target, this.now(), info);
  }

  /**
   * Starts the span of retry number `resendCount` (1 for the first retry):
   * the first try is the request span itself, each retry a CLIENT child of
   * it. Undefined when the request span records nothing (the retry then
   * carries the request's context).
   */
  startRetry(call: OutboundCall, resendCount: number): OutboundRetry | undefined {
    if (!call.span.isRecording()) return undefined;
    const parent = call.context;
    const span = this.options.tracer.startAttemptSpan(parent, call.info, resendCount);
    return { span, parent, carries: true, context: trace.setSpan(parent, span) };
  }

  /** Ends a retry's span with what the upstream answered (or the error that ended the try). */
  finishRetry(retry: OutboundRetry, outcome: OutboundRetryOutcome): void {
    this.options.tracer.endClientSpan(retry.span, outcome);
  }

  /**
   * Writes the trace headers of a request (or retry) and our metadata-exchange
   * headers into its outbound headers. The span's own context is never built
   * for this: its span context is read directly, the rest from the parent.
   */
  injectHeaders(carrier: TraceCarrier, headers: OutboundHeaders): void {
    this.options.propagator.inject(carrier.parent, headers, carrier.carries ? carrier.span.spanContext() : undefined);
    const own = this.options.ownHeaders;
    if (own === undefined) return;
    if (Array.isArray(headers)) headers.push(PEER_METADATA_ID_HEADER, own.id, PEER_METADATA_HEADER, own.value);
    else {
      headers[PEER_METADATA_ID_HEADER] = own.id;
      headers[PEER_METADATA_HEADER] = own.value;
    }
  }

  /** Ends the CLIENT span and records the source-side istio_* metrics. */
  finish(call: OutboundCall, outcome: OutboundOutcome): void {
    const flags = outcome.flags ?? '-';
    this.options.tracer.endClientSpan(call.span, { statusCode: outcome.statusCode, flags, grpcStatus: outcome.grpcStatus, error: outcome.error });
    if (this.accessLogs.length > 0) this.logAccess(call, outcome, flags);
    const mask = this.metricMask;
    if (mask === 0) return;
    const peer = Array.isArray(outcome.peerMetadata) ? outcome.peerMetadata[0] : outcome.peerMetadata;
    const series = call.target.family(peer, outcome.peerPrincipal, outcome.localPrincipal).series(outcome.statusCode, flags, outcome.grpcStatus);
    recordMetrics(series, mask, this.now() - call.startMs, outcome.requestBytes ?? 0, outcome.responseBytes ?? 0);
    if (outcome.requestMessages !== undefined) series.requestMessages += outcome.requestMessages;
    if (outcome.responseMessages !== undefined) series.responseMessages += outcome.responseMessages;
  }

  private logAccess(call: OutboundCall, outcome: OutboundOutcome, flags: string): void {
  const { info, target } = call;
  const { authority, path } = splitUrl(info.url);
  const durationMs = Math.max(0, Math.floor(this.now() - call.startMs));
  writeAccessLogs(this.accessLogs, new RecordedAccessLogEntry({
    startTime: Date.now() - durationMs,
    method: info.method,
    path,
    protocol: outcome.protocol ?? (target.info.protocol === 'grpc' ? 'HTTP/2' : 'HTTP/1.1'),
    authority,
    responseCode: outcome.statusCode,
    responseFlags: flags,
    responseCodeDetails: responseCodeDetailsOf(flags, outcome.statusCode),
    upstreamTransportFailureReason: undefined,
    grpcStatus: outcome.grpcStatus,
    bytesReceived: outcome.requestBodyBytes ?? 0,
    bytesSent: outcome.responseBodyBytes ?? 0,
    durationMs,
    upstreamHost: outcome.upstreamHost,
    upstreamCluster: target.info.cluster,
    upstreamLocalAddress: undefined,
    // A sidecar's outbound listener sees the service address the app dialled; so does the mesh.
    downstreamLocalAddress: info.serverAddress === undefined ? undefined : `${info.serverAddress}${info.serverPort === undefined ? '' : `:${info.serverPort}`}`,
    downstreamRemoteAddress: undefined,
    requestedServerName: undefined,
    routeName: target.info.route,
    mtls: outcome.peerPrincipal !== undefined && outcome.localPrincipal !== undefined,
  }, info.headers, outcome.responseHeaders));
  }
}

/** The authority and path of `scheme://authority/path?query`. */
function splitUrl(url: string): { authority: string; path: string } {
  const start = url.indexOf('//') + 2;
  const slash = url.indexOf('/', start);
  return slash === -1 ? { authority: url.slice(start), path: '/' } : { authority: url.slice(start, slash), path: url.slice(slash) };
}
