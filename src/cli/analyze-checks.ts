/**
 * Cross-resource checks of `meshlet analyze`, with istioctl analyze's message
 * codes and wording (istio/istio pkg/config/analysis/analyzers and
 * pkg/config/analysis/msg/messages.yaml), reimplemented here:
 *
 *  - IST0101 ReferencedResourceNotFound: a VirtualService route or mirror
 *    names a subset no DestinationRule defines, a host no ServiceEntry or
 *    Kubernetes Service defines, or a Gateway that does not exist;
 *  - IST0109 ConflictingMeshGatewayVirtualServiceHosts: two VirtualServices
 *    bound to the mesh claim the same host in the same export scope;
 *  - IST0111 MultipleSidecarsWithoutWorkloadSelectors;
 *  - IST0132 VirtualServiceHostNotFoundInGateway.
 */
import { expandHost } from '../config/registry.js';
import { isPlainObject } from '../config/schema.js';

/** One analyzer message, as istioctl prints it. */
export interface AnalysisMessage {
  /** `IST0101`, or a meshlet code such as `MESHLET_UNSUPPORTED_FIELD`. */
  readonly code: string;
  /** istioctl's message type name (`ReferencedResourceNotFound`), or the meshlet code again. */
  readonly type: string;
  readonly level: 'Error' | 'Warning' | 'Info';
  /** `Kind namespace/name`, or `Kind name` when the YAML names no namespace (as istioctl). */
  readonly origin: string;
  readonly message: string;
  /** The istioctl analyzer whose check this is (`virtualservice.DestinationRuleAnalyzer`), or `meshlet`. */
  readonly analyzer: string;
}

/** A document as the analyzers read it: raw, with its namespace as written. */
export interface AnalyzedDoc {
  readonly kind: string;
  readonly name: string;
  /** The namespace written in the YAML, if any. */
  readonly writtenNamespace: string | undefined;
  /** The namespace it lives in (`default` when none is written). */
  readonly namespace: string;
  readonly spec: Record<string, unknown>;
  readonly annotations?: Record<string, unknown>;
}

/** `Kind ns/name` or `Kind name`, as istioctl's origins. */
export function originOf(d: Pick<AnalyzedDoc, 'kind' | 'name' | 'writtenNamespace'>): string {
  return d.writtenNamespace ? `${d.kind} ${d.writtenNamespace}/${d.name}` : `${d.kind} ${d.name}`;
}

type Destination = { host?: string; subset?: string; port?: { number?: number } };

/** Route destinations (http, tcp, tls) and mirrors of a VirtualService, as the analyzers' getRouteDestinations. */
function destinations(spec: Record<string, unknown>): { routes: Destination[]; mirrors: Destination[] } {
  const routes: Destination[] = [];
  const mirrors: Destination[] = [];
  for (const section of ['http', 'tcp', 'tls']) {
    const list = spec[section];
    if (!Array.isArray(list)) continue;
    for (const rule of list) {
      if (!isPlainObject(rule)) continue;
      // A route without a destination names the host "" (Istio reports it as not found).
      for (const r of Array.isArray(rule.route) ? rule.route : []) if (isPlainObject(r)) routes.push(isPlainObject(r.destination) ? (r.destination as Destination) : {});
      if (section !== 'http') continue;
      if (isPlainObject(rule.mirror)) mirrors.push(rule.mirror as Destination);
      for (const m of Array.isArray(rule.mirrors) ? rule.mirrors : []) if (isPlainObject(m) && isPlainObject(m.destination)) mirrors.push(m.destination as Destination);
    }
  }
  return { routes, mirrors };
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** istio's host.Name.Matches: equal, or a wildcard on either side covers the other. */
export function hostsMatch(a: string, b: string): boolean {
  const aw = a.startsWith('*');
  const bw = b.startsWith('*');
  if (aw && bw) return a.length < b.length ? b.slice(1).endsWith(a.slice(1)) : a.slice(1).endsWith(b.slice(1));
  if (aw) return b.endsWith(a.slice(1));
  if (bw) return a.endsWith(b.slice(1));
  return a === b;
}

/** Runs every cross-resource check over the documents. */
export function crossResourceChecks(docs: readonly AnalyzedDoc[]): AnalysisMessage[] {
  const out: AnalysisMessage[] = [];
  // As istioctl, every analyzer reads every well-formed resource, valid or not: schema validation is a check of its own.
  const vss = docs.filter((d) => d.kind === 'VirtualService');
  subsetsAndHosts(docs, vss, out);
  gateways(docs, vss, out);
  conflictingMeshHosts(vss, out);
  sidecars(docs, out);
  return out;
}

function notFound(d: AnalyzedDoc, what: string, name: string, analyzer: string): AnalysisMessage {
  return { code: 'IST0101', type: 'ReferencedResourceNotFound', level: 'Error', origin: originOf(d), message: `Referenced ${what} not found: "${name}"`, analyzer };
}

/** IST0101 for subsets (DestinationRuleAnalyzer) and hosts (DestinationHostAnalyzer, scoped by both exportTos as its GetDestinationHost). */
function subsetsAndHosts(docs: readonly AnalyzedDoc[], vss: readonly AnalyzedDoc[], out: AnalysisMessage[]): void {
  const subsets = new Set<string>();
  for (const dr of docs) {
    if (dr.kind !== 'DestinationRule' || typeof dr.spec.host !== 'string') continue;
    const host = expandHost(dr.spec.host, dr.namespace);
    for (const s of Array.isArray(dr.spec.subsets) ? dr.spec.subsets : []) if (isPlainObject(s) && typeof s.name === 'string') subsets.add(`${host}+${s.name}`);
  }
  // Hosts with the namespaces they are exported to (ServiceEntry exportTo, a Service's networking.istio.io/exportTo).
  const hosts: Array<{ host: string; namespace: string; exportTo: string[] }> = [];
  for (const d of docs) {
    if (d.kind === 'ServiceEntry') for (const h of strings(d.spec.hosts)) hosts.push({ host: expandHost(h, d.namespace), namespace: d.namespace, exportTo: strings(d.spec.exportTo) });
    if (d.kind === 'Service') {
      const annotation = d.annotations?.['networking.istio.io/exportTo'];
      hosts.push({ host: `${d.name}.${d.namespace}.svc.cluster.local`, namespace: d.namespace, exportTo: typeof annotation === 'string' ? annotation.split(',').map((x) => x.trim()) : [] });
    }
  }
  const visible = (e: { namespace: string; exportTo: string[] }, ns: string) => e.exportTo.length === 0 || e.exportTo.includes('*') || e.exportTo.includes(ns) || (e.exportTo.includes('.') && e.namespace === ns);
  for (const vs of vss) {
    // GetDestinationHost: the host must be visible in one of the namespaces the VirtualService is exported to (its own without exportTo).
    const exportTo = strings(vs.spec.exportTo).map((e) => (e === '.' ? vs.namespace : e));
    const scopes = exportTo.length > 0 ? exportTo : [vs.namespace];
    const hostKnown = (h: string) => hosts.some((known) => scopes.some((ns) => visible(known, ns)) && hostsMatch(known.host, h));
    const { routes, mirrors } = destinations(vs.spec);
    for (const [list, kind] of [[routes, ''], [mirrors, 'mirror ']] as const) {
      for (const d of list) {
        const host = expandHost(typeof d.host === 'string' ? d.host : '', vs.namespace);
        if (!hostKnown(host)) out.push(notFound(vs, `${kind}host`, d.host ?? '', 'virtualservice.DestinationHostAnalyzer'));
        if (d.subset && !subsets.has(`${host}+${d.subset}`)) out.push(notFound(vs, `${kind ? 'mirror' : 'host'}+subset in destinationrule`, `${d.host}+${d.subset}`, 'virtualservice.DestinationRuleAnalyzer'));
      }
    }
  }
}

/** IST0101 for a missing Gateway, IST0132 for a VirtualService host no server of its Gateway serves (GatewayAnalyzer). */
function gateways(docs: readonly AnalyzedDoc[], vss: readonly AnalyzedDoc[], out: AnalysisMessage[]): void {
  const byName = new Map(docs.filter((d) => d.kind === 'Gateway').map((g) => [`${g.namespace}/${g.name}`, g]));
  for (const vs of vss) {
    for (const ref of strings(vs.spec.gateways)) {
      if (ref === 'mesh') continue;
      const key = ref.includes('/') ? ref : `${vs.namespace}/${ref}`;
      const gw = byName.get(key);
      if (!gw) out.push(notFound(vs, 'gateway', ref, 'virtualservice.GatewayAnalyzer'));
      const gatewayHosts: string[] = [];
      for (const server of Array.isArray(gw?.spec.servers) ? gw!.spec.servers : []) {
        for (const raw of isPlainObject(server) ? strings(server.hosts) : []) {
          const slash = raw.indexOf('/');
          const ns = slash === -1 ? '*' : raw.slice(0, slash) === '.' ? gw!.namespace : raw.slice(0, slash);
          if (ns === '*' || ns === vs.namespace) gatewayHosts.push(slash === -1 ? raw : raw.slice(slash + 1));
        }
      }
      const vsHosts = strings(vs.spec.hosts);
      if (!gatewayHosts.some((gh) => vsHosts.some((h) => hostsMatch(gh, h)))) {
        out.push({ code: 'IST0132', type: 'VirtualServiceHostNotFoundInGateway', level: 'Warning', origin: originOf(vs), message: `one or more host [${vsHosts.join(' ')}] defined in VirtualService ${vs.namespace}/${vs.name} not found in Gateway ${key}.`, analyzer: 'virtualservice.GatewayAnalyzer' });
      }
    }
  }
}

/** IST0109 (ConflictingMeshGatewayHostsAnalyzer): hosts keyed by export scope, `*` scopes matching by wildcard. */
function conflictingMeshHosts(vss: readonly AnalyzedDoc[], out: AnalysisMessage[]): void {
  const scoped = new Map<string, AnalyzedDoc[]>();
  for (const vs of vss) {
    const gws = strings(vs.spec.gateways);
    if (gws.length > 0 && !gws.includes('mesh')) continue;
    const exportTo = strings(vs.spec.exportTo);
    const scopes = exportTo.length === 0 || exportTo.includes('*') ? ['*'] : [...new Set(exportTo.map((e) => (e === '.' ? vs.namespace : e)))];
    for (const scope of scopes) {
      for (const h of strings(vs.spec.hosts)) {
        const fqdn = h.startsWith('*') || h.includes('.') ? h : `${h}.${vs.namespace}.svc.cluster.local`;
        const key = `${scope}/${fqdn}`;
        scoped.set(key, [...(scoped.get(key) ?? []), vs]);
      }
    }
  }
  const reported = new Set<AnalyzedDoc>();
  for (const [key, list] of scoped) {
    const slash = key.indexOf('/');
    const [scope, fqdn] = [key.slice(0, slash), key.slice(slash + 1)];
    const all = [...list];
    if (scope !== '*') {
      for (const [other, vsList] of scoped) if (other.startsWith('*/') && hostsMatch(fqdn, other.slice(2))) all.push(...vsList);
    }
    if (all.length < 2) continue;
    const names = all.map((v) => `${v.namespace}/${v.name}`).sort().join(',');
    for (const vs of all) {
      if (reported.has(vs)) continue;
      reported.add(vs);
      out.push({ code: 'IST0109', type: 'ConflictingMeshGatewayVirtualServiceHosts', level: 'Error', origin: originOf(vs), message: `The VirtualServices ${names} associated with mesh gateway define the same host ${key} which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.`, analyzer: 'virtualservice.ConflictingMeshGatewayHostsAnalyzer' });
    }
  }
}

/** IST0111 (sidecar SelectorAnalyzer): more than one Sidecar without a workloadSelector in a namespace. */
function sidecars(docs: readonly AnalyzedDoc[], out: AnalysisMessage[]): void {
  const byNamespace = new Map<string, AnalyzedDoc[]>();
  for (const d of docs) {
    if (d.kind !== 'Sidecar') continue;
    const selector = isPlainObject(d.spec.workloadSelector) ? d.spec.workloadSelector.labels : undefined;
    if (isPlainObject(selector) && Object.keys(selector).length > 0) continue;
    byNamespace.set(d.namespace, [...(byNamespace.get(d.namespace) ?? []), d]);
  }
  for (const [ns, list] of byNamespace) {
    if (list.length < 2) continue;
    const names = list.map((d) => `${d.namespace}/${d.name}`).join(',');
    for (const d of list) out.push({ code: 'IST0111', type: 'MultipleSidecarsWithoutWorkloadSelectors', level: 'Error', origin: originOf(d), message: `The Sidecars [${names}] in namespace ${JSON.stringify(ns)} have no workload selector, which can lead to undefined behavior.`, analyzer: 'sidecar.SelectorAnalyzer' });
  }
}
