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
import { createLoadBalancer, type Host, type LbPolicy, type LoadBalancer } from './load-balancer.js';
import { compileOutlierDetection, compilePanicThreshold, OutlierDetector } from './outlier-detection.js';
import type { RandomSource } from './random.js';

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
  /** Picks a host for an attempt, avoiding `avoid` when possible. */
  pick(avoid?: Host): Host | undefined;
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
    random: RandomSource,
  ) {
    this.lb = createLoadBalancer(lbPolicy, random);
    this.connectionPool = compileConnectionPool(source, breaker.policy);
  }

  readonly connectionPool: ConnectionPoolPolicy;

  healthyHosts(): readonly Host[] {
    return this.outlier ? this.outlier.healthyHosts(this.hosts, hostId) : this.hosts;
  }

  pick(avoid?: Host): Host | undefined {
    return this.lb.pick(this.healthyHosts(), avoid);
  }
}

const hostId = (h: Host): string => h.id;

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
  let reuse: Map<string, Host> | undefined;
  if (previous) {
    reuse = new Map();
    for (const h of previous.hosts) reuse.set(h.id, h);
  }
  const hosts: Host[] = [];
  const source = assignment ?? cluster.load_assignment;
  for (const locality of source?.endpoints ?? []) {
    for (const lbe of locality.lb_endpoints ?? []) {
      if (lbe.health_status && lbe.health_status !== 'HEALTHY' && lbe.health_status !== 'UNKNOWN') continue;
      const sa = lbe.endpoint.address.socket_address;
      const id = `${sa.address}:${sa.port_value}`;
      const labels = hostLabels(lbe.metadata?.filter_metadata?.istio as ProtoStruct | undefined, labelsCache);
      const old = reuse?.get(id);
      const weight = Number(lbe.load_balancing_weight?.value ?? 1);
      hosts.push(old && old.weight === weight && sameLabels(old.labels, labels)
        ? old
        : { id, address: sa.address, port: Number(sa.port_value), labels, weight, active: old?.active ?? 0 });
    }
  }
  const lbPolicy: LbPolicy = cluster.lb_policy === 'LEAST_REQUEST' || cluster.lb_policy === 'RANDOM' ? cluster.lb_policy : 'ROUND_ROBIN';
  const sameBreaker = previous && sameJson(previous.source.circuit_breakers, cluster.circuit_breakers);
  const breaker = sameBreaker ? previous.breaker : new CircuitBreaker(compileCircuitBreakers(cluster));
  const outlier = outlierFor(cluster, hosts, previous, random);
  // Envoy's Cluster.connect_timeout default is 5 s (istiod always sends its mesh default, 10 s).
  return new ClusterImpl(cluster.name, hosts, lbPolicy, protoToMs(cluster.connect_timeout) ?? 5_000, cluster, assignment, breaker, outlier, random);
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
