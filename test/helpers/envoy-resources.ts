/**
 * Small Envoy resource objects for core tests: a request view, clusters with
 * endpoints, and a resource set with one route configuration.
 */
import type { Cluster, ClusterLoadAssignment, EnvoyResources, LbEndpoint, Route, VirtualHost } from '../../src/config/envoy.js';
import type { RequestView } from '../../src/core/router.js';

/** A request as the router sees it; header names are looked up lower-case. */
export function view(path: string, headers: Record<string, string> = {}, query = '', method = 'GET'): RequestView {
  return { method, path, query, header: (name) => headers[name] };
}

/** One endpoint; `labels` go where translation puts them (`filter_metadata.istio.labels`). */
export function endpoint(address: string, port: number, opts: { labels?: Record<string, string>; weight?: number; health?: string } = {}): LbEndpoint {
  const lbe: LbEndpoint = { endpoint: { address: { socket_address: { address, port_value: port } } } };
  if (opts.weight !== undefined) lbe.load_balancing_weight = { value: opts.weight };
  if (opts.health !== undefined) lbe.health_status = opts.health;
  if (opts.labels) {
    const fields = Object.fromEntries(Object.entries(opts.labels).map(([k, v]) => [k, { stringValue: v }]));
    lbe.metadata = { filter_metadata: { istio: { fields: { labels: { structValue: { fields } } } } } };
  }
  return lbe;
}

/** A ClusterLoadAssignment with one locality. */
export function assignment(cluster: string, endpoints: LbEndpoint[]): ClusterLoadAssignment {
  return { cluster_name: cluster, endpoints: [{ lb_endpoints: endpoints }] };
}

/** An EDS cluster named `name` with extra fields. */
export function edsCluster(name: string, extra: Partial<Cluster> = {}): Cluster {
  return { name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, ...extra };
}

/** A route to `cluster` matching `prefix`. */
export function prefixRoute(prefix: string, cluster: string, name?: string): Route {
  return { ...(name && { name }), match: { prefix }, route: { cluster } };
}

/** Resources with one route configuration `rc` holding `vhosts`. */
export function resources(vhosts: VirtualHost[], clusters: Cluster[] = [], endpoints: ClusterLoadAssignment[] = []): EnvoyResources {
  return { listeners: [], routes: [{ name: 'rc', virtual_hosts: vhosts }], clusters, endpoints };
}
