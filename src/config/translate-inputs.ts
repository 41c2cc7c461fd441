/**
 * The namespace-independent inputs of a translation — registry, mesh
 * VirtualServices by host, host ports, RateLimits, Gateway API consumer
 * routes — and the cache that keeps them (and translated outputs) across
 * namespaces and config generations, as the control plane translates for
 * every namespace on every push.
 */
import type { DestinationRuleSpec, IstioResource, VirtualServiceSpec } from './istio-types.js';
import { buildRegistry, expandHost, kubernetesAltNames, type Service } from './registry.js';
import { CONSUMER_NAMESPACE } from './gateway-api/index.js';
import { resolveDelegates } from './delegation.js';
import { usesConsistentHash } from './translate-lb.js';
import { exportToDefaultsKey, hostMatchesWildcard, scopedResources, visibleResources, type ExportToDefaults } from './export-to.js';

/** The port a destination host is assumed to listen on when nothing says otherwise. */
export const DEFAULT_PORT = 80;


/** The namespace-independent inputs of a translation, computed once per resource set. */
export interface MeshInputs {
  registry: Map<string, Service>;
  virtualServices: Map<string, MeshVirtualService>;
  hostPorts: Map<string, { hostname: string; port: number; service: Service | undefined }>;
  /** Outbound RateLimits by expanded host, in resource order. */
  rateLimits: Map<string, IstioResource[]>;
  /** Route cache keys by host port (see TranslateCache.routeKey). */
  routeKeys: Map<string, string>;
  /** Every host's own name: an alternate name another host has is not an alias (istiod's knownFQDN). */
  knownHosts: Set<string>;
  /** Gateway API consumer routes: by proxy namespace, by host (they apply to that namespace's proxies only). */
  consumerRoutes: Map<string, Map<string, MeshVirtualService>>;
}

export interface MeshVirtualService { namespace: string; spec: VirtualServiceSpec; resource: IstioResource }

/**
 * Memoizes translation across namespaces and config generations (the control
 * plane translates for every namespace on every push). Outputs are keyed by
 * the identity of the Istio resources they come from (unchanged files keep
 * their parsed objects) plus the few derived facts that matter, so an
 * unchanged host yields the very same Envoy objects, which the encoder then
 * skips by identity. Entries unused for a whole generation are dropped.
 */
export class TranslateCache {
  private current = new Map<string, unknown>();
  private previous = new Map<string, unknown>();
  private readonly ids = new WeakMap<object, number>();
  private nextId = 0;
  /** Mesh inputs by resource array: one per visibility (exportTo) a namespace has, all alive while the array is. */
  private readonly inputs = new WeakMap<readonly IstioResource[], MeshInputs>();
  private readonly scoped = new WeakMap<readonly IstioResource[], { defaults: string; resources: IstioResource[]; views: Map<string, readonly IstioResource[]> }>();
  private readonly serviceKeys = new WeakMap<Service, string>();
  private readonly vsHosts = new WeakMap<IstioResource, string[]>();

  private readonly hashRules = new WeakMap<object, boolean>();
  private delegatedFor: readonly IstioResource[] | undefined;
  private delegatedOut: readonly IstioResource[] = [];

  /** @internal The resources with VirtualService delegation resolved, once per input array. */
  delegated(resources: readonly IstioResource[]): readonly IstioResource[] {
    if (resources !== this.delegatedFor) {
      this.delegatedFor = resources;
      this.delegatedOut = resolveDelegates(resources);
    }
    return this.delegatedOut;
  }

  /** @internal Every destination host of a VirtualService, once per resource. */
  destinationHostsOf(vs: MeshVirtualService): string[] {
    let hosts = this.vsHosts.get(vs.resource);
    if (!hosts) this.vsHosts.set(vs.resource, (hosts = destinationHosts(vs)));
    return hosts;
  }

  /** @internal Whether a DestinationRule uses consistentHash anywhere, once per rule. */
  hashes(rule: DestinationRuleSpec): boolean {
    let v = this.hashRules.get(rule);
    if (v === undefined) this.hashRules.set(rule, (v = usesConsistentHash(rule)));
    return v;
  }

  /** Starts a generation: entries the previous one did not use go. */
  rotate(): void {
    this.previous = this.current;
    this.current = new Map();
  }

  /** A small stable id for an object. */
  id(o: object): number {
    let id = this.ids.get(o);
    if (id === undefined) this.ids.set(o, (id = ++this.nextId));
    return id;
  }

  /** @internal */
  get<T>(key: string): T | undefined {
    let v = this.current.get(key);
    if (v === undefined) {
      v = this.previous.get(key);
      if (v !== undefined) this.current.set(key, v);
    }
    return v as T | undefined;
  }

  /** @internal */
  set(key: string, value: unknown): void {
    this.current.set(key, value);
  }

  /** @internal The mesh inputs of `resources`, built once per array. */
  meshInputs(resources: readonly IstioResource[]): MeshInputs {
    let inputs = this.inputs.get(resources);
    if (!inputs) this.inputs.set(resources, (inputs = meshInputs(resources)));
    return inputs;
  }

  /**
   * @internal What a workload in `namespace` sees of `resources` (exportTo):
   * the array itself when nothing is scoped, else one array per distinct view,
   * shared by the namespaces that see the same, so their inputs are built once.
   */
  visible(resources: readonly IstioResource[], namespace: string, defaults: ExportToDefaults | undefined): readonly IstioResource[] {
    let entry = this.scoped.get(resources);
    const defaultsKey = exportToDefaultsKey(defaults);
    if (!entry || entry.defaults !== defaultsKey) this.scoped.set(resources, (entry = { defaults: defaultsKey, resources: scopedResources(resources, defaults), views: new Map() }));
    if (entry.resources.length === 0) return resources;
    const view = visibleResources(entry.resources, namespace, defaults);
    const key = view.map((r) => this.id(r)).join(',');
    let out = entry.views.get(key);
    if (!out) entry.views.set(key, (out = visibleResources(resources, namespace, defaults)));
    return out;
  }

  /** @internal What a service's clusters depend on: the resources it was built from. */
  serviceKey(service: Service | undefined): string {
    if (!service) return '-';
    let key = this.serviceKeys.get(service);
    if (key === undefined) {
      key = service.sources ? service.sources.map((r) => this.id(r)).join(',') : `?${this.id(service)}`;
      this.serviceKeys.set(service, key);
    }
    return key;
  }

  /**
   * @internal The namespace-independent part of a host port's route key: the
   * VirtualService (by identity) and the port numbers of every host it routes
   * or mirrors to (all the cluster namer reads of them). Once per generation.
   */
  routeKey(inputs: MeshInputs, name: string, hostname: string): string {
    let key = inputs.routeKeys.get(name);
    if (key !== undefined) return key;
    const ports = (h: string) => inputs.registry.get(h)?.ports.map((p) => p.number).join(',') ?? '-';
    const vs = inputs.virtualServices.get(hostname);
    if (vs) {
      let hosts = this.vsHosts.get(vs.resource);
      if (!hosts) this.vsHosts.set(vs.resource, (hosts = destinationHosts(vs)));
      key = `${name}\0${this.id(vs.resource)}\0${hosts.map(ports).join(';')}`;
    } else {
      key = `${name}\0-\0${ports(hostname)}`;
    }
    const addresses = inputs.registry.get(hostname)?.addresses;
    if (addresses) key += `\0@${addresses.join(',')}`;
    // Which alternate names other hosts claim decides this host's domains.
    for (const alt of kubernetesAltNames(hostname, undefined)) if (inputs.knownHosts.has(alt)) key += `\0${alt}`;
    inputs.routeKeys.set(name, key);
    return key;
  }
}

export function meshInputs(resources: readonly IstioResource[]): MeshInputs {
  const registry = buildRegistry(resources);
  const virtualServices = meshVirtualServices(resources);
  // As istiod's computeWildcardHostVirtualServiceIndex: a service without a VirtualService of its own
  // name takes the most specific wildcard one (`*.bar.com` for `x.bar.com`).
  const wildcards = [...virtualServices.keys()].filter((h) => h.startsWith('*')).sort((a, b) => b.length - a.length);
  if (wildcards.length > 0) {
    for (const hostname of registry.keys()) {
      if (virtualServices.has(hostname)) continue;
      const match = wildcards.find((w) => hostMatchesWildcard(hostname, w));
      if (match) virtualServices.set(hostname, virtualServices.get(match)!);
    }
  }
  const consumerRoutes = new Map<string, Map<string, MeshVirtualService>>();
  for (const r of resources) {
    const ns = r.kind === 'VirtualService' ? r.metadata.annotations?.[CONSUMER_NAMESPACE] : undefined;
    if (ns === undefined || r.kind !== 'VirtualService') continue;
    let byHost = consumerRoutes.get(ns);
    if (!byHost) consumerRoutes.set(ns, (byHost = new Map()));
    for (const host of r.spec.hosts ?? []) if (!byHost.has(host)) byHost.set(host, { namespace: ns, spec: r.spec, resource: r });
  }
  // Every registry service port gets a listener, a route table and its default cluster.
  const hostPorts: MeshInputs['hostPorts'] = new Map();
  for (const service of registry.values()) {
    for (const port of service.ports) hostPorts.set(`${service.hostname}:${port.number}`, { hostname: service.hostname, port: port.number, service });
  }
  // VirtualService hosts outside the registry still get routes (their destinations resolve by DNS); a wildcard
  // one on port 80 only, as istiod builds VirtualService-only hosts on other ports only for matching services.
  for (const [hostname, vs] of virtualServices) {
    if (registry.has(hostname)) continue;
    if (hostname.includes('*')) {
      if (hostname.startsWith('*.') && !hostname.slice(1).includes('*')) hostPorts.set(`${hostname}:${DEFAULT_PORT}`, { hostname, port: DEFAULT_PORT, service: undefined });
      continue;
    }
    const ports = new Set<number>();
    for (const http of vs.spec.http ?? []) for (const d of http.route ?? []) if (expandHost(d.destination.host, vs.namespace) === hostname) ports.add(d.destination.port?.number ?? DEFAULT_PORT);
    if (ports.size === 0) ports.add(DEFAULT_PORT);
    for (const port of ports) hostPorts.set(`${hostname}:${port}`, { hostname, port, service: undefined });
  }
  const rateLimits = new Map<string, IstioResource[]>();
  for (const r of resources) {
    if (r.kind !== 'RateLimit' || !r.spec.host) continue;
    const hostname = expandHost(r.spec.host, r.metadata.namespace);
    const list = rateLimits.get(hostname) ?? [];
    list.push(r);
    rateLimits.set(hostname, list);
  }
  const knownHosts = new Set<string>();
  for (const { hostname } of hostPorts.values()) knownHosts.add(hostname);
  return { registry, virtualServices, hostPorts, rateLimits, routeKeys: new Map(), knownHosts, consumerRoutes };
}

/** Every destination host a VirtualService names (routes and mirrors), expanded. */
function destinationHosts(vs: MeshVirtualService): string[] {
  const hosts = new Set<string>();
  for (const http of vs.spec.http ?? []) {
    for (const d of http.route ?? []) hosts.add(expandHost(d.destination.host, vs.namespace));
    if (http.mirror) hosts.add(expandHost(http.mirror.host, vs.namespace));
    for (const m of http.mirrors ?? []) hosts.add(expandHost(m.destination.host, vs.namespace));
  }
  return [...hosts];
}

/** VirtualServices that apply to sidecars (no gateways, or the reserved `mesh`), by expanded host. */
function meshVirtualServices(resources: readonly IstioResource[]): Map<string, MeshVirtualService> {
  const out = new Map<string, MeshVirtualService>();
  for (const r of resources) {
    if (r.kind !== 'VirtualService' || r.metadata.annotations?.[CONSUMER_NAMESPACE] !== undefined) continue;
    const gateways = r.spec.gateways;
    if (gateways && gateways.length > 0 && !gateways.includes('mesh')) continue;
    for (const host of r.spec.hosts ?? []) {
      const hostname = expandHost(host, r.metadata.namespace);
      if (!out.has(hostname)) out.set(hostname, { namespace: r.metadata.namespace, spec: r.spec, resource: r });
    }
  }
  return out;
}
