/**
 * Istio's standard request metrics (istio_requests_total,
 * istio_request_duration_milliseconds, istio_request_bytes,
 * istio_response_bytes) with Istio's names, labels and buckets, so Kiali and
 * the Istio Grafana dashboards read them unchanged.
 *
 * Why not prom-client's Counter/Histogram directly: their `labels(...)`
 * children re-validate and re-hash the label object on every observation,
 * which for 21 labels dominates the request path. Here a {@link Series} is
 * resolved once per (peer, route/cluster) and (response code, flags), then
 * recording is a few array increments. The series are exposed through
 * metric objects registered on a prom-client Registry (the user's, or one
 * per mesh), so `registry.metrics()` and the registry's formatting apply.
 */
import { Registry } from 'prom-client';
import type { Metric } from 'prom-client';
import { buildMetric, counterMetric, histogramMetric, type ExportedMetric } from './metric-export.js';

/**
 * Istio's canonical-service labels. Kiali's graph drops a series without
 * real values in them, so they are on by default, as in Istio;
 * `canonicalLabels: false` leaves them out.
 */
export const CANONICAL_LABELS = Object.freeze([
  'source_canonical_service', 'source_canonical_revision', 'destination_canonical_service', 'destination_canonical_revision',
] as const);

/**
 * The labels of every istio_* request metric, in the order istio/proxy's
 * stats filter emits them (source/extensions/filters/http/istio_stats).
 */
export const ISTIO_LABELS = Object.freeze([
  'reporter',
  'source_workload', 'source_canonical_service', 'source_canonical_revision', 'source_workload_namespace', 'source_principal',
  'source_app', 'source_version', 'source_cluster',
  'destination_workload', 'destination_workload_namespace', 'destination_principal', 'destination_app', 'destination_version',
  'destination_service', 'destination_canonical_service', 'destination_canonical_revision', 'destination_service_name',
  'destination_service_namespace', 'destination_cluster',
  'request_protocol', 'response_code', 'grpc_response_status', 'response_flags', 'connection_security_policy',
] as const);

/** A label of the istio_* metrics. */
export type IstioLabelName = (typeof ISTIO_LABELS)[number];

/** A label set; missing labels become `unknown` (Istio's value for "not known"). */
export type IstioLabels = Partial<Record<IstioLabelName, string>>;

/** Labels that vary per response; the rest identify a {@link SeriesFamily}. */
type ResponseLabel = 'response_code' | 'response_flags' | 'grpc_response_status';

/** istio_request_duration_milliseconds buckets (Istio's defaults). */
export const DURATION_BUCKETS_MS: readonly number[] = Object.freeze([
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
]);

/** istio_request_bytes / istio_response_bytes buckets (Istio's defaults). */
export const BYTE_BUCKETS: readonly number[] = Object.freeze([1, 10, 100, 1000, 10000, 100000, 1e6, 1e7, 1e8, 1e9]);

/**
 * Default cap on distinct series per metric; past it, new label sets collapse
 * into {@link OVERFLOW} ones. 2000 is the OpenTelemetry metrics SDK's default
 * cardinality limit (Envoy and Istio have none: they rely on stats eviction).
 */
export const DEFAULT_MAX_SERIES = 2000;

/**
 * Default cap on distinct peers per reporter: label sets that a caller's (or
 * an upstream's) metadata-exchange header chooses. Peer metadata is input
 * from the network, and every series costs ~67 exposition lines, so this is
 * what keeps `/metrics` small when a peer sends a new name on every request.
 */
export const DEFAULT_MAX_PEERS = 100;

/**
 * The value of the labels a peer chose once the cap is reached (OpenTelemetry
 * marks its overflow series with `otel.metric.overflow`; Istio's label set is
 * fixed, so the value says it). Distinct from `unknown`, which means "no metadata".
 */
export const OVERFLOW = 'overflow';

/** The labels a peer's metadata sets, by the side the peer is on: what {@link IstioMetricsOptions.maxPeers} counts. */
const PEER_LABELS = {
  source: ['source_workload', 'source_workload_namespace', 'source_principal', 'source_app', 'source_version', 'source_cluster',
    'source_canonical_service', 'source_canonical_revision'],
  destination: ['destination_workload', 'destination_workload_namespace', 'destination_principal', 'destination_app', 'destination_version',
    'destination_cluster', 'destination_canonical_service', 'destination_canonical_revision'],
} as const satisfies Record<string, readonly IstioLabelName[]>;

/** Options of {@link IstioMetrics}. */
export interface IstioMetricsOptions {
  /** Registry to register on; default a new one for this mesh (never prom-client's global default). */
  registry?: Registry;
  /** Cap on distinct series per metric (default {@link DEFAULT_MAX_SERIES}). */
  maxSeries?: number;
  /**
   * Cap on distinct peer label sets per reporter (default {@link DEFAULT_MAX_PEERS}).
   * Past it a new peer is counted with its metadata labels {@link OVERFLOW};
   * its mTLS principal, and the namespace the principal names, are kept.
   */
  maxPeers?: number;
  /** Istio's *_canonical_service / *_canonical_revision labels (default true, as Istio). */
  canonicalLabels?: boolean;
  /** The `tag` of `istio_build{component="proxy"}` (default {@link BUILD_TAG}). */
  buildTag?: string;
}

/** The version meshlet reports in `istio_build` and metadata exchange's ISTIO_VERSION (the Istio release it mirrors). */
export const BUILD_TAG = '1.24.0';

/** @internal Bucket counts of one histogram series; counts are per bucket (not cumulative), the last slot is +Inf. */
export class HistogramState {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!(value >= 0)) value = 0; // NaN or negative (clock step): count it, in the first bucket
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/** One label tuple of the four metrics: the thing recorded into on the request path. */
export class Series {
  /** The full label set (frozen), as exported. */
  readonly labels: Readonly<Record<string, string>>;
  /** istio_requests_total of this series. */
  requests = 0;
  /** @internal */ readonly duration = new HistogramState(DURATION_BUCKETS_MS);
  /** @internal */ readonly requestBytes = new HistogramState(BYTE_BUCKETS);
  /** @internal */ readonly responseBytes = new HistogramState(BYTE_BUCKETS);
  /** istio_request_messages_total / istio_response_messages_total (exported for gRPC series only, as Istio). */
  requestMessages = 0;
  responseMessages = 0;
  /** True when request_protocol is grpc: only those series carry the message counters. */
  readonly grpc: boolean;

  constructor(labels: Record<string, string>) {
    this.labels = Object.freeze(labels);
    this.grpc = labels.request_protocol === 'grpc';
  }

  /** Counts one request with its duration (ms) and body sizes (bytes). */
  record(durationMs: number, requestBytes: number, responseBytes: number): void {
    this.requests++;
    this.duration.observe(durationMs);
    this.requestBytes.observe(requestBytes);
    this.responseBytes.observe(responseBytes);
  }
}

/**
 * Every series sharing one peer/route identity (all labels but response_code,
 * response_flags and grpc_response_status). Obtain it once per cluster/route
 * or per inbound peer and keep it; {@link series} is then a Map lookup.
 */
export class SeriesFamily {
  private readonly byResponse = new Map<number | string, Series>();

  /** @internal */
  constructor(
    private readonly owner: IstioMetrics,
    /** The family's labels (response labels excluded). */
    readonly labels: Readonly<Record<string, string>>,
    /** True for the `unknown` family label sets collapse into past the cap. */
    readonly overflow: boolean,
  ) {}

  /** The series for a response; `flags` is Envoy's response flags (`-` for none), `grpcStatus` only for gRPC. */
  series(responseCode: number, flags = '-', grpcStatus?: number): Series {
    // Plain responses key by number: no string is built on the common path.
    const key = flags === '-' && grpcStatus === undefined ? responseCode : `${responseCode}|${flags}|${grpcStatus ?? ''}`;
    let s = this.byResponse.get(key);
    if (s === undefined) {
      s = this.owner.newSeries(this, responseCode, flags, grpcStatus);
      this.byResponse.set(key, s);
    }
    return s;
  }
}

/** The four istio_* request metrics of one mesh. */
export class IstioMetrics {
  /** The registry the metrics are registered on. */
  readonly registry: Registry;
  /** The label names, in export order. */
  readonly labelNames: readonly IstioLabelName[];
  private readonly maxSeries: number;
  private readonly maxPeers: number;
  /** Distinct peer label sets seen, per reporter (`source`, `destination`). */
  private readonly peers = new Map<string, Set<string>>();
  private readonly families = new Map<string, SeriesFamily>();
  private readonly overflow = new Map<string, SeriesFamily>();
  /** Every series once, in creation order: what is exported (a family may cache an overflow series too). */
  private readonly all: Series[] = [];
  private readonly metrics: ExportedMetric[];
  private closed = false;

  constructor(options: IstioMetricsOptions = {}) {
    this.registry = options.registry ?? new Registry();
    this.maxSeries = options.maxSeries ?? DEFAULT_MAX_SERIES;
    this.maxPeers = options.maxPeers ?? DEFAULT_MAX_PEERS;
    const canonical = new Set<string>(CANONICAL_LABELS);
    this.labelNames = options.canonicalLabels === false ? ISTIO_LABELS.filter((n) => !canonical.has(n)) : [...ISTIO_LABELS];
    const all = this.all;
    const reset = (): void => this.reset();
    this.metrics = [
      counterMetric('istio_requests_total', 'Total requests, as counted by the reporter (Istio standard metric).', all, reset, (s) => s.requests),
      histogramMetric('istio_request_duration_milliseconds', 'Request duration in milliseconds (Istio standard metric).', DURATION_BUCKETS_MS, (s) => s.duration, all, reset),
      histogramMetric('istio_request_bytes', 'Request body size in bytes (Istio standard metric).', BYTE_BUCKETS, (s) => s.requestBytes, all, reset),
      histogramMetric('istio_response_bytes', 'Response body size in bytes (Istio standard metric).', BYTE_BUCKETS, (s) => s.responseBytes, all, reset),
      counterMetric('istio_request_messages_total', 'gRPC messages sent by the client (Istio standard metric).', all, reset, (s) => s.requestMessages, true),
      counterMetric('istio_response_messages_total', 'gRPC messages sent by the server (Istio standard metric).', all, reset, (s) => s.responseMessages, true),
      buildMetric(options.buildTag ?? BUILD_TAG),
    ];
    // The registry only reads name/help/type/aggregator/get(); the cast is to its Counter|Histogram union type.
    for (const m of this.metrics) this.registry.registerMetric(m as unknown as Metric);
  }

  /** Number of distinct series (label tuples) so far, overflow ones included. */
  get size(): number {
    return this.all.length;
  }

  /**
   * The family for a peer/route label set (response labels are ignored).
   * Missing labels are `unknown`. Past the peer cap, a new peer's labels are
   * {@link OVERFLOW} but for its principal; past the series cap, new label
   * sets get an overflow family whose labels are all {@link OVERFLOW} except
   * reporter and request_protocol, so cardinality stays bounded.
   */
  family(labels: IstioLabels): SeriesFamily {
    const key = this.familyKey(labels);
    const fam = this.families.get(key);
    if (fam !== undefined) return fam;
    // Families count against the cap too, so family() alone cannot grow the map without bound.
    if (this.all.length >= this.maxSeries || this.families.size >= this.maxSeries) return this.overflowFamily(labels);
    const side = labels.reporter === 'destination' ? 'source' : labels.reporter === 'source' ? 'destination' : undefined;
    if (side !== undefined && !this.admitPeer(labels.reporter!, side, labels)) {
      const capped = peerOverflow(labels, side);
      const cappedKey = this.familyKey(capped);
      return this.families.get(cappedKey) ?? this.newFamily(cappedKey, capped);
    }
    return this.newFamily(key, labels);
  }

  private familyKey(labels: IstioLabels): string {
    let key = '';
    for (const name of this.labelNames) if (!isResponseLabel(name)) key += `${labelValue(labels[name])}\u0001`;
    return key;
  }

  private newFamily(key: string, labels: IstioLabels): SeriesFamily {
    const famLabels: Record<string, string> = {};
    for (const name of this.labelNames) if (!isResponseLabel(name)) famLabels[name] = labelValue(labels[name]);
    const fam = new SeriesFamily(this, Object.freeze(famLabels), false);
    this.families.set(key, fam);
    return fam;
  }

  /** Counts the peer of a label set; false when it is new and the cap is reached. */
  private admitPeer(reporter: string, side: keyof typeof PEER_LABELS, labels: IstioLabels): boolean {
    let seen = this.peers.get(reporter);
    if (seen === undefined) this.peers.set(reporter, (seen = new Set()));
    let peer = '';
    for (const name of PEER_LABELS[side]) peer += `${labelValue(labels[name])}\u0001`;
    if (seen.has(peer)) return true;
    if (seen.size >= this.maxPeers) return false;
    seen.add(peer);
    return true;
  }

  /** The series for a full label set (convenience over {@link family} + {@link SeriesFamily.series}). */
  series(labels: IstioLabels): Series {
    const code = Number(labels.response_code ?? 0);
    const grpc = labels.grpc_response_status;
    return this.family(labels).series(code, labels.response_flags ?? '-', grpc === undefined || grpc === '' ? undefined : Number(grpc));
  }

  /** Records one request on a series. */
  record(series: Series, durationMs: number, requestBytes: number, responseBytes: number): void {
    series.record(durationMs, requestBytes, responseBytes);
  }

  /** The Prometheus text exposition of the istio_* metrics (not the rest of the registry). */
  async text(): Promise<string> {
    const parts = await Promise.all(this.metrics.map((m) => this.registry.getSingleMetricAsString(m.name)));
    return `${parts.join('\n\n')}\n`;
  }

  /** Content type of {@link text}. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Zeroes every series (keeps them, as prom-client's resetMetrics does). */
  reset(): void {
    for (const s of this.all) {
      s.requests = 0;
      s.requestMessages = 0;
      s.responseMessages = 0;
      s.duration.reset();
      s.requestBytes.reset();
      s.responseBytes.reset();
    }
  }

  /** Unregisters the metrics from the registry; idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const m of this.metrics) {
      if ((this.registry.getSingleMetric(m.name) as unknown) === m) this.registry.removeSingleMetric(m.name);
    }
  }

  /** @internal called by a family for a response it has not seen */
  newSeries(fam: SeriesFamily, code: number, flags: string, grpcStatus: number | undefined): Series {
    // Past the cap a new response collapses into the overflow family of the same reporter and protocol.
    // Overflow families still grow, but only by response code × flags: bounded by HTTP itself.
    if (this.all.length >= this.maxSeries && !fam.overflow) return this.overflowFamily(fam.labels).series(code, flags, grpcStatus);
    const labels: Record<string, string> = {};
    for (const name of this.labelNames) {
      if (name === 'response_code') labels[name] = String(code);
      else if (name === 'response_flags') labels[name] = flags;
      else if (name === 'grpc_response_status') labels[name] = grpcStatus === undefined ? '' : String(grpcStatus);
      else labels[name] = fam.labels[name]!;
    }
    const series = new Series(labels);
    this.all.push(series);
    return series;
  }

  private overflowFamily(labels: IstioLabels | Readonly<Record<string, string>>): SeriesFamily {
    const reporter = labelValue(labels.reporter);
    const protocol = labelValue(labels.request_protocol);
    const key = `${reporter}\u0001${protocol}`;
    let fam = this.overflow.get(key);
    if (fam === undefined) {
      const famLabels: Record<string, string> = {};
      for (const name of this.labelNames) {
        if (!isResponseLabel(name)) famLabels[name] = name === 'reporter' ? reporter : name === 'request_protocol' ? protocol : OVERFLOW;
      }
      fam = new SeriesFamily(this, Object.freeze(famLabels), true);
      this.overflow.set(key, fam);
    }
    return fam;
  }

}

/**
 * A peer's labels past the peer cap: what its metadata chose becomes
 * {@link OVERFLOW}; what mTLS authenticated stays (the principal, and the
 * namespace it names, as Istio's stats filter takes the namespace from the SAN).
 */
function peerOverflow(labels: IstioLabels, side: keyof typeof PEER_LABELS): IstioLabels {
  const out: IstioLabels = { ...labels };
  const principal = labels[`${side}_principal`];
  for (const name of PEER_LABELS[side]) out[name] = OVERFLOW;
  const namespace = principal === undefined ? undefined : principalNamespace(principal);
  out[`${side}_principal`] = labelValue(principal);
  if (namespace !== undefined) out[`${side}_workload_namespace`] = namespace;
  return out;
}

/**
 * The namespace in a SPIFFE id (`spiffe://<td>/ns/<namespace>/sa/<sa>`), as
 * Istio's stats filter reads it from the peer's URI SAN; undefined when it names none.
 */
export function principalNamespace(principal: string): string | undefined {
  const begin = principal.indexOf('/ns/');
  if (begin === -1) return undefined;
  const end = principal.indexOf('/', begin + 4);
  const ns = principal.slice(begin + 4, end === -1 ? undefined : end);
  return ns === '' ? undefined : ns;
}

function labelValue(v: string | undefined): string {
  return v === undefined || v === '' ? 'unknown' : v;
}

/** True for the labels that vary per response (not part of a {@link SeriesFamily}'s identity). */
export function isResponseLabel(name: string): name is ResponseLabel {
  return name === 'response_code' || name === 'response_flags' || name === 'grpc_response_status';
}
