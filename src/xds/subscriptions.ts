/**
 * What an ADS client subscribes to, as gRPC's xDS client does (gRFC A27):
 * listeners (named, or wildcard), then the RouteConfigurations those
 * listeners name, then the clusters those routes (and the listeners' own
 * filters) name, then the ClusterLoadAssignments those clusters read. No
 * wildcard CDS: istiod's grpc generator builds nothing for a CDS request
 * without names (pilot/pkg/networking/grpcgen/cds.go BuildClusters).
 */
import type { Cluster, EnvoyResources, Listener, RouteConfiguration } from '../config/envoy.js';
import { INBOUND_LISTENER_PREFIX } from '../core/listener-role.js';
import { XDS_TYPES, endpointNamesOf, routeNamesOf } from './resources.js';

export { INBOUND_LISTENER_PREFIX };

/** The default `server_listener_resource_name_template` istio's grpc-agent writes into the bootstrap. */
export const DEFAULT_SERVER_LISTENER_TEMPLATE = `${INBOUND_LISTENER_PREFIX}%s`;

/**
 * The inbound listener name for a server on `ip:port`, from a bootstrap's
 * `server_listener_resource_name_template` (gRFC A36: `%s` is replaced by
 * the listening address, `ip:port`; IPv6 in brackets).
 */
export function serverListenerName(template: string, ip: string, port: number): string {
  const address = ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
  return template.includes('%s') ? template.replace('%s', address) : template;
}

/** Cluster names a set of resources references: from routes, mirrors, and filters (rate-limit services). */
export function clusterNamesOf(listeners: Iterable<Listener>, routes: Iterable<RouteConfiguration>): string[] {
  const names = new Set<string>();
  for (const l of listeners) collectClusterRefs(l, names, 0);
  for (const rc of routes) collectClusterRefs(rc, names, 0);
  return [...names].sort();
}

/**
 * Walks a decoded resource for the fields Envoy's route and filter protos
 * name clusters by: RouteAction `cluster`, `weighted_clusters.clusters[].name`,
 * RequestMirrorPolicy `cluster`, gRPC services' `envoy_grpc.cluster_name`.
 * A walk, not a list of paths, so a cluster a filter config names is never
 * left unsubscribed (its calls would then fail NC).
 */
function collectClusterRefs(value: unknown, out: Set<string>, depth: number): void {
  if (depth > 64 || value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (const v of value) collectClusterRefs(v, out, depth + 1);
    return;
  }
  const obj = value as Record<string, unknown>;
  for (const [key, v] of Object.entries(obj)) {
    if ((key === 'cluster' || key === 'cluster_name') && typeof v === 'string' && v) out.add(v);
    else if (key === 'weighted_clusters' && v && typeof v === 'object') {
      for (const c of ((v as { clusters?: Array<{ name?: string }> }).clusters ?? [])) if (c.name) out.add(c.name);
    } else collectClusterRefs(v, out, depth + 1);
  }
}

/** The names each dependent type needs, given the resources of the types before it. */
export interface NeededNames {
  routes: string[];
  clusters: string[];
  endpoints: string[];
}

/** RDS names from the listeners, CDS names from listeners and routes, EDS names from the clusters. */
export function neededNames(listeners: Iterable<Listener>, routes: Iterable<RouteConfiguration>, clusters: Iterable<Cluster>): NeededNames {
  const ls = [...listeners];
  return { routes: routeNamesOf(ls), clusters: clusterNamesOf(ls, routes), endpoints: endpointNamesOf(clusters) };
}

/** The per-type maps of a client as one EnvoyResources set. */
export function toEnvoyResources(maps: Map<string, Map<string, Record<string, unknown>>>): EnvoyResources {
  const out = { listeners: [], routes: [], clusters: [], endpoints: [] } as unknown as Record<string, unknown[]>;
  for (const type of XDS_TYPES) out[type.key] = [...maps.get(type.typeUrl)!.values()];
  return out as unknown as EnvoyResources;
}

/**
 * Drops EDS clusters whose ClusterLoadAssignment has not arrived, as Envoy
 * keeps such a cluster warming and unused: a call routed to it then gets a
 * prompt 503 `NC` naming the cluster (= the EDS resource name) instead of
 * waiting or failing as if the service had no healthy endpoint.
 */
export function withoutWarmingClusters(resources: EnvoyResources): EnvoyResources {
  const assigned = new Set(resources.endpoints.map((e) => e.cluster_name));
  const clusters = resources.clusters.filter((c) => c.type !== 'EDS' || assigned.has(c.eds_cluster_config?.service_name || c.name));
  return clusters.length === resources.clusters.length ? resources : { ...resources, clusters };
}
