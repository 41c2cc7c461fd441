/**
 * Envoy's load balancers over a cluster's healthy hosts: ROUND_ROBIN,
 * LEAST_REQUEST (power of two choices on active requests), RANDOM, and the
 * consistent-hashing RING_HASH and MAGLEV (hash-lb.ts), each
 * honouring endpoint weights (`load_balancing_weight`) as Envoy does: a host
 * gets traffic in proportion to its weight. Picks can avoid a host (retries go
 * to another endpoint when one exists).
 */
import { MaglevLb, RingHashLb, type RingHashConfig } from './hash-lb.js';
import type { RandomSource } from './random.js';
import type { SliceBudget, Sliced } from './slices.js';

/** An upstream endpoint, with the live state the balancer reads. */
export interface Host {
  /** `address:port` */
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly weight: number;
  /** requests in flight, maintained by the adapter (LEAST_REQUEST reads it) */
  active: number;
}

export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV';

export interface LoadBalancer {
  /** True for RING_HASH and MAGLEV: the router computes the route's hash policy for them. */
  readonly hashed?: boolean;
  /**
   * Picks a host, avoiding `avoid` when another is available; undefined when
   * none. `hash` is the request's hash-policy value (hashing balancers only;
   * they draw a random one when it is undefined, as Envoy does).
   */
  pick(hosts: readonly Host[], avoid: Host | undefined, hash?: bigint): Host | undefined;
  /** Builds what `pick` needs for `hosts` ahead of time, in slices (hashing balancers' tables). */
  prepare?(hosts: readonly Host[], budget: SliceBudget): Sliced<void>;
}

/** The settings of the hashing balancers (Cluster.ring_hash_lb_config / maglev_lb_config). */
export interface HashLbConfig {
  readonly ringHash?: RingHashConfig;
  readonly maglevTableSize?: number;
}

export function createLoadBalancer(policy: LbPolicy, random: RandomSource, config: HashLbConfig = {}): LoadBalancer {
  switch (policy) {
    case 'LEAST_REQUEST':
      return new LeastRequest(random);
    case 'RANDOM':
      return new RandomLb(random);
    case 'RING_HASH':
      return new RingHashLb(random, config.ringHash ?? { minimumRingSize: 1024, maximumRingSize: 8_388_608 });
    case 'MAGLEV':
      return new MaglevLb(random, config.maglevTableSize ?? 65_537);
    default:
      return new RoundRobin();
  }
}

/**
 * The weights of one host list, computed once per list (a cluster's hosts, or
 * the healthy subset outlier detection hands out, both reused across picks).
 * `cumulative` is undefined when every weight is equal: the unweighted paths
 * then run, as Envoy's balancers do.
 */
class Weights {
  private hosts: readonly Host[] | undefined;
  private cumulative: Float64Array | undefined;
  private total = 0;

  /** The cumulative weights of `hosts`, or undefined when they are all equal. */
  of(hosts: readonly Host[]): Float64Array | undefined {
    if (hosts !== this.hosts) {
      this.hosts = hosts;
      this.cumulative = undefined;
      const first = hosts[0]?.weight ?? 1;
      let uniform = true;
      for (let i = 1; i < hosts.length && uniform; i++) uniform = hosts[i]!.weight === first;
      if (!uniform) {
        const c = new Float64Array(hosts.length);
        let sum = 0;
        for (let i = 0; i < hosts.length; i++) c[i] = sum += Math.max(0, hosts[i]!.weight);
        this.cumulative = c;
        this.total = sum;
      }
    }
    return this.cumulative;
  }

  /** The host whose weight range holds `x` in [0, 1). */
  at(hosts: readonly Host[], cumulative: Float64Array, x: number): Host {
    const target = x * this.total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cumulative[mid]! > target) hi = mid;
      else lo = mid + 1;
    }
    return hosts[lo]!;
  }
}

/** The golden ratio's fractional part: successive multiples spread evenly over [0, 1). */
const PHI = 0.6180339887498949;

class RoundRobin implements LoadBalancer {
  private next = 0;
  private readonly weights = new Weights();
  pick(hosts: readonly Host[], avoid: Host | undefined): Host | undefined {
    const n = hosts.length;
    if (n === 0) return undefined;
    const cumulative = this.weights.of(hosts);
    if (cumulative !== undefined) {
      // Weighted: a low-discrepancy sequence over the weight ranges interleaves hosts in proportion
      // to their weights, deterministically, like Envoy's EDF scheduler (not its exact order).
      let host = this.weights.at(hosts, cumulative, (this.next++ * PHI) % 1);
      if (host === avoid && n > 1) host = this.weights.at(hosts, cumulative, (this.next++ * PHI) % 1);
      if (this.next > 0x3fffffff) this.next = 0;
      return host;
    }
    let host = hosts[this.next++ % n]!;
    if (host === avoid && n > 1) host = hosts[this.next++ % n]!;
    if (this.next > 0x3fffffff) this.next = 0;
    return host;
  }
}

class RandomLb implements LoadBalancer {
  private readonly weights = new Weights();
  constructor(private readonly random: RandomSource) {}
  pick(hosts: readonly Host[], avoid: Host | undefined): Host | undefined {
    const n = hosts.length;
    if (n === 0) return undefined;
    const cumulative = this.weights.of(hosts);
    if (cumulative !== undefined) {
      let host = this.weights.at(hosts, cumulative, this.random());
      if (host === avoid && n > 1) host = this.weights.at(hosts, cumulative, this.random());
      return host;
    }
    let host = hosts[Math.floor(this.random() * n)]!;
    if (host === avoid && n > 1) host = hosts[(hosts.indexOf(host) + 1 + Math.floor(this.random() * (n - 1))) % n]!;
    return host;
  }
}

/**
 * Envoy's default LEAST_REQUEST: two random choices, the one with fewer active
 * requests wins. With unequal weights the two choices are drawn by weight
 * (so an idle cluster splits in proportion to the weights, as Envoy's
 * weighted least-request scheduler does) and compared by active requests.
 */
class LeastRequest implements LoadBalancer {
  private readonly weights = new Weights();
  constructor(private readonly random: RandomSource) {}
  pick(hosts: readonly Host[], avoid: Host | undefined): Host | undefined {
    const n = hosts.length;
    if (n === 0) return undefined;
    if (n === 1) return hosts[0];
    const cumulative = this.weights.of(hosts);
    let a = this.draw(hosts, cumulative);
    let b = this.draw(hosts, cumulative);
    if (a === avoid) a = b;
    if (b === avoid) b = a;
    if (a === avoid) return hosts[(hosts.indexOf(a) + 1) % n];
    return b.active < a.active ? b : a;
  }

  /** One random choice: by weight when the weights differ, uniform otherwise. */
  private draw(hosts: readonly Host[], cumulative: Float64Array | undefined): Host {
    return cumulative !== undefined ? this.weights.at(hosts, cumulative, this.random()) : hosts[Math.floor(this.random() * hosts.length)]!;
  }
}
