/**
 * Durations as Istio writes them (`2s`, `500ms`, `1m`, `1h30m`) and as Envoy's
 * protobuf carries them (`{ seconds, nanos }`). Everything inside the compiled
 * snapshot is plain milliseconds.
 */

/** google.protobuf.Duration as proto-loader objects carry it (seconds may be a string for int64). */
export interface ProtoDuration {
  seconds?: number | string;
  nanos?: number;
}

const unitMs: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, 'µs': 0.001, ns: 0.000001 };
const durationPattern = /^(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/;

/**
 * Parses an Istio duration string into milliseconds.
 * @returns the milliseconds, or an error string saying why the value is bad.
 */
export function parseDuration(text: string): number | string {
  if (typeof text !== 'string' || text.length === 0) return 'must be a duration string such as "2s" or "500ms"';
  let rest = text;
  let total = 0;
  while (rest.length > 0) {
    const m = durationPattern.exec(rest);
    if (!m) return `"${text}" is not a duration (use units h, m, s, ms, e.g. "2s")`;
    total += Number(m[1]) * unitMs[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return total;
}

/** Milliseconds → protobuf Duration. */
export function msToProto(ms: number): { seconds: number; nanos: number } {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

/** Protobuf Duration → milliseconds (undefined stays undefined). */
export function protoToMs(d: ProtoDuration | undefined | null): number | undefined {
  if (!d) return undefined;
  return Number(d.seconds ?? 0) * 1000 + (d.nanos ?? 0) / 1e6;
}
