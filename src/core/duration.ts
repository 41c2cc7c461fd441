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

// Go's time.ParseDuration units: `µs` is U+00B5 (micro sign) and `μs` U+03BC (Greek mu).
const unitMs: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, '\u00b5s': 0.001, '\u03bcs': 0.001, ns: 0.000001 };
// As Go: digits before or after the point may be missing, not both (`.5s`, `1.s`, not `.s`).
const durationPattern = /^(\d+\.?\d*|\.\d+)(h|ms|m|s|us|\u00b5s|\u03bcs|ns)/;

/**
 * Parses an Istio duration string into milliseconds.
 * @returns the milliseconds, or an error string saying why the value is bad.
 */
export function parseDuration(text: string): number | string {
  if (typeof text !== 'string' || text.length === 0) return 'must be a duration string such as "2s" or "500ms"';
  // Go's time.ParseDuration takes a bare "0" (Istio's durations go through it).
  if (text === '0') return 0;
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

/**
 * The longest duration Istio accepts: its YAML durations are Go `time.Duration`s (int64 nanoseconds),
 * so `time.ParseDuration` refuses anything past 2^63 - 1 ns (~2562047h).
 */
export const MAX_DURATION_MS = 9_223_372_036_854;

/**
 * The longest delay a Node timer keeps (2^31 - 1 ms, ~24.8 days). Node turns a longer one into 1 ms, so
 * every timer armed from config is clamped to this: a timeout this long is, for a request, no timeout.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** A delay safe to hand to `setTimeout`: clamped to {@link MAX_TIMER_MS}, never negative. */
export function timerDelay(ms: number): number {
  return ms > MAX_TIMER_MS ? MAX_TIMER_MS : ms > 0 ? ms : 0;
}

/** Milliseconds → protobuf Duration. */
export function msToProto(ms: number): { seconds: number; nanos: number } {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

/**
 * Protobuf Duration → milliseconds (undefined stays undefined), clamped to {@link MAX_TIMER_MS}: every
 * duration in a snapshot ends up arming a timer, and protobuf allows up to 10,000 years.
 */
export function protoToMs(d: ProtoDuration | undefined | null): number | undefined {
  if (!d) return undefined;
  const ms = Number(d.seconds ?? 0) * 1000 + (d.nanos ?? 0) / 1e6;
  return ms > MAX_TIMER_MS ? MAX_TIMER_MS : ms;
}
