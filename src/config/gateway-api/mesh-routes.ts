/**
 * GAMMA: HTTPRoutes and GRPCRoutes whose parentRefs name a Service become
 * VirtualServices for that Service's host, as istiod builds them
 * (route_collections.go HTTPRouteCollection, mergeHTTPRoutes): one route per
 * rule match, a parentRef port becomes a `port` match, every route of one
 * namespace for one host is merged into one VirtualService and sorted by the
 * Gateway API's precedence (sortHTTPRoutes). The VirtualServices carry
 * istiod's `internal.istio.io/route-semantics: gateway` annotation, which the
 * translator reads to apply Gateway API semantics (envoy-patch.ts).
 */
import type { HTTPRoute, IstioResource, ResourceOf } from '../istio-types.js';
import { expandHost } from '../registry.js';
import { convertGrpcRule, convertHttpRule, routeExtras, serviceHost, type ConvertContext, type UnresolvedRef } from './convert.js';
import type { GRPCRouteRule, HTTPRouteRule, ParentReference } from './types.js';

/** istiod's annotation for VirtualServices made from Gateway API routes. */
export const ROUTE_SEMANTICS = 'internal.istio.io/route-semantics';
/** istiod's annotation naming the routes a VirtualService was made from. */
export const PARENTS = 'internal.istio.io/parents';

/** A Gateway API route kind meshlet translates. */
export type RouteResource = ResourceOf<'HTTPRoute'> | ResourceOf<'GRPCRoute'>;

/** The parent status of a route for one parentRef, as a Gateway API controller writes it. */
export interface ParentStatus {
  readonly parentRef: ParentReference;
  readonly accepted: { readonly status: boolean; readonly reason: string; readonly message: string };
  readonly resolvedRefs: { readonly status: boolean; readonly reason: string; readonly message: string };
}

/** What the mesh side of the Gateway API makes of a resource set. */
export interface MeshRoutes {
  /** VirtualServices of producer routes (route in the Service's namespace): they apply to every proxy. */
  readonly producer: ResourceOf<'VirtualService'>[];
  /** VirtualServices of consumer routes, by route namespace: they apply only to proxies of that namespace. */
  readonly consumer: ResourceOf<'VirtualService'>[];
  /** Per route (by `Kind/ns/name`), its parent statuses. */
  readonly status: Map<string, ParentStatus[]>;
}

/** True for a parentRef naming a Service (the GAMMA frontend). */
export function isServiceParent(p: ParentReference): boolean {
  return (p.group === '' || p.group === 'core') && p.kind === 'Service';
}

/** Does the VirtualService come from a Gateway API route? */
export function usesGatewaySemantics(vs: IstioResource): boolean {
  return vs.metadata.annotations?.[ROUTE_SEMANTICS] === 'gateway';
}

/** Builds the mesh VirtualServices of every HTTPRoute/GRPCRoute with a Service parent. */
export function meshRoutes(resources: readonly IstioResource[], hasService: (hostname: string) => boolean): MeshRoutes {
  // Key: route namespace + host → the routes, oldest route first.
  const merged = new Map<string, { namespace: string; host: string; consumer: boolean; routes: HTTPRoute[]; parents: string[] }>();
  const status = new Map<string, ParentStatus[]>();
  for (const r of routesInOrder(resources)) {
    const parents = (r.spec.parentRefs ?? []).filter(isServiceParent);
    if (parents.length === 0) continue;
    const ns = r.metadata.namespace;
    const unresolved: UnresolvedRef[] = [];
    const ctx: ConvertContext = { namespace: ns, hasService, refAllowed: () => true, unresolved };
    const routes = convertRules(r, ctx);
    const statuses: ParentStatus[] = [];
    for (const parent of parents) {
      const host = serviceHost(parent.name, parent.namespace ?? ns);
      const ref = { ...parent, namespace: parent.namespace ?? ns };
      if (!hasService(host)) {
        statuses.push({ parentRef: ref, accepted: { status: false, reason: 'BackendNotFound', message: `parent Service ${host} not found` }, resolvedRefs: resolvedRefs(unresolved) });
        continue;
      }
      statuses.push({ parentRef: ref, accepted: { status: true, reason: 'Accepted', message: 'Route was valid' }, resolvedRefs: resolvedRefs(unresolved) });
      const key = `${ns}\0${host}`;
      let entry = merged.get(key);
      if (!entry) merged.set(key, (entry = { namespace: ns, host, consumer: (parent.namespace ?? ns) !== ns, routes: [], parents: [] }));
      entry.routes.push(...(parent.port === undefined ? routes : withPort(routes, parent.port)));
      entry.parents.push(`${r.kind}/${r.metadata.name}.${ns}`);
    }
    status.set(`${r.kind}/${ns}/${r.metadata.name}`, statuses);
  }
  const producer: ResourceOf<'VirtualService'>[] = [];
  const consumer: ResourceOf<'VirtualService'>[] = [];
  for (const { namespace, host, consumer: isConsumer, routes, parents } of merged.values()) {
    sortHttpRoutes(routes);
    const vs: ResourceOf<'VirtualService'> = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: {
        name: `${namespace}~${host}`,
        namespace,
        annotations: { [ROUTE_SEMANTICS]: 'gateway', [PARENTS]: [...new Set(parents)].join(',') },
      },
      spec: { hosts: [expandHost(host, namespace)], gateways: ['mesh'], http: routes },
    };
    (isConsumer ? consumer : producer).push(vs);
  }
  return { producer, consumer, status };
}

/**
 * The HTTPRoutes and GRPCRoutes in the Gateway API's order for merging:
 * oldest `metadata.creationTimestamp` first, then by namespace and name
 * (conversion.go sortRoutesByCreationTime). Files rarely carry a timestamp,
 * so the names usually decide, as they do in istiod for routes created together.
 */
export function routesInOrder(resources: readonly IstioResource[]): RouteResource[] {
  const routes = resources.filter((r): r is RouteResource => r.kind === 'HTTPRoute' || r.kind === 'GRPCRoute');
  const created = (r: RouteResource) => {
    const t = (r.metadata as { creationTimestamp?: unknown }).creationTimestamp;
    const ms = typeof t === 'string' ? Date.parse(t) : t instanceof Date ? t.getTime() : NaN;
    return Number.isNaN(ms) ? 0 : ms;
  };
  return routes.sort((a, b) => created(a) - created(b) || cmp(a.metadata.namespace, b.metadata.namespace) || cmp(a.metadata.name, b.metadata.name));
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function convertRules(r: RouteResource, ctx: ConvertContext): HTTPRoute[] {
  const out: HTTPRoute[] = [];
  const ns = r.metadata.namespace;
  if (r.kind === 'HTTPRoute') {
    (r.spec.rules ?? []).forEach((rule: HTTPRouteRule, i: number) => {
      const name = rule.name ?? `${ns}.${r.metadata.name}.${i}`;
      const matches = rule.matches?.length ? rule.matches : [undefined];
      for (const m of matches) out.push(convertHttpRule(rule, m, name, ctx, `spec.rules[${i}]`));
    });
  } else {
    (r.spec.rules ?? []).forEach((rule: GRPCRouteRule, i: number) => {
      const name = rule.name ?? `${ns}.${r.metadata.name}.${i}`;
      const matches = rule.matches?.length ? rule.matches : [undefined];
      for (const m of matches) out.push(convertGrpcRule(rule, m, name, ctx, `spec.rules[${i}]`));
    });
  }
  return out;
}

/** ResolvedRefs from the references conversion could not resolve (each named once: a rule with several matches is converted once per match). */
export function resolvedRefs(unresolved: readonly UnresolvedRef[]): ParentStatus['resolvedRefs'] {
  if (unresolved.length === 0) return { status: true, reason: 'ResolvedRefs', message: 'All references resolved' };
  return { status: false, reason: unresolved[0]!.reason, message: [...new Set(unresolved.map((u) => `${u.path}: ${u.message}`))].join('; ') };
}

/** A parentRef port: every route matches that port only (conversion.go augmentPortMatch). */
function withPort(routes: HTTPRoute[], port: number): HTTPRoute[] {
  return routes.map((r) => {
    const copy: HTTPRoute = { ...r, match: r.match?.length ? r.match.map((m) => ({ ...m, port })) : [{ port }] };
    carryExtras(r, copy);
    return copy;
  });
}

function carryExtras(from: HTTPRoute, to: HTTPRoute): void {
  const extras = routeExtras.get(from);
  if (extras) routeExtras.set(to, extras);
}

/**
 * Gateway API precedence (conversion.go sortHTTPRoutes): routes with a match
 * first; then Exact over PathPrefix over RegularExpression, longer paths
 * first, a method match first, more header matches, more query matches.
 * Stable, so ties keep document order (creation time in Kubernetes).
 */
export function sortHttpRoutes(routes: HTTPRoute[]): void {
  const rank = (m: HTTPRoute['match']): [number, number] => {
    const uri = m?.[0]?.uri;
    if (!uri) return [-1, 0];
    if (uri.exact !== undefined) return [3, uri.exact.length];
    if (uri.prefix !== undefined) return [2, uri.prefix.length];
    return [1, uri.regex?.length ?? 0];
  };
  routes.sort((a, b) => {
    if (!a.match?.length) return b.match?.length ? 1 : 0;
    if (!b.match?.length) return -1;
    const m1 = a.match[0]!;
    const m2 = b.match[0]!;
    const [r1, l1] = rank(a.match);
    const [r2, l2] = rank(b.match);
    if (r1 !== r2) return r2 - r1;
    if (l1 !== l2) return l2 - l1;
    if (!m1.method !== !m2.method) return m1.method ? -1 : 1;
    const h1 = Object.keys(m1.headers ?? {}).length;
    const h2 = Object.keys(m2.headers ?? {}).length;
    if (h1 !== h2) return h2 - h1;
    return Object.keys(m2.queryParams ?? {}).length - Object.keys(m1.queryParams ?? {}).length;
  });
}
