/**
 * The service graph (what Kiali draws, from the same istio_* metrics): the
 * collector polls every workload's admin port for `mesh.metrics()` and the
 * client's `mesh.clusters()`, keeps a short window of samples, and turns the
 * series into edges with request rate, error rate and p99, nodes coloured by
 * health, and the calculate version outlier detection ejected.
 *
 * Edges into a service are what the caller reported (reporter="source").
 * Edges from the calculate service to each version are what that version
 * reported (reporter="destination", callers = the client): a call the
 * client's mesh timed out has no answer, so the caller cannot tell which
 * version was slow (its series says destination_version="unknown"), but the
 * version can — it saw the caller hang up (response flag DC, code 0).
 */
import { parseSamples, type Sample } from './prometheus.js';

/** A workload the collector polls. */
export interface GraphTarget {
  workload: string;
  adminPort: number;
}

/** Health as Kiali colours it. */
export type Health = 'healthy' | 'degraded' | 'failing' | 'idle';

/** A node: a workload, or the calculate service in front of its versions. */
export interface GraphNode {
  id: string;
  label: string;
  kind: 'app' | 'service';
  version?: string;
  health: Health;
  /** Outlier detection ejected this version from the client's calculate cluster. */
  ejected: boolean;
}

/** An edge with its traffic over the window. */
export interface GraphEdge {
  source: string;
  target: string;
  /** Requests per second. */
  rps: number;
  /** Share of responses that are errors (status 0, 4xx, 5xx), 0..1. */
  errorRate: number;
  /** 99th percentile duration, ms (bucket upper bound), undefined without traffic. */
  p99Ms: number | undefined;
  requests: number;
  /** Response flags seen (UT, FI, RL, UH…) with counts. */
  flags: Record<string, number>;
  health: Health;
}

/** The whole graph. */
export interface Graph {
  windowSeconds: number;
  nodes: GraphNode[];
  edges: GraphEdge[];
  at: string;
}

interface Snapshot {
  at: number;
  samples: Sample[];
  ejectedVersions: Set<string>;
}

const WORKLOAD_NODE: Record<string, string> = { 'istio-ingressgateway': 'gateway', client: 'client' };
const NODES: ReadonlyArray<Omit<GraphNode, 'health' | 'ejected'>> = [
  { id: 'gateway', label: 'istio-ingressgateway', kind: 'app' },
  { id: 'client', label: 'client', kind: 'app', version: 'v1' },
  { id: 'calculate', label: 'calculate', kind: 'service' },
  { id: 'calculate:cat-plus', label: 'calculate v1', kind: 'app', version: 'cat-plus' },
  { id: 'calculate:dog-multi', label: 'calculate v2', kind: 'app', version: 'dog-multi' },
  { id: 'db', label: 'db', kind: 'app', version: 'v1' },
  { id: 'image', label: 'image', kind: 'app', version: 'v1' },
];

/** Polls the workloads and computes the graph over a sliding window. */
export class GraphCollector {
  private readonly history: Snapshot[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private readonly targets: GraphTarget[] = [];

  constructor(private readonly options: { intervalMs?: number; windowMs?: number; now?: () => number } = {}) {}

  /** Adds a workload to poll. */
  add(target: GraphTarget): void {
    this.targets.push(target);
  }

  /** Starts polling (unref'd timer). */
  start(): void {
    this.timer ??= setInterval(() => void this.sample(), this.options.intervalMs ?? 2000);
    this.timer.unref();
  }

  /** The istio_* text of every workload, for /metrics. */
  async expositions(): Promise<Array<{ workload: string; text: string }>> {
    return Promise.all(this.targets.map(async (t) => ({ workload: t.workload, text: await get(t.adminPort, '/metrics').catch(() => '') })));
  }

  /** Takes a sample now (coalesced with one in progress). */
  sample(): Promise<void> {
    this.inFlight ??= this.takeSample().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** The graph over the window, sampling first when the last sample is older than a second. */
  async graph(): Promise<Graph> {
    const now = this.now();
    const last = this.history.at(-1);
    if (!last || now - last.at > 1000) await this.sample();
    return this.build();
  }

  close(): void {
    clearInterval(this.timer);
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private async takeSample(): Promise<void> {
    const at = this.now();
    const texts = await this.expositions();
    const samples = texts.flatMap((t) => parseSamples(t.text).filter((s) => s.labels.reporter === 'source' || (s.labels.reporter === 'destination' && s.labels.destination_service_name === 'calculate' && s.labels.source_workload === 'client')));
    const ejectedVersions = new Set<string>();
    const client = this.targets.find((t) => t.workload === 'client');
    if (client) {
      try {
        const clusters = JSON.parse(await get(client.adminPort, '/clusters')) as Array<{ name: string; hosts: Array<{ ejected: boolean; labels: Record<string, string> }> }>;
        for (const c of clusters) {
          if (!c.name.includes('calculate.')) continue;
          for (const h of c.hosts) if (h.ejected && h.labels.version) ejectedVersions.add(h.labels.version);
        }
      } catch {
        // the client is restarting or gone: no ejection marks this round
      }
    }
    this.history.push({ at, samples, ejectedVersions });
    const windowMs = this.options.windowMs ?? 30_000;
    while (this.history.length > 2 && this.history[1]!.at <= at - windowMs) this.history.shift();
  }

  private build(): Graph {
    const newest = this.history.at(-1);
    const oldest = this.history.length > 1 ? this.history[0] : undefined;
    const dtSeconds = newest && oldest ? Math.max(0.001, (newest.at - oldest.at) / 1000) : 1;
    const edges = new Map<string, GraphEdge & { buckets: Map<number, number> }>();
    const edge = (source: string, target: string) => {
      const key = `${source}>${target}`;
      let e = edges.get(key);
      if (!e) edges.set(key, (e = { source, target, rps: 0, errorRate: 0, p99Ms: undefined, requests: 0, flags: {}, health: 'idle', buckets: new Map() }));
      return e;
    };
    const apply = (samples: readonly Sample[], sign: 1 | -1): void => {
      for (const s of samples) {
        const l = s.labels;
        const source = WORKLOAD_NODE[l.source_workload ?? ''];
        const service = l.destination_service_name ?? '';
        if (!source || !['client', 'calculate', 'db', 'image'].includes(service)) continue;
        let e: ReturnType<typeof edge>;
        if (l.reporter === 'destination') {
          // The version's own view of the calls it received (see the header).
          if (l.destination_version !== 'cat-plus' && l.destination_version !== 'dog-multi') continue;
          e = edge('calculate', `calculate:${l.destination_version}`);
        } else {
          e = edge(source, service);
        }
        if (s.name === 'istio_requests_total') {
          e.requests += sign * s.value;
          const code = Number(l.response_code ?? 0);
          if (code === 0 || code >= 400) e.errorRate += sign * s.value; // an error count until normalised below
          const flag = l.response_flags;
          if (flag && flag !== '-') e.flags[flag] = (e.flags[flag] ?? 0) + sign * s.value;
        } else if (s.name === 'istio_request_duration_milliseconds_bucket') {
          const le = l.le === '+Inf' ? Infinity : Number(l.le);
          e.buckets.set(le, (e.buckets.get(le) ?? 0) + sign * s.value);
        }
      }
    };
    if (newest) apply(newest.samples, 1);
    if (oldest) apply(oldest.samples, -1);
    const out: GraphEdge[] = [];
    for (const e of edges.values()) {
      const errors = e.errorRate;
      e.errorRate = e.requests > 0 ? errors / e.requests : 0;
      e.rps = e.requests / dtSeconds;
      e.p99Ms = percentile(e.buckets, 0.99);
      for (const [k, v] of Object.entries(e.flags)) if (v <= 0) delete e.flags[k];
      e.health = healthOf(e.requests, e.errorRate);
      const { buckets: _b, ...plain } = e;
      out.push(plain);
    }
    const ejected = newest?.ejectedVersions ?? new Set<string>();
    const nodes: GraphNode[] = NODES.map((n) => {
      const incoming = out.filter((e) => e.target === n.id);
      const worst = incoming.reduce<Health>((h, e) => worse(h, e.health), 'idle');
      const isEjected = n.version !== undefined && n.id.startsWith('calculate:') && ejected.has(n.version);
      return { ...n, health: isEjected ? 'failing' : n.id === 'gateway' && out.some((e) => e.source === 'gateway' && e.requests > 0) ? 'healthy' : worst, ejected: isEjected };
    });
    return { windowSeconds: Math.round(dtSeconds), nodes, edges: out, at: new Date(newest?.at ?? this.now()).toISOString() };
  }
}

function healthOf(requests: number, errorRate: number): Health {
  if (requests <= 0) return 'idle';
  if (errorRate >= 0.2) return 'failing';
  if (errorRate > 0.001) return 'degraded';
  return 'healthy';
}

const ORDER: Health[] = ['idle', 'healthy', 'degraded', 'failing'];
const worse = (a: Health, b: Health): Health => (ORDER.indexOf(a) >= ORDER.indexOf(b) ? a : b);

/** The bucket upper bound under which `q` of the observations fall (cumulative buckets). */
function percentile(buckets: Map<number, number>, q: number): number | undefined {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0) return undefined;
  const found = sorted.find(([, count]) => count >= q * total);
  if (!found) return undefined;
  // +Inf: report the largest finite bound, which the p99 is at least.
  return Number.isFinite(found[0]) ? found[0] : sorted.at(-2)?.[0];
}

async function get(port: number, path: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) });
  return res.text();
}
