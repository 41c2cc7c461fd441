/**
 * The istio_* metric objects in the shape prom-client's Registry reads
 * (name, help, type, aggregator, get() → values), over meshlet's own series:
 * registered with `registerMetric`, formatted by the registry.
 */
import type { HistogramState, Series } from './metrics.js';

interface MetricValue {
  labels: Record<string, string | number>;
  sharedLabels?: Readonly<Record<string, string>>;
  value: number;
  metricName?: string;
}

export interface ExportedMetric {
  name: string;
  help: string;
  type: 'counter' | 'histogram' | 'gauge';
  aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: MetricValue[] }>;
  reset(): void;
}

export function counterMetric(
  name: string, help: string, all: readonly Series[], reset: () => void, pick: (s: Series) => number, grpcOnly = false,
): ExportedMetric {
  const metric: ExportedMetric = {
    name,
    help,
    type: 'counter',
    aggregator: 'sum',
    async get() {
      const values: MetricValue[] = [];
      for (const s of all) if (!grpcOnly || s.grpc) values.push({ labels: s.labels, value: pick(s) });
      return { name: metric.name, help, type: 'counter', aggregator: 'sum', values };
    },
    reset,
  };
  return metric;
}

export function histogramMetric(
  name: string,
  help: string,
  bounds: readonly number[],
  pick: (s: Series) => HistogramState,
  all: readonly Series[],
  reset: () => void,
): ExportedMetric {
  // The `le` label objects are shared by every series; the series labels go in sharedLabels, formatted once per scrape.
  const leLabels = [...bounds.map((b) => ({ le: b })), { le: '+Inf' }];
  const bucketName = `${name}_bucket`;
  const sumName = `${name}_sum`;
  const countName = `${name}_count`;
  const metric: ExportedMetric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    async get() {
      const values: MetricValue[] = [];
      for (const s of all) {
        const h = pick(s);
        let acc = 0;
        for (let i = 0; i < leLabels.length; i++) {
          acc += h.counts[i]!;
          values.push({ labels: leLabels[i]!, sharedLabels: s.labels, value: acc, metricName: bucketName });
        }
        values.push({ labels: {}, sharedLabels: s.labels, value: h.sum, metricName: sumName });
        values.push({ labels: {}, sharedLabels: s.labels, value: h.count, metricName: countName });
      }
      return { name, help, type: 'histogram', aggregator: 'sum', values };
    },
    reset,
  };
  return metric;
}

/**
 * `istio_build{component="proxy",tag}` 1: Istio's proxies report their build
 * this way, and Kiali reads it to tell which proxies (here: SDKs) run where.
 */
export function buildMetric(tag: string): ExportedMetric {
  const labels = Object.freeze({ component: 'proxy', tag });
  const help = 'Istio component build info';
  return {
    name: 'istio_build',
    help,
    type: 'gauge',
    aggregator: 'sum',
    async get() {
      return { name: 'istio_build', help, type: 'gauge', aggregator: 'sum', values: [{ labels, value: 1 }] };
    },
    reset() {},
  };
}

