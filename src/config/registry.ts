/**
 * The service registry as embedded mode sees it: services from ServiceEntry,
 * their endpoints from inline endpoints or selected WorkloadEntries — the same
 * picture istiod builds from Kubernetes Services and Pods.
 */
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
}

/**
 * Expands a host written in a resource of `namespace` to its FQDN, as Istio
 * does: `calculate` → `calculate.<namespace>.svc.cluster.local`,
 * `calculate.prod` → `calculate.prod.svc.cluster.local`. Hosts with a dot
 * that are not namespace-qualified short names are kept as written.
 */
export function expandHost(host: string, namespace: string): string {
  const h = host.toLowerCase();
  if (h === '*' || h.startsWith('*.')) return h;
  // Labels counted by their dots, not split: this runs for every destination of every route.
  const first = h.indexOf('.');
  if (first < 0) return `${h}.${namespace}.${CLUSTER_DOMAIN}`;
  const second = h.indexOf('.', first + 1);
  if (second < 0) return looksLikeDomain(h.slice(first + 1)) ? h : `${h}.${CLUSTER_DOMAIN}`;
  if (h.indexOf('.', second + 1) < 0 && h.endsWith('.svc')) return `${h}.cluster.local`;
  return h;
}

// Two-label names like `calculate.prod` are namespace-qualified; `example.com` is a domain.
const topLevelDomains = new Set(['com', 'org', 'net', 'io', 'dev', 'local', 'internal', 'localhost', 'test', 'example']);
function looksLikeDomain(label: string): boolean {
  return topLevelDomains.has(label);
}

/**
 * The names by which a proxy in `proxyNamespace` may call a service:
 * Istio's virtual-host domains, each with and without the port.
 */
export function hostAliases(hostname: string, port: number, proxyNamespace: string): string[] {
  const names = [hostname];
  if (hostname.endsWith(`.${CLUSTER_DOMAIN}`)) {
    const [name, ns] = hostname.split('.');
    names.push(`${name}.${ns}.svc`, `${name}.${ns}`);
    if (ns === proxyNamespace) names.push(name!);
  }
  const out: string[] = [];
  for (const n of names) out.push(n, `${n}:${port}`);
  return out;
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
    for (const host of spec.hosts) {
      const hostname = expandHost(host, ns);
      if (services.has(hostname)) continue; // first definition wins, as in Istio
      const endpoints = selected.length > 0 || spec.resolution !== 'DNS'
        ? selected
        : [{ address: hostname.startsWith('*') ? host : host, ports: {}, labels: {}, weight: 1, namespace: ns }];
      services.set(hostname, {
        hostname,
        namespace: ns,
        ports: (spec.ports ?? []).map(toServicePort),
        endpoints,
        resolution: spec.resolution ?? 'NONE',
        location: spec.location ?? 'MESH_EXTERNAL',
        subjectAltNames: spec.subjectAltNames ?? [],
        sources,
      });
    }
  }
  return services;
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
  return spec.serviceAccount !== undefined
    ? { address, ports, labels, weight, serviceAccount: spec.serviceAccount, namespace }
    : { address, ports, labels, weight, namespace };
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
