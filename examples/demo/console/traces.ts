/**
 * The in-process trace store behind the traces view: every workload's tracer
 * ships its finished spans here over IPC (see ../services/workload.ts), and
 * the store groups them by trace, keeping the most recent traces only.
 */
import type { ShippedSpan } from '../services/workload.js';

/** One row of the recent-traces list. */
export interface TraceSummary {
  traceId: string;
  /** The root span's name (or the earliest span's when the root is missing). */
  name: string;
  services: string[];
  spans: number;
  errors: number;
  start: number;
  durationMs: number;
}

/** Recent traces, bounded. */
export class TraceStore {
  private readonly traces = new Map<string, ShippedSpan[]>();

  constructor(private readonly maxTraces = 200) {}

  /** Adds spans (any traces, any order). */
  add(spans: readonly ShippedSpan[]): void {
    for (const span of spans) {
      let list = this.traces.get(span.traceId);
      if (!list) {
        list = [];
        this.traces.set(span.traceId, list);
        // Maps iterate in insertion order: the first key is the oldest trace.
        if (this.traces.size > this.maxTraces) this.traces.delete(this.traces.keys().next().value!);
      }
      if (list.length < 500) list.push(span);
    }
  }

  /** The most recent traces first. */
  list(limit = 50): TraceSummary[] {
    const out: TraceSummary[] = [];
    for (const [traceId, spans] of this.traces) out.push(summarize(traceId, spans));
    out.sort((a, b) => b.start - a.start);
    return out.slice(0, limit);
  }

  /** A trace's spans ordered by start, or undefined. */
  get(traceId: string): ShippedSpan[] | undefined {
    const spans = this.traces.get(traceId);
    return spans && [...spans].sort((a, b) => a.start - b.start);
  }
}

function summarize(traceId: string, spans: readonly ShippedSpan[]): TraceSummary {
  const ids = new Set(spans.map((s) => s.spanId));
  const roots = spans.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId));
  const start = Math.min(...spans.map((s) => s.start));
  const end = Math.max(...spans.map((s) => s.start + s.durationMs));
  const root = roots.sort((a, b) => a.start - b.start)[0] ?? spans[0]!;
  const path = root.attributes['url.path'] ?? root.attributes['http.route'] ?? '';
  return {
    traceId,
    name: `${root.service}: ${root.name}${path ? ` ${path}` : ''}`,
    services: [...new Set(spans.map((s) => s.service))],
    spans: spans.length,
    errors: spans.filter((s) => s.status === 2).length,
    start,
    durationMs: end - start,
  };
}
