/**
 * The telemetry handle of each route's destination clusters, made once per
 * (compiled route, cluster) and shared by every request on it, for HTTP and
 * gRPC alike: one derivation of the destination_* labels from the cluster.
 */
import type { CompiledRoute } from '../core/route.js';
import type { OutboundTargetHandle, OutboundTelemetry } from './outbound.js';

/**
 * The destination service of an Envoy cluster: the host of Istio's
 * `outbound|port|subset|host` names, else the cluster name itself (a cluster
 * from another control plane is named for its service).
 */
export function destinationServiceOf(cluster: string): string {
  const parts = cluster.split('|');
  return parts.length === 4 && parts[3] !== '' ? parts[3]! : cluster;
}

/** Per route: one handle per destination cluster, dropped with the snapshot that owns the route. */
export class RouteTargets {
  private readonly handles = new WeakMap<CompiledRoute, OutboundTargetHandle[]>();

  constructor(private readonly outbound: () => OutboundTelemetry, private readonly protocol: 'http' | 'grpc') {}

  /** The handle of the route's `clusterIndex`-th destination. */
  get(route: CompiledRoute, clusterIndex: number): OutboundTargetHandle {
    let handles = this.handles.get(route);
    if (handles === undefined) this.handles.set(route, (handles = []));
    let handle = handles[clusterIndex];
    if (handle === undefined) {
      const cluster = route.clusters[clusterIndex]!;
      handle = handles[clusterIndex] = this.outbound().target({ service: destinationServiceOf(cluster), cluster, route: route.name, protocol: this.protocol });
    }
    return handle;
  }
}
