/**
 * The `Sidecar` resource, as istiod scopes a proxy with it
 * (pilot/pkg/model/sidecar.go, push_context.go getSidecarScope):
 *
 * - which Sidecar applies: one in the workload's namespace whose
 *   `workloadSelector.labels` match its labels, else the namespace's Sidecar
 *   without a selector, else the root namespace's (istio-system) one without
 *   a selector; the first in config order wins where Istio takes the oldest;
 * - `egress[].hosts` (`namespace/dnsName`; `*` any namespace, `.` the
 *   workload's, `~` none; dnsName `*`, `*.suffix` or a full name) decide which
 *   services the workload sees: the others get no listener, route or
 *   cluster, so calls to them are unknown hosts (passthrough, or NR under
 *   REGISTRY_ONLY). No `egress` means `*` / `*`, as istiod;
 * - `outboundTrafficPolicy.mode` overrides the mesh's ALLOW_ANY / REGISTRY_ONLY
 *   for the selected workloads.
 */
import type { IstioResource } from './istio-types.js';
import { labelsMatch } from './registry.js';

/** Istio's root namespace: Sidecars there without a selector are the mesh default. */
export const ROOT_NAMESPACE = 'istio-system';

/** Sidecar spec fields meshlet reads. */
export interface SidecarSpec {
  workloadSelector?: { labels?: Record<string, string> };
  egress?: Array<{ hosts?: string[]; port?: unknown; bind?: string; captureMode?: string }>;
  ingress?: unknown[];
  outboundTrafficPolicy?: { mode?: 'ALLOW_ANY' | 'REGISTRY_ONLY'; egressProxy?: unknown };
}

/** A compiled Sidecar scope. */
export interface SidecarScope {
  /** `namespace/name` of the Sidecar */
  readonly name: string;
  /** Whether a service `hostname` from `namespace` is visible to the workload. */
  visible(hostname: string, namespace: string): boolean;
  readonly outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY' | undefined;
}

/** The Sidecar that applies to a workload, or undefined (everything visible, the mesh's policy). */
export function sidecarFor(resources: readonly IstioResource[], proxy: { namespace: string; labels: Readonly<Record<string, string>> }): SidecarScope | undefined {
  const sidecars = resources.filter((r) => (r.kind as string) === 'Sidecar') as unknown as Array<{ metadata: { name: string; namespace: string }; spec: SidecarSpec }>;
  if (sidecars.length === 0) return undefined;
  const own = sidecars.filter((s) => s.metadata.namespace === proxy.namespace);
  const chosen = own.find((s) => s.spec.workloadSelector?.labels && labelsMatch(s.spec.workloadSelector.labels, proxy.labels as Record<string, string>))
    ?? own.find((s) => !s.spec.workloadSelector?.labels)
    ?? sidecars.find((s) => s.metadata.namespace === ROOT_NAMESPACE && !s.spec.workloadSelector?.labels);
  return chosen ? compileSidecar(chosen, proxy.namespace) : undefined;
}

function compileSidecar(s: { metadata: { name: string; namespace: string }; spec: SidecarSpec }, proxyNamespace: string): SidecarScope {
  const hosts = (s.spec.egress?.length ? s.spec.egress.flatMap((e) => e.hosts ?? []) : ['*/*']).map((h) => parseEgressHost(h, s.metadata.namespace, proxyNamespace));
  return {
    name: `${s.metadata.namespace}/${s.metadata.name}`,
    visible: (hostname, namespace) => hosts.some((h) => h.namespace(namespace) && h.host(hostname)),
    outboundTrafficPolicy: s.spec.outboundTrafficPolicy?.mode,
  };
}

/**
 * One `namespace/dnsName` egress host. `.` is the Sidecar's namespace (the
 * workload's, for a namespace Sidecar; istiod reads it as the config
 * namespace). A host without `/` is refused by istiod's validation.
 */
function parseEgressHost(text: string, sidecarNamespace: string, proxyNamespace: string): { namespace: (ns: string) => boolean; host: (h: string) => boolean } {
  const slash = text.indexOf('/');
  const ns = slash === -1 ? '*' : text.slice(0, slash);
  const dns = (slash === -1 ? text : text.slice(slash + 1)).toLowerCase();
  const namespace = ns === '*' ? () => true : ns === '~' ? () => false : ns === '.' ? (n: string) => n === (sidecarNamespace === ROOT_NAMESPACE ? proxyNamespace : sidecarNamespace) : (n: string) => n === ns;
  const host = dns === '*' ? () => true : dns.startsWith('*.') ? (h: string) => h.endsWith(dns.slice(1)) : (h: string) => h === dns;
  return { namespace, host };
}

/** istiod's validation of `egress[].hosts`: `namespace/dnsName` each, with a non-empty name. Returns the problem, if any. */
export function checkEgressHost(text: unknown): string | undefined {
  if (typeof text !== 'string' || !text.includes('/')) return `${JSON.stringify(text)} must be namespace/dnsName (e.g. "./*", "istio-system/*")`;
  const [ns, dns] = [text.slice(0, text.indexOf('/')), text.slice(text.indexOf('/') + 1)];
  if (ns === '' || dns === '') return `${JSON.stringify(text)}: namespace and dnsName must not be empty`;
  if (dns.includes('*') && dns !== '*' && !dns.startsWith('*.')) return `${JSON.stringify(text)}: a wildcard must be the leftmost label (*.example.com)`;
  return undefined;
}
