/**
 * Envoy's priority levels and locality-weighted balancing
 * (source/common/upstream/load_balancer_context_base / LoadBalancerBase):
 *
 * - each priority's health is `min(100, overprovisioning_factor × healthy / total)`
 *   (factor 140 unless the ClusterLoadAssignment says otherwise): a level
 *   keeps all its traffic until fewer than 1/1.4 ≈ 71% of its hosts are
 *   healthy, then spills the rest to the next level;
 * - the load of each level is its health scaled to the total availability
 *   (capped at 100), in priority order; what rounding leaves goes to the first
 *   healthy level;
 * - a level below the panic threshold uses all its hosts; when every level is
 *   in panic the load follows host counts; with the threshold at 0 (Istio's
 *   default with outlier detection) and nothing healthy, there is no host;
 * - with locality_weighted_lb_config a locality of the chosen level is drawn by
 *   `weight × min(1, factor × healthy / total)`, then a host within it.
 *
 * Healthy lists are recomputed only when outlier detection's state changes
 * (its generation), so balancers see stable host arrays between ejections.
 */
import type { Host } from './load-balancer.js';
import { inPanic } from './outlier-detection.js';
import type { RandomSource } from './random.js';

/** The hosts of one locality in a priority level. */
export interface LocalityBucket {
  /** `region/zone/subzone` */
  readonly locality: string;
  /** load_balancing_weight of the LocalityLbEndpoints (0: no traffic with locality weighting) */
  readonly weight: number;
  readonly hosts: readonly Host[];
}

/** One priority level: its localities. */
export interface PriorityLevel {
  readonly priority: number;
  readonly localities: readonly LocalityBucket[];
}

interface LevelState {
  readonly all: readonly Host[];
  readonly healthy: readonly Host[];
  readonly panic: boolean;
  /** per locality: the hosts to use and its effective weight */
  readonly localities: ReadonlyArray<{ hosts: readonly Host[]; weight: number }>;
  readonly localityTotal: number;
}

interface State {
  readonly generation: number;
  readonly levels: readonly LevelState[];
  /** cumulative load per level, out of 100 */
  readonly cumulative: readonly number[];
}

const EMPTY: readonly Host[] = Object.freeze([]);

export class PrioritySet {
  private readonly levels: ReadonlyArray<{ all: readonly Host[]; localities: readonly LocalityBucket[] }>;
  private state: State | undefined;

  constructor(
    levels: readonly PriorityLevel[],
    private readonly options: { overprovisioningFactor: number; localityWeighted: boolean; panicThreshold: number },
  ) {
    this.levels = [...levels].sort((a, b) => a.priority - b.priority).map((l) => ({ all: l.localities.flatMap((b) => b.hosts), localities: l.localities }));
  }

  /**
   * The hosts to balance this request over: a level chosen by load (`draw`
   * in [0, 100)), then, with locality weighting, one of its localities.
   */
  hostsFor(isEjected: (host: Host) => boolean, generation: number, draw: number, random: RandomSource, byLocality = true): readonly Host[] {
    const state = this.stateFor(isEjected, generation);
    let level = 0;
    while (level < state.cumulative.length - 1 && draw >= state.cumulative[level]!) level++;
    const l = state.levels[level];
    if (!l) return EMPTY;
    if (!this.options.localityWeighted || !byLocality || l.localityTotal <= 0) return l.panic ? l.all : l.healthy;
    let x = random() * l.localityTotal;
    for (const loc of l.localities) {
      if (x < loc.weight) return loc.hosts;
      x -= loc.weight;
    }
    return l.localities[l.localities.length - 1]!.hosts;
  }

  /** Per-level load out of 100 (for tests and status). */
  loads(isEjected: (host: Host) => boolean, generation: number): number[] {
    const c = this.stateFor(isEjected, generation).cumulative;
    return c.map((v, i) => v - (i === 0 ? 0 : c[i - 1]!));
  }

  private stateFor(isEjected: (host: Host) => boolean, generation: number): State {
    if (this.state && this.state.generation === generation) return this.state;
    const factor = this.options.overprovisioningFactor;
    const threshold = this.options.panicThreshold;
    const health: number[] = [];
    const levels: LevelState[] = this.levels.map((lvl) => {
      const healthy = lvl.all.filter((h) => !isEjected(h));
      const total = lvl.all.length;
      health.push(total === 0 ? 0 : Math.min(100, Math.floor((factor * healthy.length) / total)));
      const panic = threshold > 0 && inPanic(healthy.length, total, threshold);
      let localityTotal = 0;
      const localities = lvl.localities.map((b) => {
        const ok = panic ? b.hosts : b.hosts.filter((h) => !isEjected(h));
        const availability = b.hosts.length === 0 ? 0 : Math.min(1, (factor / 100) * (b.hosts.filter((h) => !isEjected(h)).length / b.hosts.length));
        const weight = ok.length === 0 ? 0 : b.weight * (panic ? 1 : availability);
        localityTotal += weight;
        return { hosts: ok, weight };
      });
      return { all: lvl.all, healthy, panic, localities, localityTotal };
    });
    const load = priorityLoad(health, levels.map((l) => l.panic), levels.map((l) => l.all.length), threshold);
    const cumulative: number[] = [];
    let sum = 0;
    for (const v of load) cumulative.push((sum += v));
    this.state = { generation, levels, cumulative };
    return this.state;
  }
}

/** Envoy's recalculatePriorityLoad / recalculateLoadInTotalPanic, in whole percents. */
function priorityLoad(health: readonly number[], panic: readonly boolean[], hostCounts: readonly number[], threshold: number): number[] {
  const n = health.length;
  const load = new Array<number>(n).fill(0);
  if (n === 0) return load;
  const availability = Math.min(100, health.reduce((a, b) => a + b, 0));
  if (threshold > 0 && panic.every(Boolean)) {
    // Total panic: every level uses all its hosts, and the load follows their counts.
    const total = hostCounts.reduce((a, b) => a + b, 0);
    if (total === 0) {
      load[0] = 100;
      return load;
    }
    let left = 100;
    for (let i = 0; i < n; i++) left -= (load[i] = Math.floor((100 * hostCounts[i]!) / total));
    load[hostCounts.findIndex((c) => c > 0)]! += left;
    return load;
  }
  if (availability === 0) {
    // Nothing healthy (panic disabled): all to P0, which has no healthy host either.
    load[0] = 100;
    return load;
  }
  let left = 100;
  for (let i = 0; i < n; i++) {
    load[i] = Math.min(left, Math.floor((health[i]! * 100) / availability));
    left -= load[i]!;
  }
  if (left > 0) load[health.findIndex((h) => h > 0)]! += left;
  return load;
}
