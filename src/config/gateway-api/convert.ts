/**
 * One Gateway API route rule → the Istio HTTPRoute (a VirtualService `http`
 * entry) istiod makes of it (pilot/pkg/config/kube/gateway/conversion.go,
 * convertHTTPRoute / convertGRPCRoute): matches, header filters, redirect,
 * rewrite, mirrors, retry (GEP-1731), timeouts, weighted backends. What a
 * VirtualService cannot say (path-segment prefixes, 500 for an unresolved
 * backend) travels beside the route in {@link GatewayRouteExtras}; istiod's
 * internal redirect and retry fields (prefixRewrite, derivePort, backoff) are
 * on the route itself. envoy-patch.ts applies them to the Envoy route.
 */
import type { Destination, HTTPMatchRequest, HTTPRoute, HeaderOperations, StringMatch } from '../istio-types.js';
import { CLUSTER_DOMAIN } from '../registry.js';
import type { BackendObjectReference, GRPCRouteRule, HTTPBackendRef, HTTPHeader, HTTPHeaderFilter, HTTPRouteFilter, HTTPRouteMatch, HTTPRouteRule } from './types.js';

/** What a converted route needs beyond the VirtualService fields. */
export interface GatewayRouteExtras {
  /** Destinations whose backend did not resolve: their share of traffic gets 500. */
  invalid?: Set<Destination>;
}

/** Side table: extras of the Istio routes made by conversion (only those have an entry). */
export const routeExtras = new WeakMap<HTTPRoute, GatewayRouteExtras>();

/** A backend that did not resolve, with the Gateway API reason a controller reports. */
export interface UnresolvedRef {
  readonly path: string;
  readonly reason: 'BackendNotFound' | 'InvalidKind' | 'RefNotPermitted';
  readonly message: string;
}

/** What conversion needs to know about the world. */
export interface ConvertContext {
  /** Route namespace. */
  readonly namespace: string;
  /** Does a service with this hostname exist? */
  hasService(hostname: string): boolean;
  /** May a route of this namespace reference a Service in `toNamespace` (ReferenceGrant)? Mesh routes need no grant. */
  refAllowed(toNamespace: string, name: string): boolean;
  /** Unresolved references found while converting (for ResolvedRefs). */
  readonly unresolved: UnresolvedRef[];
}

/** `name.namespace.svc.cluster.local`, the host of a Service. */
export function serviceHost(name: string, namespace: string): string {
  return `${name}.${namespace}.${CLUSTER_DOMAIN}`;
}

/** Converts one match of an HTTPRoute rule (Istio splits rules into one route per match). */
export function convertHttpRule(rule: HTTPRouteRule, match: HTTPRouteMatch | undefined, name: string, ctx: ConvertContext, path: string): HTTPRoute {
  const out: HTTPRoute = { name };
  if (match) out.match = [httpMatch(match)];
  const extras: GatewayRouteExtras = {};
  applyFilters(out, extras, rule.filters ?? [], ctx, `${path}.filters`);
  if (rule.retry) {
    // "Implementations SHOULD retry on connection errors … if a retry stanza is configured."
    const attempts = rule.retry.attempts ?? 2;
    const retryOn = ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', ...(rule.retry.codes ?? []).map(String)];
    out.retries = { attempts, ...(attempts > 0 && { retryOn: retryOn.join(',') }) };
    if (rule.retry.backoff) out.retries.backoff = rule.retry.backoff;
  }
  const request = nonZero(rule.timeouts?.request);
  if (request) out.timeout = request;
  const backendRequest = nonZero(rule.timeouts?.backendRequest);
  if (backendRequest) {
    if (out.retries) out.retries.perTryTimeout = backendRequest;
    else out.timeout = backendRequest;
  }
  finishBackends(out, extras, rule.backendRefs, ctx, `${path}.backendRefs`);
  routeExtras.set(out, extras);
  return out;
}

/** Converts one match of a GRPCRoute rule: service/method become the `/<service>/<method>` path. */
export function convertGrpcRule(rule: GRPCRouteRule, match: GRPCRouteRule['matches'] extends Array<infer M> | undefined ? M | undefined : never, name: string, ctx: ConvertContext, path: string): HTTPRoute {
  const out: HTTPRoute = { name };
  if (match) {
    const m: HTTPMatchRequest = {};
    const uri = grpcMethodMatch(match.method);
    if (uri) m.uri = uri;
    const headers = headerMatches(match.headers);
    if (headers) m.headers = headers;
    out.match = [m];
  }
  const extras: GatewayRouteExtras = {};
  applyFilters(out, extras, rule.filters ?? [], ctx, `${path}.filters`);
  finishBackends(out, extras, rule.backendRefs, ctx, `${path}.backendRefs`);
  routeExtras.set(out, extras);
  return out;
}

/** Zero durations mean "no timeout" in the Gateway API. */
function nonZero(d: string | undefined): string | undefined {
  return d === undefined || /^0+(h|m|s|ms|us|µs|ns)?$/.test(d) ? undefined : d;
}

function finishBackends(out: HTTPRoute, extras: GatewayRouteExtras, refs: HTTPBackendRef[] | undefined, ctx: ConvertContext, path: string): void {
  const weighted = (refs ?? []).map((r, i) => ({ r, i, w: r.weight ?? 1 })).filter((b) => b.w > 0);
  if (weighted.length === 0) {
    // "When there are no >0 weight backends return 500", unless the rule redirects.
    if (!out.redirect) out.directResponse = { status: 500 };
    return;
  }
  if (out.redirect) return;
  out.route = weighted.map(({ r, i, w }) => {
    const destination = resolveBackend(r, ctx, `${path}[${i}]`, extras);
    const d: NonNullable<HTTPRoute['route']>[number] = { destination, weight: weighted.length === 1 ? 0 : w };
    const headers = backendHeaders(r.filters ?? []);
    if (headers) d.headers = headers;
    return d;
  });
}

/** Resolves a backendRef to a destination; one that does not resolve is marked for a 500. */
function resolveBackend(ref: BackendObjectReference, ctx: ConvertContext, path: string, extras: GatewayRouteExtras): Destination {
  const group = ref.group ?? '';
  const kind = ref.kind ?? 'Service';
  const namespace = ref.namespace ?? ctx.namespace;
  let host: string;
  let problem: UnresolvedRef | undefined;
  if ((group === '' || group === 'core') && kind === 'Service') {
    host = serviceHost(ref.name, namespace);
    if (!ctx.refAllowed(namespace, ref.name)) problem = { path, reason: 'RefNotPermitted', message: `backendRef ${ref.name}/${namespace} not accessible to a route in namespace "${ctx.namespace}" (missing a ReferenceGrant?)` };
    else if (!ctx.hasService(host)) problem = { path, reason: 'BackendNotFound', message: `backend(${host}) not found` };
  } else if (group === 'networking.istio.io' && kind === 'Hostname') {
    host = ref.name.toLowerCase();
    if (!ctx.hasService(host)) problem = { path, reason: 'BackendNotFound', message: `backend(${host}) not found` };
  } else {
    host = `${ref.name}.${namespace}.invalid`;
    problem = { path, reason: 'InvalidKind', message: `referencing unsupported backendRef: group "${group}" kind "${kind}"` };
  }
  const destination: Destination = { host, port: { number: ref.port ?? 80 } };
  if (problem) {
    ctx.unresolved.push(problem);
    (extras.invalid ??= new Set()).add(destination);
  }
  return destination;
}

/** conversion.go createRedirectFilter: "when empty, port (if specified) of the request is used", unless the scheme changes. */
function redirect(r: NonNullable<HTTPRouteFilter['requestRedirect']>): NonNullable<HTTPRoute['redirect']> {
  const out: NonNullable<HTTPRoute['redirect']> = {};
  if (r.statusCode !== undefined) out.redirectCode = r.statusCode;
  if (r.hostname) out.authority = r.hostname;
  if (r.scheme) out.scheme = r.scheme;
  if (r.port !== undefined) out.port = r.port;
  else out.derivePort = r.scheme ? 'FROM_PROTOCOL_DEFAULT' : 'FROM_REQUEST_PORT';
  if (r.path?.type === 'ReplaceFullPath') out.uri = r.path.replaceFullPath ?? '/';
  if (r.path?.type === 'ReplacePrefixMatch') out.prefixRewrite = r.path.replacePrefixMatch ?? '/';
  return out;
}

function applyFilters(out: HTTPRoute, extras: GatewayRouteExtras, filters: HTTPRouteFilter[], ctx: ConvertContext, path: string): void {
  filters.forEach((f, i) => {
    switch (f.type) {
      case 'RequestHeaderModifier':
        (out.headers ??= {}).request = headerOps(f.requestHeaderModifier);
        break;
      case 'ResponseHeaderModifier':
        (out.headers ??= {}).response = headerOps(f.responseHeaderModifier);
        break;
      case 'RequestRedirect':
        out.redirect = redirect(f.requestRedirect ?? {});
        break;
      case 'URLRewrite': {
        const rewrite: NonNullable<HTTPRoute['rewrite']> = {};
        const p = f.urlRewrite?.path;
        if (p?.type === 'ReplacePrefixMatch') rewrite.uri = (p.replacePrefixMatch ?? '').replace(/\/$/, '') || '/';
        if (p?.type === 'ReplaceFullPath') rewrite.uriRegexRewrite = { match: '/.*', rewrite: p.replaceFullPath ?? '/' };
        if (f.urlRewrite?.hostname) rewrite.authority = f.urlRewrite.hostname;
        if (Object.keys(rewrite).length > 0) out.rewrite = rewrite;
        break;
      }
      case 'RequestMirror': {
        const m = f.requestMirror!;
        const mirrorExtras: GatewayRouteExtras = {};
        const destination = resolveBackend(m.backendRef, ctx, `${path}[${i}].requestMirror.backendRef`, mirrorExtras);
        if (mirrorExtras.invalid) break; // Istio drops a mirror whose backend does not resolve
        const value = m.fraction ? (100 * m.fraction.numerator) / (m.fraction.denominator ?? 100) : m.percent;
        (out.mirrors ??= []).push(value === undefined ? { destination } : { destination, percentage: { value } });
        break;
      }
      default:
        // ExtensionRef and CORS are refused at validation (validate.ts); nothing reaches here.
        break;
    }
  });
}

/** Header filters of a backendRef (only the header modifiers are allowed there). */
function backendHeaders(filters: HTTPRouteFilter[]): NonNullable<HTTPRoute['headers']> | undefined {
  let headers: NonNullable<HTTPRoute['headers']> | undefined;
  for (const f of filters) {
    if (f.type === 'RequestHeaderModifier') (headers ??= {}).request = headerOps(f.requestHeaderModifier);
    if (f.type === 'ResponseHeaderModifier') (headers ??= {}).response = headerOps(f.responseHeaderModifier);
  }
  return headers;
}

function headerOps(f: HTTPHeaderFilter | undefined): HeaderOperations {
  const ops: HeaderOperations = {};
  const set = headerMap(f?.set);
  const add = headerMap(f?.add);
  if (set) ops.set = set;
  if (add) ops.add = add;
  if (f?.remove?.length) ops.remove = f.remove;
  return ops;
}

/** "Subsequent entries with an equivalent header name MUST be ignored." */
function headerMap(list: HTTPHeader[] | undefined): Record<string, string> | undefined {
  if (!list?.length) return undefined;
  const out: Record<string, string> = {};
  for (const h of list) {
    const k = h.name.toLowerCase();
    if (!(k in out)) out[k] = h.value;
  }
  return out;
}

function httpMatch(m: HTTPRouteMatch): HTTPMatchRequest {
  const out: HTTPMatchRequest = {};
  // The CRD defaults path to PathPrefix "/"; a trailing `/` of a prefix is ignored.
  const type = m.path?.type ?? 'PathPrefix';
  const value = m.path?.value ?? '/';
  if (type === 'Exact') out.uri = { exact: value };
  else if (type === 'RegularExpression') out.uri = { regex: value };
  else out.uri = { prefix: value === '/' ? '/' : value.replace(/\/$/, '') };
  const headers = headerMatches(m.headers);
  if (headers) out.headers = headers;
  if (m.queryParams?.length) {
    out.queryParams = {};
    for (const q of m.queryParams) if (!(q.name in out.queryParams)) out.queryParams[q.name] = q.type === 'RegularExpression' ? { regex: q.value } : { exact: q.value };
  }
  if (m.method) out.method = { exact: m.method };
  return out;
}

function headerMatches(list: Array<{ type?: string; name: string; value: string }> | undefined): Record<string, StringMatch> | undefined {
  if (!list?.length) return undefined;
  const out: Record<string, StringMatch> = {};
  // "If multiple entries specify equivalent header names, only the first entry … MUST be considered."
  for (const h of list) {
    const k = h.name.toLowerCase();
    if (!(k in out)) out[k] = h.type === 'RegularExpression' ? { regex: h.value } : { exact: h.value };
  }
  return out;
}

/** gRPC `/<service>/<method>` as string matches (conversion.go createGRPCURIMatch). */
function grpcMethodMatch(m: { type?: string; service?: string; method?: string } | undefined): StringMatch | undefined {
  if (!m || (m.service === undefined && m.method === undefined)) return undefined;
  const quote = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  if (m.type === 'RegularExpression') {
    if (m.method === undefined) return { regex: `/${m.service}/.+` };
    if (m.service === undefined) return { regex: `/[^/]+/${m.method}` };
    return { regex: `/${m.service}/${m.method}` };
  }
  if (m.method === undefined) return { prefix: `/${m.service}/` };
  if (m.service === undefined) return { regex: `/[^/]+/${quote(m.method)}` };
  return { exact: `/${m.service}/${m.method}` };
}
