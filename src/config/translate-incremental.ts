/**
 * Incremental translation for the control plane: when a config change only
 * edits ServiceEntries, VirtualServices and DestinationRules of plain hosts
 * (no wildcards, exportTo, selectors, delegation or gateways), only the hosts
 * whose inputs changed — and the hosts whose routes name them — are
 * translated again, from the few resources they depend on, and the previous
 * translation is patched. Anything else (or a patch whose shape does not match
 * what it replaces) falls back to a full translation, so the result always
 * equals `translateIsolated(resources, proxy)` up to resource order
 * (test/control-plane/translate-incremental.test.ts checks it over seeded edits).
 *
 * Why: at 1,000 services a full translation walks every host port and cluster
 * (about 40 ms per namespace even memoized), for each of the control plane's
 * translations on every push, while a one-service edit touches a handful.
 */
import type { EnvoyResources } from './envoy.js';
import type { IstioResource } from './istio-types.js';
import { expandHost, kubernetesAltNames } from './registry.js';
import { CONSUMER_NAMESPACE, withGatewayApiRoutes } from './gateway-api/index.js';
import { translateIsolated, type DroppedResource } from './translate-isolated.js';
import type { ProxyInfo, TranslateCache } from './translate.js';

/** The result of {@link IncrementalTranslator.translate}. */
export interface IncrementalResult {
  envoy: EnvoyResources;
  dropped: DroppedResource[];
  /** Hosts re-translated when the previous translation was patched; undefined after a full translation. */
  patchedHosts: ReadonlySet<string> | undefined;
}

/** A change between two resource sets: the hosts whose resources changed, the hosts to re-translate, and the resources that takes. */
interface Change { direct: ReadonlySet<string>; targets: ReadonlySet<string>; reduced: readonly IstioResource[] }

interface State { resources: readonly IstioResource[]; proxyKey: string; envoy: EnvoyResources; clean: boolean; index?: Partial<Record<keyof EnvoyResources, HostIndex>> }

/** Where each host's resources sit in a translation's array of one type. */
type HostIndex = Map<string, number[]>;

/** Past this many changed resources a change is translated in full: the patch would cost as much. */
const MAX_CHANGED = 64;

/** Kinds whose resources scope to their hosts; any other kind may affect every host. */
const HOST_SCOPED = new Set(['ServiceEntry', 'VirtualService', 'DestinationRule']);

/**
 * Remembers the last translation per key (a control-plane translation: a
 * namespace, or a namespace and labels) and patches it when it can.
 */
export class IncrementalTranslator {
  private readonly states = new Map<string, State>();
  /** The hosts each resource scopes to (undefined: it may affect any host), once per object. */
  private readonly scopes = new WeakMap<IstioResource, readonly string[] | null>();
  /** Each VirtualService's destination hosts, once per object. */
  private readonly destinations = new WeakMap<IstioResource, readonly string[]>();
  /** Each VirtualService's own hosts, expanded, once per object. */
  private readonly vsHosts = new WeakMap<IstioResource, readonly string[]>();
  /** Full translations and patches made, for tests and status. */
  readonly counts = { full: 0, patched: 0, unchanged: 0 };

  /** Translates `resources` for `proxy` under `key`, patching the key's previous translation when the change allows it. */
  translate(key: string, resources: readonly IstioResource[], proxy: ProxyInfo, cache?: TranslateCache): IncrementalResult {
    const proxyKey = JSON.stringify(proxy);
    const prev = this.states.get(key);
    const patched = prev && prev.clean && prev.proxyKey === proxyKey ? this.patch(prev, resources, proxy, cache) : undefined;
    if (patched) {
      this.states.set(key, { resources, proxyKey, envoy: patched.envoy, clean: true, index: patched.index });
      return { envoy: patched.envoy, dropped: [], patchedHosts: patched.hosts };
    }
    this.counts.full++;
    const full = translateIsolated(resources, proxy, cache);
    // A translation that left resources out is not patched: which resource a patch would drop is not known.
    // The host indices are built now, with the full translation, not by the next push's patch.
    const clean = full.dropped.length === 0;
    this.states.set(key, { resources, proxyKey, envoy: full.envoy, clean, ...(clean && { index: hostIndices(full.envoy) }) });
    // So is what the next change reads of each resource (its hosts, a VirtualService's destinations).
    if (clean) this.learn(resources);
    return { envoy: full.envoy, dropped: full.dropped, patchedHosts: undefined };
  }

  /** Forgets a key's translation. */
  forget(key: string): void {
    this.states.delete(key);
  }

  private patch(prev: State, resources: readonly IstioResource[], proxy: ProxyInfo, cache: TranslateCache | undefined): Patched | undefined {
    if (prev.resources === resources) { this.counts.unchanged++; return { envoy: prev.envoy, hosts: new Set(), index: prev.index }; }
    const change = this.change(prev.resources, resources);
    if (!change) return undefined;
    if (change.direct.size === 0) { this.counts.unchanged++; return { envoy: prev.envoy, hosts: new Set(), index: prev.index }; }
    const part = translateIsolated(change.reduced, proxy, cache);
    if (part.dropped.length > 0) return undefined;
    const patched = splice(prev, part.envoy, change.targets, change.direct);
    if (patched) this.counts.patched++;
    return patched;
  }

  /** What changed from `from` to `to`, and what a patch re-translates; the same for every proxy, so computed once per pair. */
  private change(from: readonly IstioResource[], to: readonly IstioResource[]): Change | undefined {
    if (this.lastChange?.from === from && this.lastChange.to === to) return this.lastChange.change;
    const change = this.computeChange(from, to);
    this.lastChange = { from, to, change };
    return change;
  }

  private lastChange: { from: readonly IstioResource[]; to: readonly IstioResource[]; change: Change | undefined } | undefined;

  private computeChange(from: readonly IstioResource[], to: readonly IstioResource[]): Change | undefined {
    const before = new Set(from);
    const after = new Set(to);
    const changed: IstioResource[] = [];
    for (const r of to) if (!before.has(r)) changed.push(r);
    for (const r of from) if (!after.has(r)) changed.push(r);
    if (changed.length > MAX_CHANGED) return undefined;
    // Hosts whose own resources changed.
    const direct = new Set<string>();
    for (const r of changed) {
      const hosts = this.scope(r);
      if (!hosts) return undefined;
      for (const h of hosts) direct.add(h);
    }
    if (direct.size === 0) return { direct, targets: direct, reduced: to };
    // Every VirtualService, Gateway API routes included: a route naming a changed host carries its ports and hash policy.
    const virtualServices = withGatewayApiRoutes(to).filter((r) => r.kind === 'VirtualService');
    if (virtualServices.some((vs) => (vs.spec as { http?: Array<{ delegate?: unknown }> }).http?.some((h) => h.delegate))) return undefined;
    const targets = new Set(direct);
    for (const vs of virtualServices) {
      if (!this.destinationsOf(vs).some((d) => direct.has(d))) continue;
      for (const h of this.hostsOf(vs)) targets.add(h);
    }
    // What translating the targets reads of other hosts: the destinations' ports and rules, the names their aliases could clash with.
    const needed = new Set(targets);
    for (const vs of virtualServices) {
      if (!this.hostsOf(vs).some((h) => targets.has(h))) continue;
      for (const d of this.destinationsOf(vs)) needed.add(d);
    }
    for (const h of targets) for (const alt of kubernetesAltNames(h, undefined)) needed.add(alt);
    const reduced = to.filter((r) => {
      const hosts = this.scope(r);
      return !hosts || hosts.some((h) => needed.has(h));
    });
    return { direct, targets, reduced };
  }

  /** Fills the per-object caches a change reads, once per resource set. */
  private learn(resources: readonly IstioResource[]): void {
    if (this.learned === resources) return;
    this.learned = resources;
    for (const r of withGatewayApiRoutes(resources)) {
      this.scope(r);
      if (r.kind === 'VirtualService') { this.destinationsOf(r); this.hostsOf(r); }
    }
  }

  private learned: readonly IstioResource[] | undefined;

  /** The plain hosts a resource scopes to, or null when it may affect others (a global kind, wildcard, exportTo, selector…). */
  private scope(r: IstioResource): readonly string[] | null {
    let s = this.scopes.get(r);
    if (s === undefined) this.scopes.set(r, (s = scopeOf(r)));
    return s;
  }

  /** A VirtualService's hosts, expanded, once per object. */
  private hostsOf(vs: Extract<IstioResource, { kind: 'VirtualService' }>): readonly string[] {
    let h = this.vsHosts.get(vs);
    if (!h) this.vsHosts.set(vs, (h = (vs.spec.hosts ?? []).map((x: string) => expandHost(x, vs.metadata.namespace))));
    return h;
  }

  private destinationsOf(vs: IstioResource): readonly string[] {
    let d = this.destinations.get(vs);
    if (!d) this.destinations.set(vs, (d = destinationHosts(vs)));
    return d;
  }
}

function scopeOf(r: IstioResource): readonly string[] | null {
  if (!HOST_SCOPED.has(r.kind)) return null;
  const spec = r.spec as { hosts?: string[]; host?: string; exportTo?: unknown; workloadSelector?: unknown; gateways?: string[]; http?: Array<{ delegate?: unknown }> };
  if (spec.exportTo !== undefined || spec.workloadSelector !== undefined) return null;
  if (r.metadata.annotations?.[CONSUMER_NAMESPACE] !== undefined) return null;
  if (r.kind === 'VirtualService') {
    if (spec.gateways && spec.gateways.some((g) => g !== 'mesh')) return null;
    if (spec.http?.some((h) => h.delegate)) return null;
  }
  const hosts = (r.kind === 'DestinationRule' ? [spec.host ?? ''] : spec.hosts ?? []).map((h) => expandHost(h, r.metadata.namespace));
  if (hosts.length === 0 || hosts.some((h) => h === '' || h.includes('*'))) return null;
  return hosts;
}

/** Every destination host of a VirtualService (routes and mirrors), expanded. */
function destinationHosts(vs: IstioResource): string[] {
  if (vs.kind !== 'VirtualService') return [];
  const ns = vs.metadata.namespace;
  const hosts = new Set<string>();
  for (const http of vs.spec.http ?? []) {
    for (const d of http.route ?? []) hosts.add(expandHost(d.destination.host, ns));
    if (http.mirror) hosts.add(expandHost(http.mirror.host, ns));
    for (const m of http.mirrors ?? []) hosts.add(expandHost(m.destination.host, ns));
  }
  return [...hosts];
}

/** `host:port` → host (outbound listener and route names). */
function hostOfListener(name: string): string | undefined {
  const i = name.lastIndexOf(':');
  return i > 0 ? name.slice(0, i) : undefined;
}

/** `outbound|port|subset|host` → host. */
function hostOfCluster(name: string): string | undefined {
  // a slice, not split(): this runs for every cluster of every translation patched
  const i = name.lastIndexOf('|');
  return i > 0 ? name.slice(i + 1) : undefined;
}

/** Cluster names a route table refers to (every `outbound|…` string in it). */
function clusterRefs(value: unknown, out: Set<string>): Set<string> {
  if (typeof value === 'string') { if (value.startsWith('outbound|')) out.add(value); }
  else if (Array.isArray(value)) for (const v of value) clusterRefs(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) clusterRefs(v, out);
  return out;
}

/** A patched translation, and where its hosts' resources sit (kept while a patch replaces in place). */
interface Patched { envoy: EnvoyResources; hosts: ReadonlySet<string>; index: State['index'] }

/**
 * The previous translation with the targets' listeners and routes, and the
 * directly changed hosts' clusters and endpoints, taken from the partial
 * translation. Undefined (translate in full) when the patch would change which
 * resources exist: different listener or route names for the targets, or route
 * tables that now refer to other clusters.
 */
function splice(state: State, part: EnvoyResources, targets: ReadonlySet<string>, direct: ReadonlySet<string>): Patched | undefined {
  const prev = state.envoy;
  const index = { ...state.index };
  const take = <K extends keyof EnvoyResources>(key: K, hosts: ReadonlySet<string>, resized: boolean): EnvoyResources[K] | undefined => {
    type T = EnvoyResources[K][number];
    const { nameOf, hostOf } = NAMING[key] as Naming<T>;
    const items = prev[key] as readonly T[];
    const idx = (index[key] ??= hostIndex(items, nameOf, hostOf));
    const inPlace = replaceInPlace(items, idx, part[key] as readonly T[], hosts, nameOf, hostOf);
    if (inPlace) return inPlace as EnvoyResources[K];
    if (!resized) return undefined;
    // A DestinationRule edit added or removed subset clusters: positions move, so the index is rebuilt next time.
    delete index[key];
    return replaceNamed(items, part[key] as readonly T[], nameOf, (n) => { const h = hostOf(n); return h !== undefined && hosts.has(h); }) as EnvoyResources[K];
  };
  const listeners = take('listeners', targets, false);
  const routes = take('routes', targets, false);
  if (!listeners || !routes) return undefined;
  const oldRefs = new Set<string>(), newRefs = new Set<string>();
  for (const h of targets) for (const i of index.routes!.get(h) ?? []) clusterRefs(prev.routes[i], oldRefs);
  for (const r of part.routes) { const h = hostOfListener(r.name); if (h !== undefined && targets.has(h)) clusterRefs(r, newRefs); }
  if (oldRefs.size !== newRefs.size || [...newRefs].some((n) => !oldRefs.has(n))) return undefined;
  const clusters = take('clusters', direct, true)!;
  const endpoints = take('endpoints', direct, true)!;
  return { envoy: { listeners, routes, clusters, endpoints }, hosts: targets, index };
}

/** How each type's resources are named, and the host a name belongs to. */
interface Naming<T> { nameOf: (t: T) => string; hostOf: (name: string) => string | undefined }
const NAMING: { [K in keyof EnvoyResources]: Naming<EnvoyResources[K][number]> } = {
  listeners: { nameOf: (l) => l.name, hostOf: hostOfListener },
  routes: { nameOf: (r) => r.name, hostOf: hostOfListener },
  clusters: { nameOf: (c) => c.name, hostOf: hostOfCluster },
  endpoints: { nameOf: (e) => e.cluster_name, hostOf: hostOfCluster },
};

function hostIndices(envoy: EnvoyResources): NonNullable<State['index']> {
  const index: NonNullable<State['index']> = {};
  for (const key of Object.keys(NAMING) as Array<keyof EnvoyResources>) {
    const { nameOf, hostOf } = NAMING[key] as Naming<EnvoyResources[typeof key][number]>;
    index[key] = hostIndex(envoy[key] as ReadonlyArray<EnvoyResources[typeof key][number]>, nameOf, hostOf);
  }
  return index;
}

function hostIndex<T>(items: readonly T[], nameOf: (t: T) => string, hostOf: (name: string) => string | undefined): HostIndex {
  const index: HostIndex = new Map();
  for (let i = 0; i < items.length; i++) {
    const h = hostOf(nameOf(items[i]!));
    if (h === undefined) continue;
    const list = index.get(h);
    if (list) list.push(i);
    else index.set(h, [i]);
  }
  return index;
}

/** `prev` (copied) with the hosts' items replaced by `part`'s of the same names; undefined unless the names match one to one. */
function replaceInPlace<T>(prev: readonly T[], index: HostIndex, part: readonly T[], hosts: ReadonlySet<string>, nameOf: (t: T) => string, hostOf: (name: string) => string | undefined): T[] | undefined {
  const fresh = new Map<string, T>();
  for (const t of part) { const h = hostOf(nameOf(t)); if (h !== undefined && hosts.has(h)) fresh.set(nameOf(t), t); }
  const out = prev.slice();
  let replaced = 0;
  for (const h of hosts) {
    for (const i of index.get(h) ?? []) {
      const next = fresh.get(nameOf(prev[i]!));
      if (next === undefined) return undefined;
      out[i] = next;
      replaced++;
    }
  }
  return replaced === fresh.size ? out : undefined;
}

/** `prev` with every item `selected` by name replaced by `part`'s item of that name, dropped when `part` has none, and `part`'s new ones appended. */
function replaceNamed<T>(prev: readonly T[], part: readonly T[], nameOf: (t: T) => string, selected: (name: string) => boolean): T[] {
  const fresh = new Map<string, T>();
  for (const t of part) if (selected(nameOf(t))) fresh.set(nameOf(t), t);
  const out: T[] = [];
  for (const t of prev) {
    const name = nameOf(t);
    if (!selected(name)) { out.push(t); continue; }
    const next = fresh.get(name);
    if (!next) continue;
    out.push(next);
    fresh.delete(name);
  }
  out.push(...fresh.values());
  return out;
}
