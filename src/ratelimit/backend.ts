/**
 * Where rate-limit counters live. The limiter computes keys, windows and
 * verdicts; a backend only adds hits to fixed-window counters and reports the
 * totals, so memory and Redis share one semantics.
 */

/** A store of fixed-window counters. */
export interface RateLimitBackend {
  /**
   * Adds `hits` to each key's counter and returns each total after the
   * increment, in order. A counter that did not exist starts at 0 and expires
   * `ttlSeconds[i]` seconds later. All keys of one request go in one call
   * (one Redis round trip).
   */
  increment(keys: readonly string[], hits: number, ttlSeconds: readonly number[]): Promise<number[]>;
  /** Releases timers and connections the backend owns; idempotent. */
  close(): Promise<void>;
}

/** Options of {@link createMemoryBackend}. */
export interface MemoryBackendOptions {
  /** Clock in epoch milliseconds (tests inject one); default `Date.now`. */
  now?: () => number;
  /** How often expired counters are swept; default 10 s. The timer is unref'd. */
  sweepIntervalMs?: number;
}

interface Counter {
  count: number;
  expiresAt: number;
}

/**
 * An in-process backend: one counter per window key, dropped when its window
 * has expired (checked on use, and swept by an unref'd timer so idle keys do
 * not accumulate). Quotas are per process; share them across processes with
 * the Redis backend.
 */
export function createMemoryBackend(options: MemoryBackendOptions = {}): RateLimitBackend & { readonly size: number } {
  const now = options.now ?? Date.now;
  const counters = new Map<string, Counter>();
  const sweep = (): void => {
    const t = now();
    for (const [key, c] of counters) if (c.expiresAt <= t) counters.delete(key);
  };
  let timer: NodeJS.Timeout | undefined = setInterval(sweep, options.sweepIntervalMs ?? 10_000);
  timer.unref();
  return {
    get size() {
      return counters.size;
    },
    increment(keys, hits, ttlSeconds) {
      const t = now();
      const totals = new Array<number>(keys.length);
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        let c = counters.get(key);
        if (c === undefined || c.expiresAt <= t) {
          c = { count: 0, expiresAt: t + ttlSeconds[i]! * 1000 };
          counters.set(key, c);
        }
        c.count += hits;
        totals[i] = c.count;
      }
      return Promise.resolve(totals);
    },
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      counters.clear();
      return Promise.resolve();
    },
  };
}
