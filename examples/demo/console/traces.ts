/**
 * The in-process trace store behind the traces view: every workload's tracer
 * ships its finished spans here over IPC (see ../services/workload.ts), and
 * the store groups them by trace. What it keeps is what shows the scenarios:
 *
 * - the demo's own traffic (console pages and their polling, static files,
 *   the scenario API) is dropped, so the list is the user's requests;
 * - traces with an error, a local reply (a response flag) or a slow call are
 *   "notable" and evicted last, so the retry trace outlives minutes of clicks;
 * - each trace is tagged with the scenario in force when it started;
 * - spans named only by their HTTP method (OpenTelemetry's name for a client
 *   span, or a server span without a route) get the route or path too.
 */
import type { ShippedSpan } from '../services/workload.js';

/** One row of the recent-traces list. */
export interface TraceSummary {
  traceId: string;
  /** The root span's name (or the earliest span's when the root is missing). */
  name: string;
  /** The scenario in force when the trace started. */
  scenario: string | undefined;
  services: string[];
  spans: number;
  errors: number;
  /** Response flags seen in the trace (UT, FI, RL …). */
  flags: string[];
  /** Kept longest: an error, a response flag, or a call of a second or more. */
  notable: boolean;
  start: number;
  durationMs: number;
}

/** Paths of the demo's own traffic, not the user's: console, metrics, scenario API, static files, the mTLS probe's /healthz. */
const DEMO_OWN = /^\/(?:console(?:\/|$)|metrics(?:\/|$)|api\/scenarios(?:\/|$)|assets\/|favicon\.ico$|healthz$)/;
const SLOW_MS = 1000;

interface StoredTrace {
  spans: ShippedSpan[];
  scenario: string | undefined;
  notable: boolean;
}

/** Recent traces, bounded: at most `maxTraces`, notable ones evicted last. */
export class TraceStore {
  private readonly traces = new Map<string, StoredTrace>();
  /** Traces recognised as the demo's own, dropped with any later span of theirs (bounded). */
  private readonly ignored = new Set<string>();
  /** The scenario in force; new traces are tagged with it. */
  scenario: string | undefined;

  constructor(private readonly maxTraces = 300) {}

  /** Adds spans (any traces, any order). */
  add(spans: readonly ShippedSpan[]): void {
    for (const raw of spans) {
      if (this.ignored.has(raw.traceId)) continue;
      if (isDemoOwn(raw)) {
        this.ignore(raw.traceId);
        continue;
      }
      const span = named(raw);
      let trace = this.traces.get(span.traceId);
      if (!trace) {
        trace = { spans: [], scenario: this.scenario, notable: false };
        this.traces.set(span.traceId, trace);
        if (this.traces.size > this.maxTraces) this.evict();
      }
      if (trace.spans.length < 500) trace.spans.push(span);
      trace.notable ||= isNotable(span);
    }
  }

  /** The `limit` most recent traces and up to `limit` older notable ones, most recent first. */
  list(limit = 50): TraceSummary[] {
    const all: TraceSummary[] = [];
    for (const [traceId, trace] of this.traces) all.push(summarize(traceId, trace));
    all.sort((a, b) => b.start - a.start);
    return [...all.slice(0, limit), ...all.slice(limit).filter((t) => t.notable).slice(0, limit)];
  }

  /** A trace's spans ordered by start, or undefined. */
  get(traceId: string): ShippedSpan[] | undefined {
    const spans = this.traces.get(traceId)?.spans;
    return spans && [...spans].sort((a, b) => a.start - b.start);
  }

  private ignore(traceId: string): void {
    this.traces.delete(traceId);
    this.ignored.add(traceId);
    // Sets iterate in insertion order: forget the oldest ignored ids first.
    if (this.ignored.size > 1000) this.ignored.delete(this.ignored.values().next().value!);
  }

  /** Drops the oldest ordinary trace; the oldest notable one only when all are notable. */
  private evict(): void {
    for (const [id, t] of this.traces) {
      if (!t.notable) {
        this.traces.delete(id);
        return;
      }
    }
    this.traces.delete(this.traces.keys().next().value!);
  }
}

function pathOf(span: ShippedSpan): string | undefined {
  const path = span.attributes['url.path'];
  if (typeof path === 'string') return path;
  const full = span.attributes['url.full'];
  if (typeof full !== 'string') return undefined;
  try {
    return new URL(full).pathname;
  } catch {
    return undefined;
  }
}

function isDemoOwn(span: ShippedSpan): boolean {
  const path = pathOf(span);
  return path !== undefined && DEMO_OWN.test(path);
}

function isNotable(span: ShippedSpan): boolean {
  const flags = span.attributes['meshlet.flags'];
  return span.status === 2 || (typeof flags === 'string' && flags !== '' && flags !== '-') || span.durationMs >= SLOW_MS;
}

/**
 * `GET` → `GET /calculate` (server: the route, else the path) or
 * `GET calculate /pets/cat` (client: the service's short name and the path).
 */
function named(span: ShippedSpan): ShippedSpan {
  if (!/^[A-Z]+$/.test(span.name)) return span;
  const route = span.attributes['http.route'];
  if (span.kind === 1) {
    const path = typeof route === 'string' ? route : pathOf(span);
    return path ? { ...span, name: `${span.name} ${path}` } : span;
  }
  const full = span.attributes['url.full'];
  if (typeof full !== 'string') return span;
  try {
    const url = new URL(full);
    // The service by its mesh name (the cluster's host, `outbound|8080||client.default.svc…`), not the endpoint's address.
    const cluster = span.attributes['meshlet.cluster'];
    const host = typeof cluster === 'string' && /^outbound\|\d*\|[^|]*\|(.+)$/.exec(cluster)?.[1] || url.hostname;
    const service = /^[\d.]+$|:/.test(host) ? url.host : host.split('.')[0];
    return { ...span, name: `${span.name} ${service} ${url.pathname}` };
  } catch {
    return span;
  }
}

function summarize(traceId: string, trace: StoredTrace): TraceSummary {
  const { spans } = trace;
  const ids = new Set(spans.map((s) => s.spanId));
  const roots = spans.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId));
  const start = Math.min(...spans.map((s) => s.start));
  const end = Math.max(...spans.map((s) => s.start + s.durationMs));
  const root = roots.sort((a, b) => a.start - b.start)[0] ?? spans[0]!;
  const flags = new Set<string>();
  for (const s of spans) {
    const f = s.attributes['meshlet.flags'];
    if (typeof f === 'string' && f !== '' && f !== '-') flags.add(f);
  }
  return {
    traceId,
    name: `${root.service}: ${root.name}`,
    scenario: trace.scenario,
    services: [...new Set(spans.map((s) => s.service))],
    spans: spans.length,
    errors: spans.filter((s) => s.status === 2).length,
    flags: [...flags],
    notable: trace.notable,
    start,
    durationMs: end - start,
  };
}
