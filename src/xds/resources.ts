/**
 * The four xDS resource types the ADS client speaks, in the order Envoy
 * applies them, with decoding from `Any`, a structural check per resource
 * (errors name the resource and field, for the NACK's error_detail), and the
 * names one type makes the client subscribe to in another.
 */
import { TYPE_URL, type Cluster, type ClusterLoadAssignment, type EnvoyResources, type HttpConnectionManager, type Listener, type RouteConfiguration } from '../config/envoy.js';
import { checkClusterPolicies } from '../core/cluster.js';
import { decodeAny } from './protos.js';
import { decodeAssignmentSliced } from './decode-sliced.js';
import { runNow, UNSLICED, type SliceBudget, type Sliced } from '../core/slices.js';

/** The EnvoyResources field each type fills. */
export type ResourceKey = keyof EnvoyResources;

/** Static description of one xDS type. */
export interface XdsType {
  key: ResourceKey;
  typeUrl: string;
  /** Envoy's short name, for traces and status: LDS, RDS, CDS, EDS. */
  short: 'LDS' | 'RDS' | 'CDS' | 'EDS';
  /** Proto message name, for error messages. */
  kind: string;
  /** SotW: a response carries the full set (LDS, CDS) rather than only changed names (RDS, EDS). */
  fullState: boolean;
}

/** LDS, RDS, CDS, EDS. */
export const XDS_TYPES: readonly XdsType[] = [
  { key: 'listeners', typeUrl: TYPE_URL.listener, short: 'LDS', kind: 'Listener', fullState: true },
  { key: 'routes', typeUrl: TYPE_URL.route, short: 'RDS', kind: 'RouteConfiguration', fullState: false },
  { key: 'clusters', typeUrl: TYPE_URL.cluster, short: 'CDS', kind: 'Cluster', fullState: true },
  { key: 'endpoints', typeUrl: TYPE_URL.endpoint, short: 'EDS', kind: 'ClusterLoadAssignment', fullState: false },
];

/** Type by URL. */
export const XDS_TYPE_BY_URL: ReadonlyMap<string, XdsType> = new Map(XDS_TYPES.map((t) => [t.typeUrl, t]));

/** A resource as it arrives in a DiscoveryResponse (proto-loader may hand either form). */
export type WireAny = { type_url: string; value: Uint8Array } | ({ '@type': string } & Record<string, unknown>);

const RESOURCE_WRAPPER = 'type.googleapis.com/envoy.service.discovery.v3.Resource';

/** Decodes one resource of `type`; throws with a message naming what is wrong. */
export function decodeResource(type: XdsType, any: WireAny): Record<string, unknown> {
  return runNow(decodeResourceSliced(type, any, UNSLICED));
}

/** {@link decodeResource} yielding every `budget.size` endpoints of a ClusterLoadAssignment (decode-sliced.ts). */
export function* decodeResourceSliced(type: XdsType, any: WireAny, budget: SliceBudget): Sliced<Record<string, unknown>> {
  if ('@type' in any) {
    const { '@type': url, ...rest } = any;
    if (url === RESOURCE_WRAPPER) return yield* decodeResourceSliced(type, rest.resource as WireAny, budget);
    if (url !== type.typeUrl) throw new Error(`resource has type ${url}, expected ${type.typeUrl}`);
    return rest;
  }
  if (any.type_url === RESOURCE_WRAPPER) {
    const wrapper = decodeAny<{ resource?: WireAny }>(any);
    if (!wrapper.resource) throw new Error('Resource wrapper without resource');
    return yield* decodeResourceSliced(type, wrapper.resource, budget);
  }
  if (any.type_url !== type.typeUrl) throw new Error(`resource has type ${any.type_url}, expected ${type.typeUrl}`);
  return type.key === 'endpoints' ? yield* decodeAssignmentSliced(any.value, budget) : decodeAny(any);
}

/** The name a resource is known by (cluster_name for ClusterLoadAssignment). */
export function resourceName(type: XdsType, resource: Record<string, unknown>): string {
  const name = type.key === 'endpoints' ? resource.cluster_name : resource.name;
  return typeof name === 'string' ? name : '';
}

/** The HttpConnectionManager inside a proxyless (api_listener) Listener, if any. */
export function listenerHcm(listener: Listener): HttpConnectionManager | undefined {
  const hcm = listener.api_listener?.api_listener as (HttpConnectionManager & { '@type'?: string }) | undefined;
  return hcm && hcm['@type'] === TYPE_URL.httpConnectionManager ? hcm : undefined;
}

/**
 * Structural checks the compiler would otherwise trip over, with the field
 * path; returns undefined when the resource is acceptable.
 */
/** The HTTP filters an outbound (client-side) connection manager may carry: fault injection, CORS, the router. */
const OUTBOUND_HTTP_FILTERS: ReadonlySet<string> = new Set([TYPE_URL.fault, TYPE_URL.cors, TYPE_URL.router]);

export function checkResource(type: XdsType, name: string, resource: Record<string, unknown>): string | undefined {
  const where = `${type.kind} ${name || '<unnamed>'}`;
  if (!name) return `${where}: ${type.key === 'endpoints' ? 'cluster_name' : 'name'}: required`;
  switch (type.key) {
    case 'listeners': {
      const l = resource as unknown as Listener;
      if (!l.api_listener) return undefined; // a server-side listener: not ours to route
      const inner = l.api_listener.api_listener as { '@type'?: string } | undefined;
      if (!inner) return `${where}: api_listener.api_listener: required`;
      if (inner['@type'] !== TYPE_URL.httpConnectionManager) return `${where}: api_listener.api_listener: unsupported type ${inner['@type']}`;
      const hcm = inner as HttpConnectionManager;
      if (!hcm.rds && !hcm.route_config) return `${where}: api_listener.api_listener: neither rds nor route_config is set`;
      if (hcm.rds && !hcm.rds.route_config_name) return `${where}: api_listener.api_listener.rds.route_config_name: required`;
      const filters = hcm.http_filters ?? [];
      const last = filters[filters.length - 1];
      if (filters.length > 0 && last?.typed_config?.['@type'] !== TYPE_URL.router) {
        return `${where}: api_listener.api_listener.http_filters[${filters.length - 1}]: the last filter must be the router`;
      }
      // As Envoy and gRPC's xDS clients (gRFC A39): a filter the client cannot run is refused unless the
      // control plane marked it optional — never skipped in silence (istiod's stateful-session filter, say).
      for (const [i, f] of filters.entries()) {
        const url = f.typed_config?.['@type'];
        if (url !== undefined && OUTBOUND_HTTP_FILTERS.has(url)) continue;
        if ((f as { is_optional?: boolean }).is_optional === true) continue;
        return `${where}: api_listener.api_listener.http_filters[${i}]: HTTP filter "${f.name}" (${url ?? 'no typed_config'}) is not supported outbound and not marked is_optional`;
      }
      return undefined;
    }
    case 'routes': {
      const rc = resource as unknown as RouteConfiguration;
      // Envoy refuses a domain that two virtual hosts of one RouteConfiguration both claim ("Only unique values for domains").
      const domains = new Set<string>();
      for (const [i, vh] of (rc.virtual_hosts ?? []).entries()) {
        if (!vh.domains || vh.domains.length === 0) return `${where}: virtual_hosts[${i}].domains: must not be empty`;
        for (const d of vh.domains) {
          const key = d.toLowerCase();
          if (domains.has(key)) return `${where}: virtual_hosts[${i}].domains: duplicate domain "${d}" (only unique values for domains are permitted)`;
          domains.add(key);
        }
        for (const [j, route] of (vh.routes ?? []).entries()) {
          const wc = route.route?.weighted_clusters;
          if (wc) {
            const sum = wc.clusters.reduce((s, c) => s + Number(c.weight?.value ?? 0), 0);
            if (sum <= 0) return `${where}: virtual_hosts[${i}].routes[${j}].route.weighted_clusters: sum of weights is 0`;
          }
        }
      }
      return undefined;
    }
    case 'clusters': {
      const c = resource as unknown as Cluster;
      if (c.type === 'EDS' && !c.eds_cluster_config?.eds_config) return `${where}: eds_cluster_config.eds_config: required for an EDS cluster`;
      const problem = checkClusterPolicies(c);
      return problem === undefined ? checkAssignment(`${where}: load_assignment`, c.load_assignment) : `${where}: ${problem}`;
    }
    case 'endpoints':
      return checkAssignment(where, resource as unknown as ClusterLoadAssignment);
  }
}

/** {@link checkResource} yielding every `budget.size` endpoints (a ClusterLoadAssignment can hold 100,000). */
export function* checkResourceSliced(type: XdsType, name: string, resource: Record<string, unknown>, budget: SliceBudget): Sliced<string | undefined> {
  if (type.key !== 'endpoints' || !name) return checkResource(type, name, resource);
  return yield* checkAssignmentSliced(`${type.kind} ${name}`, resource as unknown as ClusterLoadAssignment, budget);
}

/** Envoy's proto rules for endpoints: an address, a port in 1–65535, weights ≥ 1. */
function checkAssignment(where: string, cla: ClusterLoadAssignment | undefined): string | undefined {
  return runNow(checkAssignmentSliced(where, cla, UNSLICED));
}

function* checkAssignmentSliced(where: string, cla: ClusterLoadAssignment | undefined, budget: SliceBudget): Sliced<string | undefined> {
  const groups = cla?.endpoints ?? [];
  for (let i = 0; i < groups.length; i++) {
    const group = groups[i]!;
    const lw = (group as { load_balancing_weight?: { value?: number | string } }).load_balancing_weight;
    if (lw !== undefined && lw !== null && !(Number(lw.value ?? 0) >= 1)) return `${where}: endpoints[${i}].load_balancing_weight: must be at least 1`;
    const lbEndpoints = group.lb_endpoints ?? [];
    for (let j = 0; j < lbEndpoints.length; j++) {
      if (budget.spend()) yield;
      const lb = lbEndpoints[j]!;
      const at = (): string => `${where}: endpoints[${i}].lb_endpoints[${j}]`;
      const sa = lb.endpoint?.address?.socket_address;
      if (!sa?.address) return `${at()}.endpoint.address.socket_address.address: required`;
      const port = Number(sa.port_value ?? 0);
      if (!(Number.isInteger(port) && port >= 1 && port <= 65535)) return `${at()}.endpoint.address.socket_address.port_value: must be 1–65535, got ${sa.port_value ?? 0}`;
      const w = lb.load_balancing_weight;
      if (w !== undefined && w !== null && !(Number(w.value ?? 0) >= 1)) return `${at()}.load_balancing_weight: must be at least 1`;
    }
  }
  return undefined;
}

/** RDS names the listeners need (sorted, unique). */
export function routeNamesOf(listeners: Iterable<Listener>): string[] {
  const names = new Set<string>();
  for (const l of listeners) {
    const name = listenerHcm(l)?.rds?.route_config_name;
    if (name) names.add(name);
  }
  return [...names].sort();
}

/** EDS names the clusters need: service_name, else the cluster name (sorted, unique). */
export function endpointNamesOf(clusters: Iterable<Cluster>): string[] {
  const names = new Set<string>();
  for (const c of clusters) {
    if (c.type === 'EDS') names.add(c.eds_cluster_config?.service_name || c.name);
  }
  return [...names].sort();
}
