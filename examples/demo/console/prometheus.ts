/**
 * Just enough of the Prometheus text format for the demo: parse the samples
 * of the istio_* families, and merge several workloads' expositions into one
 * (each family's HELP/TYPE once) for the /metrics endpoint.
 */

/** One sample line. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** The samples of an exposition whose metric name starts with `prefix`. */
export function parseSamples(text: string, prefix = 'istio_'): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_x, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Merges expositions: one HELP/TYPE per family, then every workload's samples of it. */
export function mergeExpositions(texts: readonly string[]): string {
  const families = new Map<string, { meta: string[]; samples: string[] }>();
  for (const text of texts) {
    let current: { meta: string[]; samples: string[] } | undefined;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const meta = /^# (HELP|TYPE) (\S+)/.exec(line);
      if (meta) {
        const name = meta[2]!;
        current = families.get(name);
        if (!current) families.set(name, (current = { meta: [], samples: [] }));
        if (current.meta.length < 2 && !current.meta.some((l) => l.startsWith(`# ${meta[1]} `))) current.meta.push(line);
        continue;
      }
      if (line.startsWith('#')) continue;
      current?.samples.push(line);
    }
  }
  return [...families.values()].map((f) => [...f.meta, ...f.samples].join('\n')).join('\n') + '\n';
}
