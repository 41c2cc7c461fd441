/**
 * Envoy's load balancers over a cluster's healthy hosts: ROUND_ROBIN,
 * LEAST_REQUEST (power of two choices on active requests) and RANDOM.
 * Picks can avoid a host (retries go to another endpoint when one exists).
 */
import type { RandomSource } from './random.js';

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

export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM';

export interface LoadBalancer {
  /** Picks a host, avoiding `avoid` when another is available; undefined when none. */
  pick(hosts: readonly Host[], avoid: Host | undefined): Host | undefined;
}

export function createLoadBalancer(policy: LbPolicy, random: RandomSource): LoadBalancer {
  switch (policy) {
    case 'LEAST_REQUEST':
      return new LeastRequest(random);
    case 'RANDOM':
      return new RandomLb(random);
    default:
      return new RoundRobin();
  }
}

class RoundRobin implements LoadBalancer {
  private next = 0;
  pick(hosts: readonly Host[], avoid: Host | undefined): Host | undefined {
    const n = hosts.length;
    if (n === 0) return undefined;
    let host = hosts[this.next++ % n]!;
    if (host === avoid && n > 1) host = hosts[this.next++ % n]!;
    if (this.next > 0x3fffffff) this.next = 0;
    return host;
  }
}

class RandomLb implements LoadBalancer {
  constructor(private readonly random: RandomSource) {}
  pick(hosts: readonly Host[], avoid: Host | undefined): Host | undefined {
    const n = hosts.length;
    if (n === 0) return undefined;
    let host = hosts[Math.floor(this.random() * n)]!;
    if (host === avoid && n > 1) host = hosts[(hosts.indexOf(host) + 1 + Math.floor(this.random() * (n - 1))) % n]!;
    return host;
  }
}

/** Envoy's default LEAST_REQUEST: two random choices, the one with fewer active requests wins. */
class LeastRequest implements LoadBalancer {
  constructor(private readonly random: RandomSource) {}
  pick(hosts: readonly Host[], avoid: Host | undefined): Host | undefined {
    const n = hosts.length;
    if (n === 0) return undefined;
    if (n === 1) return hosts[0];
    let a = hosts[Math.floor(this.random() * n)]!;
    let b = hosts[Math.floor(this.random() * n)]!;
    if (a === avoid) a = b;
    if (b === avoid) b = a;
    if (a === avoid) return hosts[(hosts.indexOf(a) + 1) % n];
    return b.active < a.active ? b : a;
  }
}
