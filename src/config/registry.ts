/**
 * The service registry as embedded mode sees it: services from ServiceEntry,
 * their endpoints from inline endpoints or selected WorkloadEntries — the same
 * picture istiod builds from Kubernetes Services and Pods.
 */
import { workloadLocality } from './translate-locality.js';
import { isIP } from 'node:net';
import type { IstioResource, ResourceOf, WorkloadEntrySpec } from './istio-types.js';

/** Istio's cluster-local domain suffix. */
export const CLUSTER_DOMAIN = 'svc.cluster.local';

export interface ServicePort {
  number: number;
  name: string;
  protocol: string;
  targetPort?: number;
}

export interface ServiceEndpoint {
  address: string;
  /** port name → port, as on WorkloadEntry */
  ports: Record<string, number>;
  labels: Record<string, string>;
  weight: number;
  serviceAccount?: string;
  namespace: string;
  /** `region/zone/subzone` (WorkloadEntry `locality`, else the topology labels); absent when unknown */
  locality?: string;
}

export interface Service {
  hostname: string;
  namespace: string;
  ports: ServicePort[];
  endpoints: ServiceEndpoint[];
  resolution: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';
  location: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
  /** identities the service may run as (spiffe ids), from subjectAltNames / endpoint service accounts */
  subjectAltNames: string[];
  /** The ServiceEntry and selected WorkloadEntries it was built from (a cache key for incremental translation). */
  sources?: readonly IstioResource[];
  /**
   * The entry's virtual IPs (ServiceEntry `addresses`; a /32 or /128 is its
   * address): a call to one of them routes as the entry, as istiod adds them
   * to the virtual host's domains. Wider CIDR ranges are not here.
   */
  addresses?: readonly string[];
}

/**
 * Resolves a host written in a resource of `namespace` as Istio does
 * (ResolveShortnameToFQDN, pilot/pkg/model/config.go): only a name with no
 * dot is short, so `calculate` → `calculate.<namespace>.svc.cluster.local`;
 * `calculate.prod`, `example.de`, `*`, `*.foo` and IP addresses stay as
 * written. (Istio does not expand ServiceEntry hosts; meshlet expands their
 * short names too, so a ServiceEntry can stand in for a Kubernetes Service.)
 */
export function expandHost(host: string, namespace: string): string {
  const h = host.toLowerCase();
  if (h === '' || h === '*' || h.includes('.') || isIP(h) !== 0) return h;
  return `${h}.${namespace}.${CLUSTER_DOMAIN}`;
}

const SVC = `.${CLUSTER_DOMAIN}`;

/**
 * The names by which a proxy in `proxyNamespace` may call a service, each
 * with and without the port, as istiod's virtual-host domains for a
 * proxyless client (generateVirtualHostDomains and GenerateAltVirtualHosts,
 * pilot/pkg/networking/core/httproute.go): the hostname, its absolute form
 * (`….svc.cluster.local.`), and for a Kubernetes-shaped host
 * `name.ns.svc` and `name.ns` — plus `name` from the same namespace.
 * Alternate names that are some other host's own name (`known`) are left to
 * that host, as istiod's dedupeDomains does.
 */
export function hostAliases(hostname: string, port: number, proxyNamespace: string, known?: ReadonlySet<string>): string[] {
  const out = [hostname, `${hostname}:${port}`];
  if (isIP(hostname) === 0) out.push(`${hostname}.`, `${hostname}.:${port}`);
  for (const alt of kubernetesAltNames(hostname, proxyNamespace)) {
    if (known?.has(alt)) continue;
    out.push(alt, `${alt}:${port}`);
  }
  return out;
}

/**
 * istiod's generateAltVirtualHostsForKubernetesService for a proxy domain of
 * `<ns>.svc.cluster.local`: `name`, `name.ns.svc`, `name.ns` from the same
 * namespace, `name.ns` and `name.ns.svc` from another; none for other hosts.
 */
export function kubernetesAltNames(hostname: string, proxyNamespace: string | undefined): string[] {
  if (!hostname.endsWith(SVC)) return [];
  const svc = hostname.indexOf('.svc.');
  const dot = hostname.indexOf('.');
  if (svc <= 0 || dot + 1 > svc) return [];
  const qualified = hostname.slice(0, svc);
  if (hostname.slice(dot + 1, svc) === proxyNamespace) return [hostname.slice(0, dot), `${qualified}.svc`, qualified];
  return [qualified, `${qualified}.svc`];
}

/** Builds the registry from ServiceEntries and WorkloadEntries. */
export function buildRegistry(resources: readonly IstioResource[]): Map<string, Service> {
  const services = new Map<string, Service>();
  const workloadEntries = resources.filter((r): r is ResourceOf<'WorkloadEntry'> => r.kind === 'WorkloadEntry');
  for (const r of resources) {
    if (r.kind !== 'ServiceEntry') continue;
    const spec = r.spec;
    const ns = r.metadata.namespace;
    const selectedEntries = spec.workloadSelector
      ? workloadEntries.filter((we) => we.metadata.namespace === ns && labelsMatch(spec.workloadSelector?.labels, we.spec.labels))
      : [];
    const selected = spec.workloadSelector
      ? selectedEntries.map((we) => toEndpoint(we.spec, we.metadata.namespace))
      : (spec.endpoints ?? []).map((e) => toEndpoint(e, ns));
    const sources: IstioResource[] = selectedEntries.length === 0 ? [r] : [r, ...selectedEntries];
    const addresses: string[] = [];
    for (const a of spec.addresses ?? []) {
      const ip = virtualIp(a);
      if (ip !== undefined && ip !== '0.0.0.0' && !addresses.includes(ip)) addresses.push(ip);
    }
    for (const host of spec.hosts) {
      const hostname = expandHost(host, ns);
      if (services.has(hostname)) continue; // first definition wins, as in Istio
      // DNS_ROUND_ROBIN without endpoints calls the host name, as DNS does (Envoy resolves either).
      const endpoints = selected.length > 0 || (spec.resolution !== 'DNS' && spec.resolution !== 'DNS_ROUND_ROBIN')
        ? selected
        : [{ address: hostname.startsWith('*') ? host : host, ports: {}, labels: {}, weight: 1, namespace: ns }];
      const service: Service = {
        hostname,
        namespace: ns,
        ports: (spec.ports ?? []).map(toServicePort),
        endpoints,
        resolution: spec.resolution ?? 'NONE',
        location: spec.location ?? 'MESH_EXTERNAL',
        subjectAltNames: spec.subjectAltNames ?? [],
        sources,
      };
      if (addresses.length > 0) service.addresses = addresses;
      services.set(hostname, service);
    }
  }
  return services;
}

/**
 * A ServiceEntry address as istiod converts it (serviceregistry/serviceentry
 * conversion.go): an IP, or a CIDR whose mask covers the whole address
 * (`/32`, `/128`) read as that IP; a wider range is undefined (see
 * {@link isAddressRange}).
 */
export function virtualIp(address: string): string | undefined {
  const slash = address.indexOf('/');
  if (slash === -1) return isIP(address) !== 0 ? address : undefined;
  const ip = address.slice(0, slash);
  const bits = Number(address.slice(slash + 1));
  const family = isIP(ip);
  return (family === 4 && bits === 32) || (family === 6 && bits === 128) ? ip : undefined;
}

/** An address that is a range (`10.0.0.0/16`): Envoy matches it on the listener's address (TCP), not on the Host. */
export function isAddressRange(address: string): boolean {
  return address.includes('/') && virtualIp(address) === undefined;
}

/**
 * The domains a service's virtual IPs add to its virtual host on `port`
 * (generateVirtualHostDomains / appendDomainPort): `ip` and `ip:port`, an
 * IPv6 address in brackets.
 */
export function vipDomains(service: Service | undefined, port: number): string[] {
  if (!service?.addresses) return [];
  const out: string[] = [];
  for (const ip of service.addresses) {
    const host = isIP(ip) === 6 ? `[${ip}]` : ip;
    out.push(host, `${host}:${port}`);
  }
  return out;
}

function toServicePort(p: { number: number; name?: string; protocol?: string; targetPort?: number }): ServicePort {
  const port: ServicePort = { number: p.number, name: p.name ?? `port-${p.number}`, protocol: (p.protocol ?? 'HTTP').toUpperCase() };
  if (p.targetPort !== undefined) port.targetPort = p.targetPort;
  return port;
}

// Two literals rather than a conditional spread: this runs once per endpoint.
function toEndpoint(spec: WorkloadEntrySpec, namespace: string): ServiceEndpoint {
  const address = spec.address ?? '';
  const ports = spec.ports ?? {};
  const labels = spec.labels ?? {};
  const weight = spec.weight ?? 1;
  const out: ServiceEndpoint = spec.serviceAccount !== undefined
    ? { address, ports, labels, weight, serviceAccount: spec.serviceAccount, namespace }
    : { address, ports, labels, weight, namespace };
  const locality = workloadLocality(spec.locality, labels);
  if (locality) out.locality = locality;
  return out;
}

/** True when every selector label is present with the same value (an empty selector matches all). */
export function labelsMatch(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector) return true;
  const keys = Object.keys(selector); // not Object.entries: this runs per endpoint and subset
  for (let i = 0; i < keys.length; i++) if (labels?.[keys[i]!] !== selector[keys[i]!]) return false;
  return true;
}

/** The port an endpoint listens on for a service port. */
export function endpointPort(endpoint: ServiceEndpoint, port: ServicePort): number {
  return endpoint.ports[port.name] ?? port.targetPort ?? port.number;
}
