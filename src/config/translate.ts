/**
 * Istio resources → Envoy v3 resources for one proxy (workload). The same
 * function feeds embedded mode and the control plane, so the two can never
 * disagree (DESIGN.md §1).
 */
import { msToProto } from '../core/duration.js';
import type { Cluster, ClusterLoadAssignment, EnvoyResources, Listener, LbEndpoint, Route, RouteConfiguration } from './envoy.js';
import { TYPE_URL } from './envoy.js';
import type { Destination, DestinationRuleSpec, IstioResource, ResourceOf, TrafficPolicy, VirtualServiceSpec } from './istio-types.js';
import { buildRegistry, endpointPort, expandHost, hostAliases, labelsMatch, type Service, type ServicePort } from './registry.js';
import { toStruct } from './struct.js';
import { clusterName, defaultRetryPolicy, translateHttpRoute } from './translate-routes.js';
import { translateConnectionPool, translateOutlierDetection } from './translate-resilience.js';
import { applyRateLimits } from './translate-ratelimit.js';

/** The workload a translation is for. */
export interface ProxyInfo {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  serviceAccount?: string;
}

/** The port a destination host is assumed to listen on when nothing says otherwise. */
const DEFAULT_PORT = 80;

/** Translates validated Istio resources into the Envoy resources a proxy in `proxy.namespace` sees. */
export function translate(resources: readonly IstioResource[], proxy: ProxyInfo): EnvoyResources {
  const registry = buildRegistry(resources);
  const rules = destinationRules(resources, proxy.namespace);
  const virtualServices = meshVirtualServices(resources);
  const out: EnvoyResources = { listeners: [], routes: [], clusters: [], endpoints: [] };
  const clusters = new Map<string, { service: Service | undefined; hostname: string; port: ServicePort; subset: string | undefined }>();

  const namerFor = (vsNamespace: string, listenerPort: number) => (dest: Destination): string => {
    const hostname = expandHost(dest.host, vsNamespace);
    const service = registry.get(hostname);
    const portNumber = dest.port?.number ?? (service?.ports.length === 1 ? service.ports[0]!.number : listenerPort);
    const port = service?.ports.find((p) => p.number === portNumber) ?? { number: portNumber, name: `port-${portNumber}`, protocol: 'HTTP' };
    const name = clusterName(port.number, dest.subset, hostname);
    if (!clusters.has(name)) clusters.set(name, { service, hostname, port, subset: dest.subset });
    return name;
  };

  // Every registry service port gets a listener, a route table and its default cluster.
  const hostPorts = new Map<string, { hostname: string; port: number; service: Service | undefined }>();
  for (const service of registry.values()) {
    for (const port of service.ports) hostPorts.set(`${service.hostname}:${port.number}`, { hostname: service.hostname, port: port.number, service });
  }
  // VirtualService hosts outside the registry still get routes (their destinations resolve by DNS).
  for (const [hostname, vs] of virtualServices) {
    if (registry.has(hostname) || hostname.includes('*')) continue;
    const ports = new Set<number>();
    for (const http of vs.spec.http ?? []) for (const d of http.route ?? []) if (expandHost(d.destination.host, vs.namespace) === hostname) ports.add(d.destination.port?.number ?? DEFAULT_PORT);
    if (ports.size === 0) ports.add(DEFAULT_PORT);
    for (const port of ports) hostPorts.set(`${hostname}:${port}`, { hostname, port, service: undefined });
  }

  for (const [name, { hostname, port, service }] of hostPorts) {
    const vs = virtualServices.get(hostname);
    const namer = namerFor(vs?.namespace ?? service?.namespace ?? proxy.namespace, port);
    const routes: Route[] = vs
      ? (vs.spec.http ?? []).flatMap((http, i) => translateHttpRoute(http, i, port, namer))
      : [{ name: 'default', match: { prefix: '/' }, route: { cluster: namer({ host: hostname, port: { number: port } }), timeout: { seconds: 0, nanos: 0 }, retry_policy: defaultRetryPolicy() } }];
    out.routes.push({ name, virtual_hosts: [{ name, domains: hostAliases(hostname, port, proxy.namespace), routes }] } satisfies RouteConfiguration);
    out.listeners.push(apiListener(name));
    namer({ host: hostname, port: { number: port } });
  }

  applyRateLimits(resources, out.routes, registry, namerFor(proxy.namespace, DEFAULT_PORT));

  for (const [name, { service, hostname, port, subset }] of clusters) {
    const rule = rules.get(hostname);
    const subsetSpec = subset ? rule?.subsets?.find((s) => s.name === subset) : undefined;
    const policy = mergePolicies(rule?.trafficPolicy, subsetSpec?.trafficPolicy, port.number);
    out.clusters.push(edsCluster(name, policy));
    const endpoints = (service?.endpoints ?? [{ address: hostname, ports: {}, labels: {}, weight: 1, namespace: '' }])
      .filter((e) => !subset || (subsetSpec !== undefined && labelsMatch(subsetSpec.labels, e.labels)));
    out.endpoints.push({
      cluster_name: name,
      endpoints: endpoints.length === 0 ? [] : [{
        locality: {},
        load_balancing_weight: { value: 1 },
        lb_endpoints: endpoints.map((e): LbEndpoint => ({
          endpoint: { address: { socket_address: { address: e.address, port_value: endpointPort(e, port) } } },
          health_status: 'HEALTHY',
          load_balancing_weight: { value: e.weight || 1 },
          metadata: { filter_metadata: { istio: toStruct({ labels: e.labels, namespace: e.namespace, ...(e.serviceAccount && { service_account: e.serviceAccount }) }) as Record<string, unknown> } },
        })),
      }],
    } satisfies ClusterLoadAssignment);
  }
  return out;
}

function apiListener(name: string): Listener {
  return {
    name,
    api_listener: {
      api_listener: {
        '@type': TYPE_URL.httpConnectionManager,
        stat_prefix: name,
        rds: { route_config_name: name, config_source: { ads: {}, resource_api_version: 'V3' } },
        http_filters: [
          { name: 'envoy.filters.http.fault', typed_config: { '@type': TYPE_URL.fault } },
          { name: 'envoy.filters.http.router', typed_config: { '@type': TYPE_URL.router } },
        ],
      },
    },
  };
}

function edsCluster(name: string, policy: TrafficPolicy): Cluster {
  const lb = policy.loadBalancer?.simple;
  return {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: name },
    connect_timeout: msToProto(10_000),
    lb_policy: lb === 'LEAST_REQUEST' || lb === 'LEAST_CONN' ? 'LEAST_REQUEST' : lb === 'RANDOM' ? 'RANDOM' : 'ROUND_ROBIN',
    ...(policy.outlierDetection && translateOutlierDetection(policy.outlierDetection, { kind: 'DestinationRule', resource: name, path: 'trafficPolicy.outlierDetection' })),
    ...translateConnectionPool(policy.connectionPool, { kind: 'DestinationRule', resource: name, path: 'trafficPolicy.connectionPool' }),
  };
}

/** Subset policy overrides the rule's; port-level settings override both (Istio's precedence). */
function mergePolicies(top: TrafficPolicy | undefined, subset: TrafficPolicy | undefined, port: number): TrafficPolicy {
  const layer = (p: TrafficPolicy | undefined): TrafficPolicy => {
    const portLevel = p?.portLevelSettings?.find((s) => s.port?.number === port);
    return { ...p, ...portLevel };
  };
  const merged = { ...layer(top), ...layer(subset) };
  delete merged.portLevelSettings;
  return merged;
}

/** DestinationRules by host; the proxy's own namespace wins over the rule's namespace, as in Istio. */
function destinationRules(resources: readonly IstioResource[], proxyNamespace: string): Map<string, DestinationRuleSpec> {
  const out = new Map<string, DestinationRuleSpec>();
  const drs = resources.filter((r): r is ResourceOf<'DestinationRule'> => r.kind === 'DestinationRule');
  drs.sort((a, b) => Number(b.metadata.namespace === proxyNamespace) - Number(a.metadata.namespace === proxyNamespace));
  for (const dr of drs) {
    const host = expandHost(dr.spec.host, dr.metadata.namespace);
    if (!out.has(host)) out.set(host, dr.spec);
  }
  return out;
}

/** VirtualServices that apply to sidecars (no gateways, or the reserved `mesh`), by expanded host. */
function meshVirtualServices(resources: readonly IstioResource[]): Map<string, { namespace: string; spec: VirtualServiceSpec }> {
  const out = new Map<string, { namespace: string; spec: VirtualServiceSpec }>();
  for (const r of resources) {
    if (r.kind !== 'VirtualService') continue;
    const gateways = r.spec.gateways;
    if (gateways && gateways.length > 0 && !gateways.includes('mesh')) continue;
    for (const host of r.spec.hosts ?? []) {
      const hostname = expandHost(host, r.metadata.namespace);
      if (!out.has(hostname)) out.set(hostname, { namespace: r.metadata.namespace, spec: r.spec });
    }
  }
  return out;
}
