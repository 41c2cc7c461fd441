/**
 * `exportTo` as istiod reads it (pilot/pkg/model/push_context.go and
 * pkg/config/visibility, istio/istio 86c9f01f): which namespaces see a
 * VirtualService, ServiceEntry or DestinationRule. `*` is every namespace,
 * `.` the resource's own, `~` none (ServiceEntry only), anything else a
 * namespace name. A resource without exportTo takes the mesh default
 * (`meshConfig.defaultVirtualServiceExportTo` …), itself `*` when unset.
 *
 * Visibility is decided by the namespace of the workload a translation is
 * for, so embedded mode and the control plane (which translates per
 * namespace) scope alike.
 */
import type { ConfigIssue } from './schema.js';
import type { IstioResource } from './istio-types.js';
import { ROOT_NAMESPACE } from './sidecar.js';

/** The mesh-wide defaults (MeshConfig `defaultServiceExportTo`, `defaultVirtualServiceExportTo`, `defaultDestinationRuleExportTo`). */
export interface ExportToDefaults {
  readonly defaultServiceExportTo?: readonly string[] | undefined;
  readonly defaultVirtualServiceExportTo?: readonly string[] | undefined;
  readonly defaultDestinationRuleExportTo?: readonly string[] | undefined;
}

/** A value key of the defaults (callers pass a fresh object per translation). */
export function exportToDefaultsKey(d: ExportToDefaults | undefined): string {
  return d ? `${d.defaultServiceExportTo?.join(',') ?? ''}|${d.defaultVirtualServiceExportTo?.join(',') ?? ''}|${d.defaultDestinationRuleExportTo?.join(',') ?? ''}` : '';
}

const PUBLIC = '*';
const PRIVATE = '.';
const NONE = '~';

/** The effective exportTo of a resource: its own, else the default, else public. */
function effective(exportTo: readonly string[] | undefined, fallback: readonly string[] | undefined): readonly string[] {
  if (exportTo && exportTo.length > 0) return exportTo;
  return fallback && fallback.length > 0 ? fallback : [PUBLIC];
}

/**
 * Whether a resource of `owner` with `exportTo` is visible to a workload in
 * `namespace` (IsServiceVisible; initVirtualServices's index). `~` hides it
 * from every namespace, its own included.
 */
export function isExportedTo(exportTo: readonly string[] | undefined, fallback: readonly string[] | undefined, owner: string, namespace: string): boolean {
  const set = effective(exportTo, fallback);
  if (set.includes(PUBLIC)) return true;
  if (set.includes(NONE)) return false;
  return set.some((e) => e === namespace || (e === PRIVATE && owner === namespace));
}

/**
 * How a workload in `namespace` ranks a visible VirtualService
 * (VirtualServicesForGateway): its own namespace's first, then those exported
 * to it by name, then public ones; first wins among VirtualServices for one host.
 */
export function virtualServiceRank(exportTo: readonly string[] | undefined, fallback: readonly string[] | undefined, owner: string, namespace: string): number {
  const set = effective(exportTo, fallback);
  if (set.includes(PUBLIC)) return 2;
  return owner === namespace ? 0 : 1;
}

/** The resources whose visibility depends on the workload's namespace (none: translation need not scope). */
export function scopedResources(resources: readonly IstioResource[], defaults: ExportToDefaults | undefined): IstioResource[] {
  const out: IstioResource[] = [];
  for (const r of resources) {
    if (r.kind !== 'VirtualService' && r.kind !== 'ServiceEntry' && r.kind !== 'DestinationRule') continue;
    const fallback = r.kind === 'VirtualService' ? defaults?.defaultVirtualServiceExportTo : r.kind === 'ServiceEntry' ? defaults?.defaultServiceExportTo : defaults?.defaultDestinationRuleExportTo;
    const set = effective((r.spec as { exportTo?: string[] }).exportTo, fallback);
    if (!set.includes(PUBLIC)) out.push(r);
  }
  return out;
}

/**
 * The resources a workload in `namespace` sees: VirtualServices and
 * ServiceEntries not exported to it are left out, and VirtualServices are
 * ordered private, exported, public (a stable sort: resource order within
 * each). DestinationRules stay: {@link destinationRuleLookup} picks among them.
 */
export function visibleResources(resources: readonly IstioResource[], namespace: string, defaults: ExportToDefaults | undefined): IstioResource[] {
  const out: IstioResource[] = [];
  const ranked: Array<[number, IstioResource]> = [];
  for (const r of resources) {
    if (r.kind === 'ServiceEntry') {
      if (isExportedTo(r.spec.exportTo, defaults?.defaultServiceExportTo, r.metadata.namespace, namespace)) out.push(r);
    } else if (r.kind === 'VirtualService') {
      if (!isExportedTo(r.spec.exportTo, defaults?.defaultVirtualServiceExportTo, r.metadata.namespace, namespace)) continue;
      ranked.push([virtualServiceRank(r.spec.exportTo, defaults?.defaultVirtualServiceExportTo, r.metadata.namespace, namespace), r]);
      out.push(r);
    } else {
      out.push(r);
    }
  }
  if (ranked.length < 2) return out;
  // The VirtualServices take the slots they held, in rank order, so other kinds keep their places.
  const order = [...ranked].sort((a, b) => a[0] - b[0]).map(([, r]) => r);
  let next = 0;
  return out.map((r) => (r.kind === 'VirtualService' ? order[next++]! : r));
}

/** A DestinationRule candidate: its expanded host, namespace, exportTo and spec. */
export interface RuleCandidate<T> { host: string; namespace: string; exportTo: readonly string[] | undefined; hasSelector: boolean; spec: T }

/**
 * istiod's destinationRule(proxyNamespace, service): the rule in the
 * workload's own namespace (public or private), else one the service's
 * namespace exports to it, else one the root namespace exports to it. A rule
 * whose exportTo is `.` (or the default `.`) or that has a workloadSelector
 * is private to its namespace. At each step the rule for the exact host wins,
 * then the longest wildcard host (`*.bar.com` over `*.com`) — MostSpecificHostMatch;
 * among equals, the first.
 */
export function destinationRuleLookup<T>(index: RuleIndex<T>, host: string, proxyNamespace: string, serviceNamespace: string | undefined, fallback: readonly string[] | undefined): T | undefined {
  const local = mostSpecific(index, host, (c) => c.namespace === proxyNamespace && (c.hasSelector || localTo(c)));
  if (local) return local.spec;
  const exported = (ns: string | undefined) => mostSpecific(index, host, (c) => c.namespace === ns && !c.hasSelector && !privateOnly(c, fallback) && exportedTo(c, proxyNamespace));
  return (exported(serviceNamespace) ?? exported(ROOT_NAMESPACE))?.spec;
}

/** DestinationRule candidates by exact host, and the wildcard ones (longest host first), in resource order. */
export interface RuleIndex<T> { readonly exact: ReadonlyMap<string, readonly RuleCandidate<T>[]>; readonly wildcards: readonly RuleCandidate<T>[] }

/** Indexes candidates for {@link destinationRuleLookup}: one pass, so a lookup costs its host's rules and the wildcards. */
export function indexRules<T>(candidates: readonly RuleCandidate<T>[]): RuleIndex<T> {
  const exact = new Map<string, RuleCandidate<T>[]>();
  const wildcards: RuleCandidate<T>[] = [];
  for (const c of candidates) {
    if (c.host.startsWith('*')) wildcards.push(c);
    else {
      const list = exact.get(c.host);
      if (list) list.push(c);
      else exact.set(c.host, [c]);
    }
  }
  wildcards.sort((a, b) => b.host.length - a.host.length); // stable: resource order among equals
  return { exact, wildcards };
}

/** MostSpecificHostMatch over the candidates `eligible` admits: the exact host, else the longest matching wildcard. */
function mostSpecific<T>(index: RuleIndex<T>, host: string, eligible: (c: RuleCandidate<T>) => boolean): RuleCandidate<T> | undefined {
  for (const c of index.exact.get(host) ?? []) if (eligible(c)) return c;
  for (const c of index.wildcards) if ((c.host === host || hostMatchesWildcard(host, c.host)) && eligible(c)) return c;
  return undefined;
}

/**
 * host.Name.Matches for a wildcard host (pkg/config/host/name.go): `*`
 * matches every host, `*.bar.com` a host ending in `.bar.com` (itself a
 * wildcard such as `*.foo.bar.com` too); never the bare `bar.com`.
 */
export function hostMatchesWildcard(hostname: string, wildcard: string): boolean {
  if (wildcard === '*') return true;
  const suffix = wildcard.slice(1);
  return hostname.length > suffix.length && hostname.endsWith(suffix);
}

/** setDestinationRules: kept in its namespace's local index (empty, `*`, `.` or its own name). */
function localTo(c: RuleCandidate<unknown>): boolean {
  const set = c.exportTo ?? [];
  return set.length === 0 || set.includes(PUBLIC) || set.includes(PRIVATE) || set.includes(c.namespace);
}

/** setDestinationRules's isPrivateOnly: no exportTo under a `.` default, or exactly `.` / its own namespace. */
function privateOnly(c: RuleCandidate<unknown>, fallback: readonly string[] | undefined): boolean {
  const set = c.exportTo ?? [];
  if (set.length === 0) return fallback?.includes(PRIVATE) ?? false;
  return set.length === 1 && (set[0] === PRIVATE || set[0] === c.namespace);
}

/** getExportedDestinationRuleFromNamespace: exported when exportTo is empty, `*`, or names the client's namespace. */
function exportedTo(c: RuleCandidate<unknown>, client: string): boolean {
  const set = c.exportTo ?? [];
  return set.length === 0 || set.includes(PUBLIC) || set.includes(client);
}

/**
 * Istio's validateExportTo (pkg/config/validation/validation.go): `.`, `*`
 * or DNS-1123 namespace names, no duplicates (`.` is the own namespace), `*`
 * alone, and `~` only on a ServiceEntry and alone.
 */
export function checkExportTo(exportTo: readonly string[] | undefined, namespace: string, serviceEntry: boolean, issues: ConfigIssue[]): void {
  if (!exportTo || exportTo.length === 0) return;
  const seen = new Set<string>();
  exportTo.forEach((e, i) => {
    const path = `spec.exportTo[${i}]`;
    const key = e === PRIVATE ? namespace : e;
    if (seen.has(key)) issues.push({ path, reason: key !== e ? `duplicate entries in exportTo: . and current namespace ${namespace}` : `duplicate entries in exportTo for entry ${e}` });
    else if (e === NONE && !serviceEntry) issues.push({ path, reason: 'exportTo ~ (none) is not allowed for Istio configuration objects' });
    else if (e !== PUBLIC && e !== PRIVATE && e !== NONE && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(e)) issues.push({ path, reason: 'only .,*, or a valid DNS 1123 label is allowed as exportTo entry' });
    seen.add(key);
  });
  if (exportTo.length > 1 && seen.has(PUBLIC)) issues.push({ path: 'spec.exportTo', reason: 'cannot have both public (*) and non-public exportTo values for a resource' });
  if (exportTo.length > 1 && seen.has(NONE)) issues.push({ path: 'spec.exportTo', reason: 'cannot export service entry to no one (~) and someone' });
}
