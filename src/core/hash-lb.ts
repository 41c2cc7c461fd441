/**
 * Envoy's consistent-hashing load balancers, RING_HASH (ketama) and MAGLEV,
 * built the way Envoy builds them so a key lands on the host an Envoy sidecar
 * would pick for the same endpoints:
 *
 * - ring hash (source/extensions/load_balancing_policies/ring_hash): each host
 *   gets `scale × normalized weight` points `xxHash64("<address:port>_<i>")`,
 *   scale = ceil(min weight × minimum_ring_size) / min weight capped at
 *   maximum_ring_size; a request goes to the first point at or after its hash.
 * - Maglev (…/maglev): hosts sorted by key; offset = xxHash64(key) mod M,
 *   skip = xxHash64(key, seed 1) mod (M − 1) + 1; the table is filled in
 *   rounds, a host taking a slot every `max weight / weight` rounds; a request
 *   goes to table[hash mod M].
 *
 * The table of a cluster's full host list is built in slices while the
 * cluster compiles (`prepare`: 20,000 hosts cost ~100 ms of hashing, which
 * must not land on the first request after a push); other host lists (the
 * healthy ones outlier detection leaves, a priority level) are built on
 * their first pick. An ejection or an endpoint leaving moves only the keys
 * of that host. Without a hash (no hash policy produced one) a random 64-bit
 * value is used, as Envoy does. A pick
 * that must avoid the previous host walks on as Envoy's retry host predicate
 * does (ring: the next point; Maglev: the hash XOR ~attempt).
 */
import type { Host, LoadBalancer } from './load-balancer.js';
import type { RandomSource } from './random.js';
import { runNow, UNSLICED, type SliceBudget, type Sliced } from './slices.js';
import { xxHash64 } from './xxhash64.js';

/** Envoy's ring size defaults and bound (RingHashLbConfig). */
export const DEFAULT_MIN_RING_SIZE = 1024;
export const MAX_RING_SIZE = 8_388_608;
/** Envoy's Maglev table size default (a prime) and bound (MaglevLbConfig). */
export const DEFAULT_MAGLEV_TABLE_SIZE = 65_537;
export const MAX_MAGLEV_TABLE_SIZE = 5_000_011;

/** How many further picks a retry makes to find a host other than the previous one (Istio's host_selection_retry_max_attempts). */
const AVOID_ATTEMPTS = 5;
const MASK = 0xffffffffffffffffn;

/** The ring-hash settings of a cluster (Cluster.ring_hash_lb_config). */
export interface RingHashConfig {
  readonly minimumRingSize: number;
  readonly maximumRingSize: number;
}

/** The key a host is hashed by: Envoy's `address()->asString()` (`[v6]:port` for IPv6). */
export function hostHashKey(host: Host): string {
  return host.address.includes(':') && !host.address.startsWith('[') ? `[${host.address}]:${host.port}` : `${host.address}:${host.port}`;
}

/** A 64-bit random value from two draws of the source. */
function random64(random: RandomSource): bigint {
  return (BigInt(Math.floor(random() * 4294967296)) << 32n) | BigInt(Math.floor(random() * 4294967296));
}

/** Normalized weights (weight / sum), as Envoy's normalizeHostWeights for one priority. */
function normalized(hosts: readonly Host[]): { weights: number[]; min: number; max: number } {
  let sum = 0;
  for (const h of hosts) sum += Math.max(1, h.weight);
  const weights = hosts.map((h) => Math.max(1, h.weight) / sum);
  return { weights, min: Math.min(...weights), max: Math.max(...weights) };
}

abstract class HashingLb<T> implements LoadBalancer {
  readonly hashed = true;
  /** One table per host list: priority levels and ejections hand out a few stable lists. */
  private readonly tables = new WeakMap<readonly Host[], T>();
  constructor(private readonly random: RandomSource) {}

  pick(hosts: readonly Host[], avoid: Host | undefined, hash?: bigint): Host | undefined {
    if (hosts.length === 0) return undefined;
    const table = this.tableFor(hosts);
    const h = hash ?? random64(this.random);
    let host = this.chooseIn(table, hosts, h, 0);
    for (let attempt = 1; host === avoid && hosts.length > 1 && attempt <= AVOID_ATTEMPTS; attempt++) host = this.chooseIn(table, hosts, h, attempt);
    return host;
  }

  /** @internal The host for `hash` on the `attempt`-th pick (Envoy's chooseHost(hash, attempt)). */
  choose(hosts: readonly Host[], hash: bigint, attempt: number): Host {
    return this.chooseIn(this.tableFor(hosts), hosts, hash, attempt);
  }

  /** Builds the table of `hosts` ahead of the first pick, a slice of `budget` hashes at a time. */
  *prepare(hosts: readonly Host[], budget: SliceBudget): Sliced<void> {
    if (hosts.length === 0 || this.tables.has(hosts)) return;
    this.tables.set(hosts, yield* this.build(hosts, budget));
  }

  protected tableFor(hosts: readonly Host[]): T {
    let table = this.tables.get(hosts);
    if (table === undefined) this.tables.set(hosts, (table = runNow(this.build(hosts, UNSLICED))));
    return table;
  }

  protected abstract build(hosts: readonly Host[], budget: SliceBudget): Sliced<T>;
  protected abstract chooseIn(table: T, hosts: readonly Host[], hash: bigint, attempt: number): Host;
}

interface Ring {
  readonly points: BigUint64Array;
  readonly owners: Int32Array;
}

/** Envoy's RING_HASH (ketama) with its xxHash64 ring. */
export class RingHashLb extends HashingLb<Ring> {
  constructor(random: RandomSource, private readonly config: RingHashConfig) {
    super(random);
  }

  protected *build(hosts: readonly Host[], budget: SliceBudget): Sliced<Ring> {
    const { weights, min } = normalized(hosts);
    const scale = Math.min(Math.ceil(min * this.config.minimumRingSize) / min, this.config.maximumRingSize);
    const hashes: bigint[] = [];
    const owners = new Map<bigint, number>();
    // Running sums, as Envoy: hosts whose share is not a whole number of points still fill the ring evenly.
    let current = 0;
    let target = 0;
    for (let h = 0; h < hosts.length; h++) {
      const key = `${hostHashKey(hosts[h]!)}_`;
      target += scale * weights[h]!;
      for (let i = 0; current < target; i++, current++) {
        const hash = xxHash64(key + i);
        hashes.push(hash);
        // Two points on one hash (a 2^-64 event per pair) go to the later host, as one of Envoy's sort orders would.
        owners.set(hash, h);
        if (budget.spend()) yield;
      }
    }
    // A typed array sorts 64-bit values natively (~7× a comparator sort of BigInts at 20,000 points).
    const points = BigUint64Array.from(hashes).sort();
    const ring = { points, owners: new Int32Array(points.length) };
    for (let i = 0; i < points.length; i++) ring.owners[i] = owners.get(points[i]!)!;
    return ring;
  }

  protected chooseIn(table: Ring, hosts: readonly Host[], hash: bigint, attempt: number): Host {
    const ring = table.points;
    // The first point at or after the hash, wrapping to the first (ketama_get_server).
    let lo = 0;
    let hi = ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ring[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    let i = lo === ring.length ? 0 : lo;
    if (attempt > 0) i = (i + attempt) % ring.length;
    return hosts[table.owners[i]!]!;
  }

  /** @internal The ring size for a host list (tests). */
  sizeOf(hosts: readonly Host[]): number {
    return this.tableFor(hosts).points.length;
  }
}

/** Envoy's MAGLEV table. */
export class MaglevLb extends HashingLb<Int32Array> {
  private readonly bigSize: bigint;
  constructor(random: RandomSource, private readonly tableSize: number) {
    super(random);
    this.bigSize = BigInt(tableSize);
  }

  protected *build(hosts: readonly Host[], budget: SliceBudget): Sliced<Int32Array> {
    const m = this.tableSize;
    const { weights, max } = normalized(hosts);
    // A stable order (by key) makes the table independent of the order endpoints arrive in.
    const sorted = hosts.map((h, i) => ({ index: i, key: hostHashKey(h), weight: weights[i]! }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const entries: Array<{ index: number; weight: number; target: number; position: number; skip: number }> = [];
    for (const e of sorted) {
      entries.push({ index: e.index, weight: e.weight, target: 0, position: Number(xxHash64(e.key) % this.bigSize), skip: Number(xxHash64(e.key, 1n) % BigInt(m - 1)) + 1 });
      if (budget.spend(2)) yield;
    }
    const table = new Int32Array(m).fill(-1);
    let filled = 0;
    for (let iteration = 1; filled < m; iteration++) {
      for (let i = 0; i < entries.length && filled < m; i++) {
        const e = entries[i]!;
        if (iteration * e.weight < e.target) continue;
        e.target += max;
        while (table[e.position]! !== -1) e.position = (e.position + e.skip) % m;
        table[e.position] = e.index;
        e.position = (e.position + e.skip) % m;
        filled++;
      }
    }
    return table;
  }

  protected chooseIn(table: Int32Array, hosts: readonly Host[], hash: bigint, attempt: number): Host {
    // Envoy: a retry flips most bits of the hash (hash ^ (~0 - attempt + 1)).
    const h = attempt > 0 ? hash ^ ((MASK - BigInt(attempt) + 1n) & MASK) : hash;
    return hosts[table[Number(h % this.bigSize)]!]!;
  }
}

/** Whether n is prime (Envoy requires a prime Maglev table size). */
export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}
