/**
 * Istio resources → Envoy v3 resources for one proxy (workload). The same
 * function feeds embedded mode and the control plane, so the two can never
 * disagree (DESIGN.md §1).
 */
import { msToProto } from '../core/duration.js';
import type { Cluster, ClusterLoadAssignment, EnvoyResources, Listener, Route, RouteConfiguration } from './envoy.js';
import { TYPE_URL } from './envoy.js';
import type { Destination, DestinationRuleSpec, IstioResource, ResourceOf, TrafficPolicy } from './istio-types.js';
import { endpointPort, expandHost, hostAliases, kubernetesAltNames, vipDomains, type Service, type ServiceEndpoint } from './registry.js';
import { destinationRuleLookup, indexRules, visibleResources, type ExportToDefaults, type RuleCandidate } from './export-to.js';
import { clusterName, defaultRoute, hasSourceMatches, translateHttpRoute, type ClusterNamer } from './translate-routes.js';
import { translateConnectionPool, translateOutlierDetection } from './translate-resilience.js';
import { applyRateLimits, applySelectedGlobalRateLimits } from './translate-ratelimit.js';
import { applyEnvoyFilterRateLimits } from './translate-ratelimit-envoyfilter.js';
import { translateInbound, VIRTUAL_INBOUND } from './translate-inbound.js';
import { accessLogsFor, withAccessLogs, type AccessLogMeshConfig } from './translate-access-log.js';
import type { PathNormalizationType } from '../core/path-normalization.js';
import { translateGateway } from './translate-gateway.js';
import { UpstreamTlsTranslator } from './translate-tls.js';
import { LbEndpointBuilder } from './translate-endpoints.js';
import { translateGatewayApiRoute, usesGatewaySemantics, withGatewayApiRoutes } from './gateway-api/index.js';
import { localityEndpoints } from './translate-locality.js';
import { sidecarFor } from './sidecar.js';
import { resolveDelegates } from './delegation.js';
import { consistentHashToHashPolicy, hashForDestination, translateConsistentHash } from './translate-lb.js';
import { DEFAULT_PORT, TranslateCache, meshInputs, type MeshInputs } from './translate-inputs.js';
import { runNow, SliceBudget, type Sliced } from '../core/slices.js';
export { TranslateCache };

/** The workload a translation is for. */
export interface ProxyInfo {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  serviceAccount?: string;
  /**
   * The proxy's own locality (`region/zone/subzone`): localityLbSetting is
   * applied relative to it. Undefined: endpoints are grouped by locality but
   * given no proxy-relative priorities or weights.
   */
  locality?: string;
  /** The mesh's `meshConfig.pathNormalization.normalization`, for the inbound listener (default BASE). */
  pathNormalization?: PathNormalizationType;
  /** The mesh's access-log settings (meshConfig accessLogFile…, extensionProviders), with Telemetry `accessLogging`. */
  accessLog?: AccessLogMeshConfig;
  /** The mesh's exportTo defaults (meshConfig defaultServiceExportTo …); unset: `*`, as Istio. */
  exportTo?: ExportToDefaults;
}

/** A cluster a route names: resolved against the registry when the cluster is built. */
interface ClusterRef { hostname: string; port: number; subset: string | undefined }

/** What one (host, port) contributes: its listener, route table and the clusters these name. */
interface HostPortOutput { listener: Listener; routes: RouteConfiguration; refs: Array<[string, ClusterRef]> }

/**
 * Translates validated Istio resources into the Envoy resources a proxy in
 * `proxy.namespace` sees. Pass a {@link TranslateCache} when translating the
 * same (or a slightly changed) resource set repeatedly, as the control plane does.
 */
export function translate(input: readonly IstioResource[], proxy: ProxyInfo, cache?: TranslateCache): EnvoyResources {
  return runNow(translateSliced(input, proxy, cache));
}

/**
 * {@link translate} in slices: the clusters' endpoints (what grows with a
 * 20,000-endpoint ServiceEntry) are built a slice at a time, so a mesh's
 * apply gives the event loop turns; the rest is bounded by the resources.
 */
export function* translateSliced(input: readonly IstioResource[], proxy: ProxyInfo, cache?: TranslateCache, budget: SliceBudget = new SliceBudget()): Sliced<EnvoyResources> {
  // Gateway API routes join as the VirtualServices istiod makes of them (same array per input, so caches hold);
  // root VirtualServices get their delegates merged in, once per resource set (for sidecars and gateways alike).
  const withRoutes = withGatewayApiRoutes(input);
  const delegated = cache ? cache.delegated(withRoutes) : resolveDelegates(withRoutes);
  // exportTo: what this workload's namespace sees (VirtualServices and ServiceEntries exported to it).
  const resources = cache ? cache.visible(delegated, proxy.namespace, proxy.exportTo) : visibleResources(delegated, proxy.namespace, proxy.exportTo);
  const inputs = cache ? cache.meshInputs(resources) : meshInputs(resources);
  const { registry, virtualServices, hostPorts, rateLimits, knownHosts, consumerRoutes } = inputs;
  const consumer = consumerRoutes.get(proxy.namespace);
  const rules = destinationRules(resources, proxy.namespace, registry, proxy.exportTo?.defaultDestinationRuleExportTo);
  const upstreamTls = new UpstreamTlsTranslator(resources);
  const out: EnvoyResources = { listeners: [], routes: [], clusters: [], endpoints: [] };
  const clusters = new Map<string, ClusterRef>();

  const namerFor = (vsNamespace: string, listenerPort: number, refs?: Array<[string, ClusterRef]>): ClusterNamer => {
    const namer: ClusterNamer = (dest: Destination): string => {
      const hostname = expandHost(dest.host, vsNamespace);
      const service = registry.get(hostname);
      const portNumber = dest.port?.number ?? (service?.ports.length === 1 ? service.ports[0]!.number : listenerPort);
      const name = clusterName(portNumber, dest.subset, hostname);
      const ref = { hostname, port: portNumber, subset: dest.subset };
      if (!clusters.has(name)) clusters.set(name, ref);
      refs?.push([name, ref]);
      return name;
    };
    namer.hashPolicy = (dest: Destination) => {
      const ch = hashForDestination(rules.get(expandHost(dest.host, vsNamespace)), dest);
      return ch ? consistentHashToHashPolicy(ch) : undefined;
    };
    return namer;
  };

  // A Sidecar scopes what this workload sees: hosts outside its egress get no listener, route or cluster.
  const sidecar = sidecarFor(resources, proxy);
  const hidden = (hostname: string, service: Service | undefined): boolean =>
    sidecar !== undefined && !sidecar.visible(hostname, service?.namespace ?? virtualServices.get(hostname)?.namespace ?? proxy.namespace);
  for (const [name, { hostname, port, service }] of hostPorts) {
    if (hidden(hostname, service)) continue;
    const consumerRoute = consumer?.get(hostname);
    const vs = consumerRoute ?? virtualServices.get(hostname);
    const limits = rateLimits.get(hostname);
    // Routes that match on the caller depend on this proxy: they are not shared through the cache.
    const key = cache && !limits && !consumerRoute && !(vs && hasSourceMatches(vs.spec.http)) ? `R${ownNamespace(hostname, proxy.namespace) ? 1 : 0}${cache.routeKey(inputs, name, hostname)}${hashRulesKey(cache, inputs, rules, hostname)}` : undefined;
    let built = key ? cache!.get<HostPortOutput>(key) : undefined;
    if (built) {
      for (const [n, ref] of built.refs) if (!clusters.has(n)) clusters.set(n, ref);
    } else {
      // The clusters a host port names matter only for replaying it from the cache.
      const refs: Array<[string, ClusterRef]> | undefined = key ? [] : undefined;
      const namer = namerFor(vs?.namespace ?? service?.namespace ?? proxy.namespace, port, refs);
      const source = { labels: proxy.labels, namespace: proxy.namespace, gateways: ['mesh'] };
      const vsRoutes = vs
        ? (vs.spec.http ?? []).flatMap((http, i) => (usesGatewaySemantics(vs.resource) ? translateGatewayApiRoute(http, i, port, namer) : translateHttpRoute(http, i, port, namer, source)))
        : [];
      // As istiod (BuildSidecarVirtualHostWrapper): a VirtualService with no route for this port
      // (every match names another port) leaves the port to the service's default route.
      const routes: Route[] = vsRoutes.length > 0 ? vsRoutes : [defaultRoute(namer, hostname, port)];
      const rc: RouteConfiguration = { name, virtual_hosts: [{ name, domains: [...hostAliases(hostname, port, proxy.namespace, knownHosts), ...vipDomains(service, port)], routes }] };
      if (limits) applyRateLimits(limits, [rc], registry, namerFor(proxy.namespace, DEFAULT_PORT, refs));
      namer({ host: hostname, port: { number: port } });
      built = { listener: apiListener(name), routes: rc, refs: refs ?? [] };
      if (key) cache!.set(key, built);
    }
    out.routes.push(built.routes);
    out.listeners.push(built.listener);
  }

  // Gateway ports (when this proxy is a gateway) and the inbound listener; both are bound
  // listeners, so their route tables stay out of outbound lookups.
  const gateway = translateGateway(resources, proxy, (ns, port) => namerFor(ns, port));
  if (gateway.routes.length > 0) {
    applyRateLimits(resources, gateway.routes, registry, namerFor(proxy.namespace, DEFAULT_PORT));
    applySelectedGlobalRateLimits(resources, proxy, gateway.routes, registry, namerFor(proxy.namespace, DEFAULT_PORT));
  }
  const addedClusters: Cluster[] = [];
  applyEnvoyFilterRateLimits(resources, proxy, out.routes, gateway.routes, { registry, namer: namerFor(proxy.namespace, DEFAULT_PORT), addCluster: (c) => addedClusters.push(c) });
  out.listeners.push(...gateway.listeners, translateInbound(resources, proxy, proxy.pathNormalization !== undefined ? { pathNormalization: proxy.pathNormalization } : {}));
  out.listeners = withAccessLogs(out.listeners, accessLogsFor(resources, proxy, proxy.accessLog), VIRTUAL_INBOUND);
  out.routes.push(...gateway.routes);

  // As istiod's cluster builder: every service port has a cluster per DestinationRule subset, referenced or
  // not, so a route that starts using a subset finds its cluster already there (make before break).
  for (const { hostname, port, service } of hostPorts.values()) {
    if (hidden(hostname, service)) continue;
    const subsets = service ? rules.get(hostname)?.subsets : undefined;
    if (!subsets) continue;
    for (const s of subsets) {
      const name = clusterName(port, s.name, hostname);
      if (!clusters.has(name)) clusters.set(name, { hostname, port, subset: s.name });
    }
  }

  const lbEndpoints = new LbEndpointBuilder(upstreamTls);
  for (const [name, { hostname, port: portNumber, subset }] of clusters) {
    const rule = rules.get(hostname);
    const service = registry.get(hostname);
    const key = cache ? `C\0${name}\0${rule ? cache.id(rule) : '-'}\0${cache.serviceKey(service)}\0${upstreamTls.cacheKey}\0${proxy.locality ?? '-'}` : undefined;
    let built = key ? cache!.get<{ cluster: Cluster; endpoints: ClusterLoadAssignment }>(key) : undefined;
    if (!built) {
      const port = service?.ports.find((p) => p.number === portNumber) ?? { number: portNumber, name: `port-${portNumber}`, protocol: 'HTTP' };
      const subsetSpec = subset ? rule?.subsets?.find((s) => s.name === subset) : undefined;
      const policy = mergePolicies(rule?.trafficPolicy, subsetSpec?.trafficPolicy, port.number);
      const endpoints = subsetEndpoints(service?.endpoints ?? [{ address: hostname, ports: {}, labels: {}, weight: 1, namespace: '' }], subset, subsetSpec);
      const cluster = Object.assign(edsCluster(name, policy), upstreamTls.cluster({ tls: policy.tls, service, hostname, port: port.number, subset, endpoints }, (e) => endpointPort(e, port)));
      // The LbEndpoints are built (and kept by the builder) a slice at a time; grouping them below only looks them up.
      for (let i = 0; i < endpoints.length; i++) {
        lbEndpoints.of(endpoints[i]!, port);
        if (budget.spend()) yield;
      }
      built = { cluster, endpoints: { cluster_name: name, endpoints: localityEndpoints(cluster, endpoints, (e) => lbEndpoints.of(e, port), policy, proxy) } };
      if (key) cache!.set(key, built);
    }
    out.clusters.push(built.cluster);
    out.endpoints.push(built.endpoints);
  }
  // CLUSTER ADD patches (a rate-limit service outside the registry), unless a mesh cluster has that name.
  for (const c of addedClusters) if (!clusters.has(c.name)) out.clusters.push(c);
  return out;
}

/**
 * What a host port's routes take from DestinationRules: the rules (by
 * identity) of its destinations that balance by consistent hash, whose hash
 * policies the routes carry. Part of the route cache key.
 */
function hashRulesKey(cache: TranslateCache, inputs: MeshInputs, rules: RuleTable, hostname: string): string {
  const vs = inputs.virtualServices.get(hostname);
  let key = '';
  for (const h of vs ? cache.destinationHostsOf(vs) : [hostname]) {
    const rule = rules.get(h);
    if (rule && cache.hashes(rule)) key += `\0h${cache.id(rule)}`;
  }
  return key;
}

/** A service's endpoints a cluster carries: all of them, or those the subset's labels select (none for an unknown subset). */
function subsetEndpoints(endpoints: readonly ServiceEndpoint[], subset: string | undefined, spec: { labels?: Record<string, string> } | undefined): readonly ServiceEndpoint[] {
  if (!subset) return endpoints;
  if (!spec) return [];
  const selector = spec.labels;
  if (!selector) return endpoints;
  // labelsMatch with the selector's names listed once per cluster rather than once per endpoint.
  const names = Object.keys(selector);
  return endpoints.filter((e) => {
    for (let i = 0; i < names.length; i++) if (e.labels?.[names[i]!] !== selector[names[i]!]) return false;
    return true;
  });
}

/** Whether a cluster-local hostname is in the proxy's namespace (hostAliases then adds the short name). */
function ownNamespace(hostname: string, namespace: string): boolean {
  return kubernetesAltNames(hostname, namespace).length === 3;
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
  const cluster: Cluster = {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: name },
    connect_timeout: msToProto(10_000),
    lb_policy: lb === 'LEAST_REQUEST' || lb === 'LEAST_CONN' ? 'LEAST_REQUEST' : lb === 'RANDOM' ? 'RANDOM' : 'ROUND_ROBIN',
  };
  const hash = translateConsistentHash(policy.loadBalancer, { kind: 'DestinationRule', resource: name, path: 'trafficPolicy.loadBalancer' });
  if (hash) Object.assign(cluster, hash);
  // Object.assign keeps a spread's key order and overrides (connect_timeout) at a fraction of its cost.
  if (policy.outlierDetection) Object.assign(cluster, translateOutlierDetection(policy.outlierDetection, { kind: 'DestinationRule', resource: name, path: 'trafficPolicy.outlierDetection' }));
  return Object.assign(cluster, translateConnectionPool(policy.connectionPool, { kind: 'DestinationRule', resource: name, path: 'trafficPolicy.connectionPool' }));
}

/** Subset policy overrides the rule's; port-level settings override both (Istio's precedence). */
function mergePolicies(top: TrafficPolicy | undefined, subset: TrafficPolicy | undefined, port: number): TrafficPolicy {
  if (!top && !subset) return {};
  const layer = (p: TrafficPolicy | undefined): TrafficPolicy => {
    const portLevel = p?.portLevelSettings?.find((s) => s.port?.number === port);
    return { ...p, ...portLevel };
  };
  const merged = { ...layer(top), ...layer(subset) };
  delete merged.portLevelSettings;
  return merged;
}

/** The DestinationRules a workload applies, by host: looked up on first use, then remembered. */
interface RuleTable { get(host: string): DestinationRuleSpec | undefined }

/**
 * The DestinationRule a workload in `proxyNamespace` applies per host, as
 * istiod's destinationRule(): its own namespace's rule, else the one the
 * service's namespace exports to it, else the root namespace's (exportTo);
 * exact hosts before wildcard ones.
 */
function destinationRules(resources: readonly IstioResource[], proxyNamespace: string, registry: ReadonlyMap<string, Service>, fallback: readonly string[] | undefined): RuleTable {
  const candidates: RuleCandidate<DestinationRuleSpec>[] = [];
  for (const r of resources) {
    if (r.kind !== 'DestinationRule') continue;
    const dr = r as ResourceOf<'DestinationRule'>;
    candidates.push({ host: expandHost(dr.spec.host, dr.metadata.namespace), namespace: dr.metadata.namespace, exportTo: dr.spec.exportTo, hasSelector: dr.spec.workloadSelector !== undefined, spec: dr.spec });
  }
  const index = indexRules(candidates);
  const found = new Map<string, DestinationRuleSpec | undefined>();
  return {
    get(host) {
      if (candidates.length === 0) return undefined;
      if (found.has(host)) return found.get(host);
      const spec = destinationRuleLookup(index, host, proxyNamespace, registry.get(host)?.namespace, fallback);
      found.set(host, spec);
      return spec;
    },
  };
}
