/**
 * A compiled cluster: its endpoints as live Host objects, the load balancer
 * and the cluster's policies. Host objects (and their live counters) carry
 * over from the previous snapshot when the endpoint is still there, so a
 * config push does not reset load-balancing or health state.
 */
import type { Cluster, ClusterLoadAssignment } from '../config/envoy.js';
import { fromStruct, type ProtoStruct } from '../config/struct.js';
import { protoToMs } from './duration.js';
import { CircuitBreaker, compileCircuitBreakers } from './circuit-breaker.js';
import { compileConnectionPool, type ConnectionPoolPolicy } from './connection-pool.js';
import { createLoadBalancer, type HashLbConfig, type Host, type LbPolicy, type LoadBalancer } from './load-balancer.js';
import { DEFAULT_MAGLEV_TABLE_SIZE, DEFAULT_MIN_RING_SIZE, isPrime, MAX_MAGLEV_TABLE_SIZE, MAX_RING_SIZE } from './hash-lb.js';
import { compileOutlierDetection, compilePanicThreshold, OutlierDetector } from './outlier-detection.js';
import type { RandomSource } from './random.js';
import { PrioritySet, type LocalityBucket, type PriorityLevel } from './priority-set.js';
import { runNow, UNSLICED, type SliceBudget } from './slices.js';

export interface CompiledCluster {
  readonly name: string;
  readonly hosts: readonly Host[];
  readonly lbPolicy: LbPolicy;
  readonly lb: LoadBalancer;
  readonly connectTimeoutMs: number;
  /** the Envoy resources it was compiled from, for config dumps and change detection */
  readonly source: Cluster;
  readonly assignment: ClusterLoadAssignment | undefined;
  /** Envoy's per-cluster resource manager (connection-pool limits, retry budget). */
  readonly breaker: CircuitBreaker;
  /** Per-endpoint pool settings (connection cap, idle timeout, requests per connection). */
  readonly connectionPool: ConnectionPoolPolicy;
  /** Outlier detection, when the cluster configures it. */
  readonly outlier: OutlierDetector | undefined;
  /** Hosts eligible for new requests (outlier detection and panic threshold applied). */
  healthyHosts(): readonly Host[];
  /** Priority levels and localities, when the assignment has more than one level or balances by locality weight. */
  readonly priorities: PrioritySet | undefined;
  /** Picks a host for an attempt, avoiding `avoid` when possible; `hash` feeds RING_HASH / MAGLEV. */
  pick(avoid?: Host, hash?: bigint): Host | undefined;
}

class ClusterImpl implements CompiledCluster {
  readonly lb: LoadBalancer;
  constructor(
    readonly name: string,
    readonly hosts: readonly Host[],
    readonly lbPolicy: LbPolicy,
    readonly connectTimeoutMs: number,
    readonly source: Cluster,
    readonly assignment: ClusterLoadAssignment | undefined,
    readonly breaker: CircuitBreaker,
    readonly outlier: OutlierDetector | undefined,
    private readonly random: RandomSource,
    readonly priorities: PrioritySet | undefined,
  ) {
    this.lb = createLoadBalancer(lbPolicy, random, compileHashLbConfig(source));
    this.connectionPool = compileConnectionPool(source, breaker.policy);
  }

  readonly connectionPool: ConnectionPoolPolicy;

  healthyHosts(): readonly Host[] {
    return this.outlier ? this.outlier.healthyHosts(this.hosts, hostId) : this.hosts;
  }

  pick(avoid?: Host, hash?: bigint): Host | undefined {
    const p = this.priorities;
    if (p === undefined) return this.lb.pick(this.healthyHosts(), avoid, hash);
    // Envoy chooses the priority from the request hash when there is one, else at random.
    const draw = hash !== undefined ? Number(hash % 100n) : Math.floor(this.random() * 100);
    const outlier = this.outlier;
    const hosts = p.hostsFor(outlier ? (h) => outlier.isEjected(h.id) : notEjected, outlier?.generation ?? 0, draw, this.random, this.lb.hashed !== true);
    return this.lb.pick(hosts, avoid, hash);
  }
}

const hostId = (h: Host): string => h.id;
const notEjected = (): boolean => false;

/**
 * Host labels by the `istio` metadata Struct they come from. Translation shares
 * one Struct among endpoints with the same labels, so one snapshot compile
 * converts each once; Host labels are read-only.
 */
export type LabelsCache = Map<object, Readonly<Record<string, string>>>;

/**
 * The checks compiling a cluster's policies makes (outlier detection, panic
 * threshold, circuit breakers, connection pool), without building any live
 * state: an xDS client runs it on every Cluster as it arrives, so a bad one is
 * NACKed even while the snapshot waits for endpoints. Returns the problem
 * (`field: reason`), or undefined.
 */
export function checkClusterPolicies(cluster: Cluster): string | undefined {
  try {
    compileHashLbConfig(cluster);
    compileOutlierDetection(cluster);
    compilePanicThreshold(cluster);
    compileConnectionPool(cluster, compileCircuitBreakers(cluster));
  } catch (err) {
    const e = err as { path?: string; reason?: string; message: string };
    return e.path !== undefined && e.reason !== undefined ? `${e.path}: ${e.reason}` : e.message;
  }
  const timeout = protoToMs(cluster.connect_timeout);
  // Envoy: connect_timeout must be greater than 0 (proto validation `duration.gt: {}`).
  if (cluster.connect_timeout && !(timeout! > 0)) return 'connect_timeout: must be greater than 0';
  return undefined;
}

/** Compiles a cluster and its load assignment, carrying live state over from `previous`. */
export function compileCluster(cluster: Cluster, assignment: ClusterLoadAssignment | undefined, previous: CompiledCluster | undefined, random: RandomSource, labelsCache: LabelsCache = new Map()): CompiledCluster {
  return runNow(compileClusterSliced(cluster, assignment, previous, random, labelsCache, UNSLICED));
}

/**
 * {@link compileCluster} in slices of `budget` endpoints. A cluster whose
 * Cluster and ClusterLoadAssignment are the very objects `previous` was
 * compiled from (the xDS client keeps an unchanged resource's object) is
 * `previous` itself: only changed clusters are recompiled.
 */
export function* compileClusterSliced(cluster: Cluster, assignment: ClusterLoadAssignment | undefined, previous: CompiledCluster | undefined, random: RandomSource, labelsCache: LabelsCache, budget: SliceBudget): Generator<void, CompiledCluster, void> {
  if (previous && previous.source === cluster && previous.assignment === assignment) return previous;
  let reuse: Map<string, Host> | undefined;
  if (previous) {
    reuse = new Map();
    for (const h of previous.hosts) {
      reuse.set(h.id, h);
      if (budget.spend()) yield;
    }
  }
  const hosts: Host[] = [];
  const source = assignment ?? cluster.load_assignment;
  const levels = new Map<number, LocalityBucket[]>();
  for (const locality of source?.endpoints ?? []) {
    const bucket: Host[] = [];
    const priority = Number(locality.priority ?? 0);
    const list = levels.get(priority) ?? [];
    if (list.length === 0) levels.set(priority, list);
    const l = locality.locality;
    list.push({ locality: `${l?.region ?? ''}/${l?.zone ?? ''}/${l?.sub_zone ?? ''}`, weight: Number(locality.load_balancing_weight?.value ?? 0), hosts: bucket });
    const lbEndpoints = locality.lb_endpoints ?? [];
    for (let i = 0; i < lbEndpoints.length; i++) {
      const lbe = lbEndpoints[i]!;
      if (budget.spend()) yield;
      if (lbe.health_status && lbe.health_status !== 'HEALTHY' && lbe.health_status !== 'UNKNOWN') continue;
      const sa = lbe.endpoint.address.socket_address;
      const id = `${sa.address}:${sa.port_value}`;
      const labels = hostLabels(lbe.metadata?.filter_metadata?.istio as ProtoStruct | undefined, labelsCache);
      const old = reuse?.get(id);
      const weight = Number(lbe.load_balancing_weight?.value ?? 1);
      const host = old && old.weight === weight && sameLabels(old.labels, labels)
        ? old
        : { id, address: sa.address, port: Number(sa.port_value), labels, weight, active: old?.active ?? 0 };
      hosts.push(host);
      bucket.push(host);
    }
  }
  const lbPolicy: LbPolicy = LB_POLICIES.has(cluster.lb_policy as LbPolicy) ? cluster.lb_policy as LbPolicy : 'ROUND_ROBIN';
  const sameBreaker = previous && sameJson(previous.source.circuit_breakers, cluster.circuit_breakers);
  const breaker = sameBreaker ? previous.breaker : new CircuitBreaker(compileCircuitBreakers(cluster));
  const outlier = outlierFor(cluster, hosts, previous, random);
  // Envoy's Cluster.connect_timeout default is 5 s (istiod always sends its mesh default, 10 s).
  const compiled = new ClusterImpl(cluster.name, hosts, lbPolicy, protoToMs(cluster.connect_timeout) ?? 5_000, cluster, assignment, breaker, outlier, random, prioritySet(cluster, source, levels));
  // A hash table (ring, Maglev) for all hosts is built here, in slices, not by the first request after the swap.
  if (compiled.lb.prepare !== undefined && compiled.priorities === undefined) yield* compiled.lb.prepare(hosts, budget);
  return compiled;
}

/**
 * The priority set of an assignment, when it needs one: more than one
 * priority level, or locality-weighted balancing over more than one locality.
 * One level without locality weighting balances over all hosts, as before.
 */
function prioritySet(cluster: Cluster, source: ClusterLoadAssignment | undefined, levels: Map<number, LocalityBucket[]>): PrioritySet | undefined {
  const localityWeighted = cluster.common_lb_config?.locality_weighted_lb_config !== undefined;
  const list: PriorityLevel[] = [...levels].map(([priority, localities]) => ({ priority, localities }));
  if (list.length <= 1 && !(localityWeighted && (list[0]?.localities.length ?? 0) > 1)) return undefined;
  const factor = Number(source?.policy?.overprovisioning_factor?.value ?? 140);
  return new PrioritySet(list, { overprovisioningFactor: factor > 0 ? factor : 140, localityWeighted, panicThreshold: compilePanicThreshold(cluster) });
}

const LB_POLICIES = new Set<LbPolicy>(['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV']);

/**
 * Cluster.ring_hash_lb_config / maglev_lb_config → the hashing balancers'
 * settings, with Envoy's defaults and validation (ring sizes ≤ 8M and min ≤
 * max; a prime Maglev table ≤ 5 000 011). Throws `{ path, reason }`.
 */
export function compileHashLbConfig(cluster: Cluster): HashLbConfig {
  const bad = (path: string, reason: string): never => {
    throw Object.assign(new Error(`${path}: ${reason}`), { path, reason });
  };
  if (cluster.lb_policy === 'RING_HASH') {
    const c = cluster.ring_hash_lb_config;
    if (c?.hash_function !== undefined && c.hash_function !== 'XX_HASH') bad('ring_hash_lb_config.hash_function', `${c.hash_function} is not supported (only XX_HASH)`);
    const min = c?.minimum_ring_size ? Number(c.minimum_ring_size.value) : DEFAULT_MIN_RING_SIZE;
    const max = c?.maximum_ring_size ? Number(c.maximum_ring_size.value) : MAX_RING_SIZE;
    if (!(Number.isInteger(min) && min >= 1 && min <= MAX_RING_SIZE)) bad('ring_hash_lb_config.minimum_ring_size', `${min} is not in [1, ${MAX_RING_SIZE}]`);
    if (!(Number.isInteger(max) && max >= 1 && max <= MAX_RING_SIZE)) bad('ring_hash_lb_config.maximum_ring_size', `${max} is not in [1, ${MAX_RING_SIZE}]`);
    if (min > max) bad('ring_hash_lb_config.minimum_ring_size', `minimum_ring_size (${min}) > maximum_ring_size (${max})`);
    return { ringHash: { minimumRingSize: min, maximumRingSize: max } };
  }
  if (cluster.lb_policy === 'MAGLEV') {
    const size = cluster.maglev_lb_config?.table_size ? Number(cluster.maglev_lb_config.table_size.value) : DEFAULT_MAGLEV_TABLE_SIZE;
    if (!(size <= MAX_MAGLEV_TABLE_SIZE && isPrime(size))) bad('maglev_lb_config.table_size', `${size} is not a prime number up to ${MAX_MAGLEV_TABLE_SIZE} (Envoy requires a prime table size)`);
    return { maglevTableSize: size };
  }
  return {};
}

function hostLabels(struct: ProtoStruct | undefined, cache: LabelsCache): Readonly<Record<string, string>> {
  if (!struct) return {};
  let labels = cache.get(struct);
  if (!labels) cache.set(struct, (labels = (fromStruct(struct).labels ?? {}) as Record<string, string>));
  return labels;
}

/** Keeps the previous detector (and its ejections) when the policy is unchanged. */
function outlierFor(cluster: Cluster, hosts: readonly Host[], previous: CompiledCluster | undefined, random: RandomSource): OutlierDetector | undefined {
  const policy = compileOutlierDetection(cluster);
  if (!policy) return undefined;
  const ids = hosts.map(hostId);
  if (previous?.outlier && sameJson(previous.source.outlier_detection, cluster.outlier_detection) && sameJson(previous.source.common_lb_config, cluster.common_lb_config)) {
    previous.outlier.setHosts(ids);
    return previous.outlier;
  }
  return new OutlierDetector({ policy, hosts: ids, panicThreshold: compilePanicThreshold(cluster), random });
}

/** Stops the timers of a cluster's detector unless `next` still uses it. */
export function retireCluster(old: CompiledCluster, next: CompiledCluster | undefined): void {
  if (old.outlier && old.outlier !== next?.outlier) old.outlier.close();
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function sameLabels(a: Readonly<Record<string, string>>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}
