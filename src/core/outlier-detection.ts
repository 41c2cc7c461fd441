/**
 * Envoy's outlier detection for one cluster (arch_overview/upstream/outlier):
 * consecutive 5xx, consecutive gateway failures and, with
 * split_external_local_origin_errors, consecutive local-origin failures eject a
 * host inline; an interval sweep returns hosts whose ejection time
 * (base_ejection_time × ejection multiplier, capped by max_ejection_time) has
 * passed. The panic threshold decides when the load balancer ignores health.
 *
 * Follows Envoy's detector_impl.cc step by step (counters that fire on `==`,
 * counter reset after a detection, max_ejection_percent with the optional
 * always_eject_one_host, the ejection multiplier that grows on each ejection
 * and shrinks on each sweep the host stays healthy). Success-rate and
 * failure-percentage ejection are not implemented (Istio disables them).
 */
import type { RandomSource } from './random.js';
import type { EjectionReason, LocalOriginResult, OutlierDetectionPolicy } from './outlier-policy.js';
import { DEFAULT_PANIC_THRESHOLD } from './outlier-policy.js';

export { compileOutlierDetection, compilePanicThreshold, DEFAULT_PANIC_THRESHOLD } from './outlier-policy.js';
export type { EjectionReason, LocalOriginResult, OutlierDetectionPolicy, OutlierDetectionV3 } from './outlier-policy.js';

/** One host's row in {@link OutlierDetector.state}. */
export interface OutlierHostState {
  host: string;
  ejected: boolean;
  /** Why the current (or last) ejection happened. */
  reason?: EjectionReason;
  /** When the current (or last) ejection happened, on the detector's clock (epoch ms by default). */
  ejectedAtMs?: number;
  /** Earliest time the sweep returns the host (it returns on the first sweep at or after this). */
  ejectedUntilMs?: number;
  /** Times this host has been ejected since it joined the cluster. */
  timesEjected: number;
  consecutive5xx: number;
  consecutiveGatewayFailure: number;
  consecutiveLocalOriginFailure: number;
}

/** Detector counters and per-host rows, for config dumps and debugging. */
export interface OutlierDetectorState {
  ejectionsActive: number;
  ejectionsEnforcedTotal: number;
  ejectionsOverflow: number;
  ejectionsDetected: Record<EjectionReason, number>;
  hosts: OutlierHostState[];
}

/** Options of an {@link OutlierDetector}. */
export interface OutlierDetectorOptions {
  policy: OutlierDetectionPolicy;
  /** Initial hosts, as "ip:port" ids. */
  hosts?: readonly string[];
  /** Percent; default {@link DEFAULT_PANIC_THRESHOLD}. */
  panicThreshold?: number;
  /** Milliseconds clock; default Date.now. */
  now?: () => number;
  /** Draws for enforcement percentages and jitter; default Math.random. */
  random?: RandomSource;
  /** false: no interval timer, the owner calls sweep() (tests, or a shared scheduler). */
  timer?: boolean;
}

interface HostMonitor {
  ejected: boolean;
  numEjections: number;
  /** Envoy's ejectTimeBackoff: the multiplier of base_ejection_time. */
  backoff: number;
  lastEjectionMs: number | undefined;
  lastUnejectionMs: number | undefined;
  jitterMs: number;
  reason: EjectionReason | undefined;
  c5xx: number;
  cGateway: number;
  cLocal: number;
}

/** A change listener's handle, as cockatiel's events. */
export interface Disposable {
  dispose(): void;
}

/**
 * The outlier detector of one cluster. Report every attempt's outcome with
 * {@link putHttpStatus} / {@link putLocalOrigin}, ask {@link healthyHosts}
 * when picking an endpoint, and {@link close} it with the cluster.
 */
export class OutlierDetector {
  readonly policy: OutlierDetectionPolicy;
  readonly panicThreshold: number;
  private readonly monitors = new Map<string, HostMonitor>();
  private readonly now: () => number;
  private readonly random: RandomSource;
  private readonly listeners = new Set<(host: string, ejected: boolean) => void>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private ejectionsActive = 0;
  private enforcedTotal = 0;
  private overflow = 0;
  private readonly detected: Record<EjectionReason, number> = { CONSECUTIVE_5XX: 0, CONSECUTIVE_GATEWAY_FAILURE: 0, CONSECUTIVE_LOCAL_ORIGIN_FAILURE: 0 };
  /** Bumped on every ejection, unejection and host change; keys the healthyHosts cache. */
  private version = 0;
  private cacheInput: readonly unknown[] | undefined;
  private cacheVersion = -1;
  private cacheOutput: readonly unknown[] = [];

  constructor(options: OutlierDetectorOptions) {
    this.policy = options.policy;
    this.panicThreshold = options.panicThreshold ?? DEFAULT_PANIC_THRESHOLD;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    for (const host of options.hosts ?? []) this.monitors.set(host, newMonitor());
    if (options.timer !== false) {
      this.timer = setInterval(() => this.sweep(), this.policy.intervalMs);
      this.timer.unref();
    }
  }

  /** Replaces the host set (an EDS update): new hosts start clean, removed hosts are forgotten. */
  setHosts(hosts: readonly string[]): void {
    const keep = new Set(hosts);
    for (const [host, monitor] of this.monitors) {
      if (keep.has(host)) continue;
      if (monitor.ejected) this.ejectionsActive--;
      this.monitors.delete(host);
    }
    for (const host of hosts) if (!this.monitors.has(host)) this.monitors.set(host, newMonitor());
    this.version++;
  }

  /** Changes with every ejection, return and host change: state derived from ejections is stale when it moves. */
  get generation(): number {
    return this.version;
  }

  /** Whether the host is currently ejected. */
  isEjected(host: string): boolean {
    return this.monitors.get(host)?.ejected === true;
  }

  /**
   * An HTTP response from the upstream (external origin). Any 5xx counts
   * toward consecutive_5xx; 502/503/504 also toward consecutive gateway
   * failures; anything else resets both counters.
   */
  putHttpStatus(host: string, status: number): void {
    const m = this.monitors.get(host);
    if (m) this.putHttpCode(host, m, status);
  }

  /**
   * A local-origin outcome. Without split_external_local_origin_errors Envoy
   * maps it to an HTTP code (timeout → 504, connect failure/reset → 503,
   * connect success → nothing); with the split it feeds the separate
   * consecutive local-origin counter.
   */
  putLocalOrigin(host: string, result: LocalOriginResult): void {
    const m = this.monitors.get(host);
    if (!m) return;
    if (!this.policy.splitExternalLocalOriginErrors) {
      if (result === 'timeout') this.putHttpCode(host, m, 504);
      else if (result !== 'connect_success') this.putHttpCode(host, m, 503);
      return;
    }
    if (result === 'connect_success') {
      m.cLocal = 0;
    } else if (++m.cLocal === this.policy.consecutiveLocalOriginFailure) {
      this.onConsecutiveError(host, m, 'CONSECUTIVE_LOCAL_ORIGIN_FAILURE');
    }
  }

  private putHttpCode(host: string, m: HostMonitor, status: number): void {
    if (status >= 500 && status < 600) {
      if (status >= 502 && status <= 504) {
        if (++m.cGateway === this.policy.consecutiveGatewayFailure) this.onConsecutiveError(host, m, 'CONSECUTIVE_GATEWAY_FAILURE');
      } else {
        m.cGateway = 0;
      }
      if (++m.c5xx === this.policy.consecutive5xx) this.onConsecutiveError(host, m, 'CONSECUTIVE_5XX');
    } else {
      m.c5xx = 0;
      m.cGateway = 0;
    }
  }

  private onConsecutiveError(host: string, m: HostMonitor, reason: EjectionReason): void {
    // Envoy ignores detections for an already-ejected host and leaves its counter running.
    if (m.ejected) return;
    this.detected[reason]++;
    this.ejectHost(host, m, reason);
    // The counter restarts so a new bout of errors is detected without an interleaved success.
    if (reason === 'CONSECUTIVE_5XX') m.c5xx = 0;
    else if (reason === 'CONSECUTIVE_GATEWAY_FAILURE') m.cGateway = 0;
    else m.cLocal = 0;
  }

  private ejectHost(host: string, m: HostMonitor, reason: EjectionReason): void {
    const p = this.policy;
    const ejectedPercent = (100 * (this.ejectionsActive + 1)) / this.monitors.size;
    let shouldEject = ejectedPercent <= Math.min(100, p.maxEjectionPercent);
    if (p.alwaysEjectOneHost) shouldEject = this.ejectionsActive === 0 || shouldEject;
    if (!shouldEject) {
      this.overflow++;
      return;
    }
    const enforcing = reason === 'CONSECUTIVE_5XX' ? p.enforcingConsecutive5xx
      : reason === 'CONSECUTIVE_GATEWAY_FAILURE' ? p.enforcingConsecutiveGatewayFailure
      : p.enforcingConsecutiveLocalOriginFailure;
    // Envoy's runtime featureEnabled(percent): 100 always, 0 never, otherwise a draw.
    if (enforcing <= 0 || (enforcing < 100 && this.random() * 100 >= enforcing)) return;
    this.ejectionsActive++;
    this.enforcedTotal++;
    m.ejected = true;
    m.numEjections++;
    m.reason = reason;
    m.lastEjectionMs = this.now();
    m.jitterMs = p.maxEjectionTimeJitterMs > 0 ? Math.floor(this.random() * (p.maxEjectionTimeJitterMs + 1)) : 0;
    // The multiplier stops growing once base × multiplier passes max_ejection_time.
    if (m.backoff * p.baseEjectionTimeMs < p.maxEjectionTimeMs + p.baseEjectionTimeMs) m.backoff++;
    this.changed(host, true);
  }

  private ejectionDurationMs(m: HostMonitor): number {
    return Math.min(this.policy.baseEjectionTimeMs * m.backoff, this.policy.maxEjectionTimeMs) + m.jitterMs;
  }

  /**
   * The interval sweep (run by the timer every `interval`): returns hosts whose
   * ejection time has passed, then lowers the ejection multiplier of hosts that
   * stayed healthy for a whole interval since their last return.
   */
  sweep(): void {
    const now = this.now();
    for (const [host, m] of this.monitors) {
      if (!m.ejected || m.lastEjectionMs === undefined) continue;
      if (this.ejectionDurationMs(m) <= now - m.lastEjectionMs) {
        this.ejectionsActive--;
        m.ejected = false;
        // Counters restart so a host is not re-ejected on very few new errors.
        m.c5xx = 0;
        m.cGateway = 0;
        m.cLocal = 0;
        m.lastUnejectionMs = now;
        this.changed(host, false);
      }
    }
    for (const m of this.monitors.values()) {
      if (m.ejected || m.lastUnejectionMs === undefined) continue;
      if (now - m.lastUnejectionMs >= this.policy.intervalMs && m.backoff > 0) m.backoff--;
    }
  }

  /**
   * The hosts the load balancer may pick from: the non-ejected ones, or all of
   * them in panic (Envoy: the priority's availability, scaled by the default
   * overprovisioning factor 1.4, is below 100% and the healthy share is below
   * the panic threshold). Empty when every host is ejected and panic is off (0).
   * The result is cached per input array until the ejection state changes,
   * so calling it per request allocates nothing.
   */
  healthyHosts<T>(hosts: readonly T[], idOf: (host: T) => string = String): readonly T[] {
    if (hosts === this.cacheInput && this.cacheVersion === this.version) return this.cacheOutput as readonly T[];
    let result: readonly T[] = hosts;
    if (this.ejectionsActive > 0 && hosts.length > 0) {
      const healthy = hosts.filter((h) => !this.isEjected(idOf(h)));
      if (healthy.length < hosts.length) result = inPanic(healthy.length, hosts.length, this.panicThreshold) ? hosts : healthy;
    }
    this.cacheInput = hosts;
    this.cacheVersion = this.version;
    this.cacheOutput = result;
    return result;
  }

  /** Calls `listener(host, ejected)` on every ejection and return. */
  onChange(listener: (host: string, ejected: boolean) => void): Disposable {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** Counters and per-host rows (ejected hosts with reason, since, until, times ejected). */
  state(): OutlierDetectorState {
    const hosts: OutlierHostState[] = [];
    for (const [host, m] of this.monitors) {
      const row: OutlierHostState = {
        host,
        ejected: m.ejected,
        timesEjected: m.numEjections,
        consecutive5xx: m.c5xx,
        consecutiveGatewayFailure: m.cGateway,
        consecutiveLocalOriginFailure: m.cLocal,
      };
      if (m.reason !== undefined) row.reason = m.reason;
      if (m.lastEjectionMs !== undefined) {
        row.ejectedAtMs = m.lastEjectionMs;
        if (m.ejected) row.ejectedUntilMs = m.lastEjectionMs + this.ejectionDurationMs(m);
      }
      hosts.push(row);
    }
    return {
      ejectionsActive: this.ejectionsActive,
      ejectionsEnforcedTotal: this.enforcedTotal,
      ejectionsOverflow: this.overflow,
      ejectionsDetected: { ...this.detected },
      hosts,
    };
  }

  /** Stops the interval timer; idempotent. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }

  private changed(host: string, ejected: boolean): void {
    this.version++;
    for (const listener of this.listeners) listener(host, ejected);
  }
}

function newMonitor(): HostMonitor {
  return { ejected: false, numEjections: 0, backoff: 0, lastEjectionMs: undefined, lastUnejectionMs: undefined, jitterMs: 0, reason: undefined, c5xx: 0, cGateway: 0, cLocal: 0 };
}

/**
 * Envoy's panic rule for a single priority: with the default overprovisioning
 * factor (140) a priority whose health × 1.4 reaches 100% never panics;
 * otherwise it panics when the healthy percentage is below the threshold.
 */
export function inPanic(healthy: number, total: number, panicThreshold: number): boolean {
  if (total === 0) return false;
  const availability = Math.min(100, Math.floor((140 * healthy) / total));
  if (availability >= 100) return false;
  return (100 * healthy) / total < panicThreshold;
}
