/**
 * VirtualService delegation, as istiod merges it
 * (pilot/pkg/model/virtualservice_controller.go, virtualservice.go
 * MergeHTTPRoutes): an http route of a root VirtualService with `delegate:
 * { name, namespace }` is replaced by the http routes of that host-less
 * VirtualService, each merged with the root route — matches combined (the
 * child's fields win, maps merged; a child match that conflicts with every
 * root match drops the child route), and the root's name, rewrite, timeout,
 * retries, fault, mirrors, corsPolicy and headers inherited where the child
 * sets none. A missing delegate drops only its route. The child's short
 * destination hosts resolve in the child's namespace.
 */
import type { Destination, HTTPMatchRequest, HTTPRoute, IstioResource, ResourceOf, StringMatch } from './istio-types.js';
import { expandHost } from './registry.js';

type VirtualService = ResourceOf<'VirtualService'>;
type Delegating = HTTPRoute & { delegate?: { name?: string; namespace?: string } };

function isRoot(r: IstioResource): r is VirtualService {
  return r.kind === 'VirtualService' && !!r.spec.http?.some((h) => (h as Delegating).delegate);
}

/** The resources with every root VirtualService's delegating routes replaced by the merged child routes (the same array when none delegates). */
export function resolveDelegates(resources: readonly IstioResource[]): readonly IstioResource[] {
  if (!resources.some(isRoot)) return resources;
  const children = new Map<string, VirtualService>();
  for (const r of resources) if (r.kind === 'VirtualService' && !(r.spec.hosts?.length)) children.set(`${r.metadata.namespace}/${r.metadata.name}`, r);
  return resources.map((r) => {
    if (!isRoot(r)) return r;
    const http: HTTPRoute[] = [];
    for (const route of r.spec.http ?? []) {
      const d = (route as Delegating).delegate;
      if (!d) {
        http.push(route);
        continue;
      }
      const child = children.get(`${d.namespace || r.metadata.namespace}/${d.name}`);
      if (!child) continue;
      for (const sub of child.spec.http ?? []) {
        const merged = mergeHttpRoute(route, resolveHosts(sub, child.metadata.namespace));
        if (merged) http.push(merged);
      }
    }
    return { ...r, spec: { ...r.spec, http } };
  });
}

function resolveHosts(route: HTTPRoute, namespace: string): HTTPRoute {
  const dest = (x: Destination): Destination => ({ ...x, host: expandHost(x.host, namespace) });
  const out: HTTPRoute = { ...route };
  if (route.route) out.route = route.route.map((w) => ({ ...w, destination: dest(w.destination) }));
  if (route.mirror) out.mirror = dest(route.mirror);
  if (route.mirrors) out.mirrors = route.mirrors.map((m) => ({ ...m, destination: dest(m.destination) }));
  return out;
}

const INHERITED = ['rewrite', 'directResponse', 'timeout', 'retries', 'fault', 'mirror', 'mirrorPercent', 'mirrorPercentage', 'corsPolicy', 'mirrors', 'headers'] as const;

/** istiod's mergeHTTPRoute; undefined when the matches conflict. */
export function mergeHttpRoute(root: HTTPRoute, child: HTTPRoute): HTTPRoute | undefined {
  const match = mergeMatches(root.match, child.match);
  if (match === null) return undefined;
  const out: Record<string, unknown> = { ...child };
  if (match) out.match = match;
  else delete out.match;
  out.name = !child.name ? root.name : root.name ? `${root.name}-${child.name}` : child.name;
  if (out.name === undefined) delete out.name;
  for (const k of INHERITED) if (out[k] === undefined && root[k] !== undefined) out[k] = root[k];
  return out as HTTPRoute;
}

/** istiod's mergeHTTPMatchRequests: null on conflict. */
function mergeMatches(root: HTTPMatchRequest[] | undefined, child: HTTPMatchRequest[] | undefined): HTTPMatchRequest[] | undefined | null {
  if (!root?.length) return child;
  if (!child?.length) return root;
  const out: HTTPMatchRequest[] = [];
  for (const sub of child) {
    let found = false;
    for (const r of root) {
      if (conflict(r, sub)) continue;
      out.push(mergeMatch(r, sub));
      found = true;
    }
    if (!found) return null;
  }
  return out.length === 0 ? null : out;
}

function mergeMatch(root: HTTPMatchRequest, child: HTTPMatchRequest): HTTPMatchRequest {
  const out: HTTPMatchRequest & { name?: string } = { ...child };
  const rn = (root as { name?: string }).name;
  const cn = (child as { name?: string }).name;
  out.name = !cn ? rn : rn ? `${rn}-${cn}` : cn;
  if (out.name === undefined) delete out.name;
  for (const k of ['uri', 'scheme', 'method', 'authority', 'port', 'sourceNamespace'] as const) if (out[k] === undefined && root[k] !== undefined) (out as Record<string, unknown>)[k] = root[k];
  for (const k of ['headers', 'withoutHeaders', 'queryParams', 'sourceLabels'] as const) {
    if (root[k] || child[k]) (out as Record<string, unknown>)[k] = { ...root[k], ...child[k] };
  }
  if (!out.gateways?.length && root.gateways) out.gateways = root.gateways;
  return out;
}

function conflict(root: HTTPMatchRequest, leaf: HTTPMatchRequest): boolean {
  for (const k of ['uri', 'scheme', 'method', 'authority'] as const) if (stringConflict(root[k], leaf[k])) return true;
  for (const k of ['headers', 'withoutHeaders', 'queryParams'] as const) {
    for (const [name, m] of Object.entries(leaf[k] ?? {})) if (stringConflict(root[k]?.[name], m)) return true;
  }
  if (!!root.ignoreUriCase !== !!leaf.ignoreUriCase) return true;
  if (root.port && leaf.port && root.port !== leaf.port) return true;
  if (root.sourceNamespace && leaf.sourceNamespace !== root.sourceNamespace) return true;
  for (const [k, v] of Object.entries(leaf.sourceLabels ?? {})) if (root.sourceLabels?.[k] !== undefined && root.sourceLabels[k] !== v) return true;
  if (root.gateways?.length && leaf.gateways?.length) {
    if (root.gateways.length < leaf.gateways.length || leaf.gateways.some((g) => !root.gateways!.includes(g))) return true;
  }
  return false;
}

/** istiod's stringMatchConflict: a child match must narrow the root's. */
function stringConflict(root: StringMatch | undefined, leaf: StringMatch | undefined): boolean {
  if (!root || !leaf) return false;
  if (root.regex && (leaf.regex || leaf.prefix || leaf.exact)) return true;
  if (leaf.regex && (root.regex || root.prefix || root.exact)) return true;
  if (root.exact) return leaf.prefix ? true : leaf.exact !== root.exact;
  if (root.prefix) {
    if (leaf.prefix) return !leaf.prefix.startsWith(root.prefix);
    if (leaf.exact) return !leaf.exact.startsWith(root.prefix);
  }
  return true;
}
