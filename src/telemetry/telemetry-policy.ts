/**
 * Istio's Telemetry API (telemetry.istio.io/v1) resolved for one workload, and
 * the span decisions it implies.
 *
 * Resolution follows istiod: the root namespace's selector-less resource
 * (mesh-wide) < the workload namespace's selector-less resource < a resource
 * in the workload's namespace whose selector matches its labels. Tracing
 * fields are overridden per field, each level filling in what the levels
 * below left unset; metric overrides are applied in order, mesh first, so a
 * more specific level can re-enable what a parent disabled. Among equals the
 * first listed wins, as for PeerAuthentication.
 */
import { randomFillSync } from 'node:crypto';
import { type Context, type Span, TraceFlags, isSpanContextValid, trace, INVALID_SPAN_CONTEXT } from '@opentelemetry/api';
import type { RandomSource } from '../core/random.js';
import type { Series } from './metrics.js';

/** istio_requests_total (Istio's REQUEST_COUNT). */
export const REQUEST_COUNT = 1;
/** istio_request_duration_milliseconds (REQUEST_DURATION). */
export const REQUEST_DURATION = 2;
/** istio_request_bytes (REQUEST_SIZE). */
export const REQUEST_SIZE = 4;
/** istio_response_bytes (RESPONSE_SIZE). */
export const RESPONSE_SIZE = 8;
/** Every istio_* metric meshlet records: the mask when nothing is disabled. */
export const ALL_METRICS = REQUEST_COUNT | REQUEST_DURATION | REQUEST_SIZE | RESPONSE_SIZE;

/** Metric bits of Istio's metric names; the TCP and gRPC message metrics have no meshlet counterpart. */
const METRIC_BITS: Readonly<Record<string, number>> = {
  ALL_METRICS, REQUEST_COUNT, REQUEST_DURATION, REQUEST_SIZE, RESPONSE_SIZE,
};

/** Tracing of one side (CLIENT = outbound, SERVER = inbound) of a workload. */
export interface SideTracing {
  /** Percent (0–100) of root spans sampled by the mesh; undefined leaves the decision to the provider's sampler. */
  readonly samplingPercentage: number | undefined;
  /** False when `disableSpanReporting` is set: no span is started, trace context still propagates. */
  readonly reportSpans: boolean;
}

/** What the Telemetry resources selecting a workload ask of it. */
export interface TelemetryPolicy {
  /** Outbound requests. */
  readonly client: SideTracing;
  /** Inbound requests. */
  readonly server: SideTracing;
  /** istio_* metrics recorded with reporter="source", a mask of {@link REQUEST_COUNT} … bits. */
  readonly clientMetrics: number;
  /** istio_* metrics recorded with reporter="destination". */
  readonly serverMetrics: number;
}

/** The Telemetry resource shape this module reads (other kinds in a config are skipped). */
export interface TelemetryResource {
  kind?: string;
  metadata: { name: string; namespace?: string };
  spec?: {
    selector?: { matchLabels?: Record<string, string> };
    targetRef?: unknown;
    targetRefs?: unknown;
    tracing?: ReadonlyArray<{ match?: { mode?: string }; randomSamplingPercentage?: number; disableSpanReporting?: boolean }>;
    metrics?: ReadonlyArray<{
      providers?: ReadonlyArray<{ name?: string }>;
      overrides?: ReadonlyArray<{ match?: { metric?: string; customMetric?: string; mode?: string }; disabled?: boolean }>;
    }>;
    accessLogging?: ReadonlyArray<{
      match?: { mode?: string };
      providers?: ReadonlyArray<{ name?: string }>;
      disabled?: boolean;
      filter?: { expression?: string };
    }>;
  };
}

const selectorOf = (t: TelemetryResource): Record<string, string> | undefined => {
  const m = t.spec?.selector?.matchLabels;
  return m !== undefined && Object.keys(m).length > 0 ? m : undefined;
};

function selects(selector: Record<string, string>, labels: Readonly<Record<string, string>>): boolean {
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}

/**
 * The Telemetry resources that apply to a workload, least specific first:
 * the root namespace's selector-less one, the workload namespace's, and the
 * first in its namespace whose selector matches its labels.
 */
export function telemetryLevels(
  resources: readonly unknown[],
  workload: { namespace: string; labels?: Readonly<Record<string, string>> },
  options: { rootNamespace?: string } = {},
): TelemetryResource[] {
  const root = options.rootNamespace ?? 'istio-system';
  const labels = workload.labels ?? {};
  // targetRef(s) bind a resource to a Gateway or Service (waypoints); no meshlet workload is one.
  const all = (resources as TelemetryResource[]).filter((r) => r?.kind === 'Telemetry' && !r.spec?.targetRef && !r.spec?.targetRefs);
  const ns = (r: TelemetryResource): string => r.metadata.namespace ?? 'default';
  const mesh = all.find((r) => ns(r) === root && selectorOf(r) === undefined);
  const namespace = workload.namespace === root ? undefined : all.find((r) => ns(r) === workload.namespace && selectorOf(r) === undefined);
  const selected = all.find((r) => {
    const s = selectorOf(r);
    return ns(r) === workload.namespace && s !== undefined && selects(s, labels);
  });
  const levels = [mesh, namespace, selected].filter((r): r is TelemetryResource => r !== undefined);
  return levels;
}

/**
 * Resolves the Telemetry resources of a whole config for one workload.
 * Undefined when none applies: the mesh then behaves exactly as without the API.
 */
export function telemetryPolicyFor(
  resources: readonly unknown[],
  workload: { namespace: string; labels?: Readonly<Record<string, string>> },
  options: { rootNamespace?: string } = {},
): TelemetryPolicy | undefined {
  const levels = telemetryLevels(resources, workload, options);
  if (levels.length === 0) return undefined;

  const client = { samplingPercentage: undefined as number | undefined, reportSpans: true };
  const server = { samplingPercentage: undefined as number | undefined, reportSpans: true };
  const metrics = { client: ALL_METRICS, server: ALL_METRICS };
  for (const level of levels) {
    for (const t of level.spec?.tracing ?? []) {
      for (const side of sidesOf(t.match?.mode, client, server)) {
        if (t.randomSamplingPercentage !== undefined) side.samplingPercentage = t.randomSamplingPercentage;
        if (t.disableSpanReporting !== undefined) side.reportSpans = !t.disableSpanReporting;
      }
    }
    for (const m of level.spec?.metrics ?? []) {
      // meshlet's istio_* metrics are the Prometheus provider's; rules for other providers leave them alone.
      if (m.providers !== undefined && m.providers.length > 0 && !m.providers.some((p) => p.name === 'prometheus')) continue;
      for (const o of m.overrides ?? []) {
        if (o.disabled === undefined) continue;
        const bits = o.match?.customMetric !== undefined ? 0 : (METRIC_BITS[o.match?.metric ?? 'ALL_METRICS'] ?? 0);
        for (const side of sidesOf<'client' | 'server'>(o.match?.mode, 'client', 'server')) {
          metrics[side] = o.disabled ? metrics[side] & ~bits : metrics[side] | bits;
        }
      }
    }
  }
  return { client, server, clientMetrics: metrics.client, serverMetrics: metrics.server };
}

function sidesOf<T>(mode: string | undefined, client: T, server: T): T[] {
  return mode === 'CLIENT' ? [client] : mode === 'SERVER' ? [server] : [client, server];
}

/** True when the policy changes anything about spans (else the tracer keeps its untouched fast path). */
export function affectsTracing(policy: TelemetryPolicy | undefined): policy is TelemetryPolicy {
  if (policy === undefined) return false;
  const { client, server } = policy;
  return client.samplingPercentage !== undefined || server.samplingPercentage !== undefined || !client.reportSpans || !server.reportSpans;
}

/**
 * The span to use instead of starting one on the SDK, or undefined to start
 * one normally. Envoy's rules: a parent's sampling decision is always
 * honoured; only a root span (no valid parent) draws against the sampling
 * percentage; a side that does not report spans still carries the trace on.
 */
export function meshSpan(parent: Context, side: SideTracing, random: RandomSource): Span | undefined {
  const sc = trace.getSpanContext(parent);
  if (sc !== undefined && isSpanContextValid(sc)) {
    if (!side.reportSpans) return trace.wrapSpanContext(sc);
    // Unsampled upstream: record nothing here either, whatever the provider's root sampler would say.
    if (side.samplingPercentage !== undefined && (sc.traceFlags & TraceFlags.SAMPLED) === 0) return trace.wrapSpanContext(sc);
    return undefined;
  }
  const pct = side.samplingPercentage;
  if (pct === undefined) {
    // No decision is ours to make and no span is reported: nothing to carry on, as with no tracer at all.
    return side.reportSpans ? undefined : trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
  }
  const sampled = pct >= 100 || (pct > 0 && random() * 100 < pct);
  if (sampled && side.reportSpans) return undefined;
  // A fresh trace, so the decision (`-00`, or sampled but unreported) reaches the services downstream.
  return trace.wrapSpanContext({ ...freshIds(), traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE });
}

const idBytes = Buffer.alloc(24);

/** A random valid trace id (16 bytes) and span id (8 bytes); only for root spans the mesh decides itself. */
function freshIds(): { traceId: string; spanId: string } {
  randomFillSync(idBytes);
  // All-zero ids are invalid (W3C); vanishingly rare, but never emit one.
  if (idBytes.readBigUInt64BE(0) === 0n && idBytes.readBigUInt64BE(8) === 0n) idBytes[15] = 1;
  if (idBytes.readBigUInt64BE(16) === 0n) idBytes[23] = 1;
  return { traceId: idBytes.toString('hex', 0, 16), spanId: idBytes.toString('hex', 16, 24) };
}

/** Records one request on `series`, only the metrics in `mask` (allocation-free). */
export function recordMetrics(series: Series, mask: number, durationMs: number, requestBytes: number, responseBytes: number): void {
  if (mask === ALL_METRICS) {
    series.record(durationMs, requestBytes, responseBytes);
    return;
  }
  if ((mask & REQUEST_COUNT) !== 0) series.requests++;
  if ((mask & REQUEST_DURATION) !== 0) series.duration.observe(durationMs);
  if ((mask & REQUEST_SIZE) !== 0) series.requestBytes.observe(requestBytes);
  if ((mask & RESPONSE_SIZE) !== 0) series.responseBytes.observe(responseBytes);
}
