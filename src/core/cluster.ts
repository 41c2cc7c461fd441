/**
 * A compiled cluster: its endpoints as live Host objects, the load balancer
 * and the cluster's policies. Host objects (and their live counters) carry
 * over from the previous snapshot when the endpoint is still there, so a
 * config push does not reset load-balancing or health state.
 */
import type { Cluster, ClusterLoadAssignment } from '../config/envoy.js';
import { fromStruct, type ProtoStruct } from '../config/struct.js';
import { protoToMs } from './duration.js';
import { createLoadBalancer, type Host, type LbPolicy, type LoadBalancer } from './load-balancer.js';
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
    random: RandomSource,
  ) {
    this.lb = createLoadBalancer(lbPolicy, random);
  }

  healthyHosts(): readonly Host[] {
    return this.hosts;
  }

  pick(avoid?: Host): Host | undefined {
    return this.lb.pick(this.healthyHosts(), avoid);
  }
}

/** Compiles a cluster and its load assignment. */
export function compileCluster(cluster: Cluster, assignment: ClusterLoadAssignment | undefined, previous: CompiledCluster | undefined, random: RandomSource): CompiledCluster {
  const reuse = new Map<string, Host>();
  for (const h of previous?.hosts ?? []) reuse.set(h.id, h);
  const hosts: Host[] = [];
  const source = assignment ?? cluster.load_assignment;
  for (const locality of source?.endpoints ?? []) {
    for (const lbe of locality.lb_endpoints ?? []) {
      if (lbe.health_status && lbe.health_status !== 'HEALTHY' && lbe.health_status !== 'UNKNOWN') continue;
      const sa = lbe.endpoint.address.socket_address;
      const id = `${sa.address}:${sa.port_value}`;
      const istio = fromStruct(lbe.metadata?.filter_metadata?.istio as ProtoStruct | undefined);
      const labels = (istio.labels ?? {}) as Record<string, string>;
      const old = reuse.get(id);
      hosts.push(old && sameLabels(old.labels, labels)
        ? old
        : { id, address: sa.address, port: Number(sa.port_value), labels, weight: lbe.load_balancing_weight?.value ?? 1, active: old?.active ?? 0 });
    }
  }
  const lbPolicy: LbPolicy = cluster.lb_policy === 'LEAST_REQUEST' || cluster.lb_policy === 'RANDOM' ? cluster.lb_policy : 'ROUND_ROBIN';
  return new ClusterImpl(cluster.name, hosts, lbPolicy, protoToMs(cluster.connect_timeout) ?? 10_000, cluster, assignment, random);
}

function sameLabels(a: Readonly<Record<string, string>>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}
