/**
 * VirtualService http routes → Envoy routes, the way istiod writes them:
 * one Envoy route per match condition (matches are ORed), weighted clusters
 * named `outbound|port|subset|host`, Istio's default retry policy when the
 * VirtualService sets none, timeouts, rewrites, header operations, faults and
 * mirrors in the route's per-filter config.
 */
import { msToProto, parseDuration } from '../core/duration.js';
import type { HeaderMatcher, HeaderValueOption, MetadataMatcher, QueryParameterMatcher, RequestMirrorPolicy, RetryPolicy, Route, RouteAction, RouteMatch, StringMatcher, WeightedCluster } from './envoy.js';
import type { Destination, HTTPMatchRequest, HTTPRoute, HeaderOperations, StringMatch } from './istio-types.js';
import { translateFault, translateMirrorFraction } from './translate-resilience.js';
import { translateCorsPolicy } from './translate-cors.js';

/**
 * Resolves an Istio destination to the Envoy cluster name that serves it;
 * `hashPolicy`, when set, gives the route hash_policy the destination's
 * DestinationRule asks for (consistentHash).
 */
export type ClusterNamer = ((destination: Destination) => string) & { hashPolicy?: (destination: Destination) => Record<string, unknown> | undefined };

/** Istio's cluster naming. */
export function clusterName(port: number, subset: string | undefined, hostname: string): string {
  return `outbound|${port}|${subset ?? ''}|${hostname}`;
}

/** Istio's retry policy for routes whose VirtualService sets none (pilot/pkg/networking/core/route/retry). */
export function defaultRetryPolicy(): RetryPolicy {
  return {
    retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
    num_retries: { value: 2 },
    retriable_status_codes: [503],
    retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate' } }],
    host_selection_retry_max_attempts: 5,
  };
}

function retryPolicy(retries: HTTPRoute['retries']): RetryPolicy | undefined {
  if (!retries) return defaultRetryPolicy();
  if (!retries.attempts) return undefined; // attempts 0 disables retries
  const policy = defaultRetryPolicy();
  policy.num_retries = { value: retries.attempts };
  if (retries.retryOn) {
    const conditions: string[] = [];
    const codes: number[] = [];
    for (const raw of retries.retryOn.split(',')) {
      const item = raw.trim();
      if (item === '') continue;
      if (/^\d+$/.test(item)) codes.push(Number(item));
      else conditions.push(item);
    }
    if (codes.length > 0 && !conditions.includes('retriable-status-codes')) conditions.push('retriable-status-codes');
    policy.retry_on = conditions.join(',');
    policy.retriable_status_codes = codes;
  }
  if (retries.perTryTimeout) policy.per_try_timeout = msToProto(parseDuration(retries.perTryTimeout) as number);
  return policy;
}

// This runs for every route of every host on each translation, mostly as cold code: objects are
// built field by field rather than with conditional spreads, and maps are walked with indexed
// loops over Object.keys rather than Object.entries — both several times cheaper there.
function stringMatcher(m: StringMatch, ignoreCase = false): StringMatcher | undefined {
  let out: StringMatcher;
  if (m.exact !== undefined) out = { exact: m.exact };
  else if (m.prefix !== undefined) out = { prefix: m.prefix };
  else if (m.regex !== undefined) return { safe_regex: { regex: m.regex } };
  else return undefined;
  if (ignoreCase) out.ignore_case = true;
  return out;
}

/** Istio's jwt.ToRoutingClaim: `@request.auth.claims.a.b` or `@request.auth.claims[a][b]` → [a, b]. */
export function routingClaim(name: string): string[] | undefined {
  if (!name.toLowerCase().startsWith('@request.auth.claims')) return undefined;
  const rest = name.slice('@request.auth.claims'.length);
  if (rest.startsWith('.') && rest.length > 1) return rest.slice(1).split('.');
  if (rest.startsWith('[') && rest.endsWith(']') && rest.length > 2) return rest.slice(1, -1).split('][');
  return undefined;
}

function addHeaderMatchers(out: HeaderMatcher[], headers: Record<string, StringMatch> | undefined, invert: boolean, metadata: MetadataMatcher[]): void {
  if (!headers) return;
  const names = Object.keys(headers);
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const sm = stringMatcher(headers[name]!);
    const claims = routingClaim(name);
    if (claims !== undefined) {
      // As istiod (route.go translateMetadataMatch): a JWT claim of jwt_authn's payload, a string or a list of strings.
      const value = { string_match: sm ?? { safe_regex: { regex: '.+' } } };
      const m: MetadataMatcher = { filter: 'envoy.filters.http.jwt_authn', path: ['payload', ...claims].map((key) => ({ key })), value: { or_match: { value_matchers: [{ list_match: { one_of: value } }, value] } } };
      if (invert) m.invert = true;
      metadata.push(m);
      continue;
    }
    // An empty match means "the header is present" (Istio's presence match).
    const matcher: HeaderMatcher = sm ? { name: name.toLowerCase(), string_match: sm } : { name: name.toLowerCase(), present_match: true };
    if (invert) {
      matcher.invert_match = true;
      // As istiod (route.go TranslateRouteMatch): an absent header is "" so withoutHeaders matches it.
      if (sm) matcher.treat_missing_header_as_empty = true;
    }
    out.push(matcher);
  }
}

function routeMatch(m: HTTPMatchRequest | undefined): RouteMatch {
  const match: RouteMatch = {};
  const uri = m?.uri;
  if (uri?.exact !== undefined) match.path = uri.exact;
  else if (uri?.regex !== undefined) match.safe_regex = { regex: uri.regex };
  else match.prefix = uri?.prefix ?? '/';
  if (m?.ignoreUriCase) match.case_sensitive = { value: false };
  const headers: HeaderMatcher[] = [];
  const metadata: MetadataMatcher[] = [];
  addHeaderMatchers(headers, m?.headers, false, metadata);
  addHeaderMatchers(headers, m?.withoutHeaders, true, metadata);
  if (metadata.length > 0) match.dynamic_metadata = metadata;
  if (m?.method) headers.push({ name: ':method', string_match: stringMatcher(m.method)! });
  if (m?.authority) headers.push({ name: ':authority', string_match: stringMatcher(m.authority)! });
  if (m?.scheme) headers.push({ name: ':scheme', string_match: stringMatcher(m.scheme)! });
  if (headers.length > 0) match.headers = headers;
  if (m?.queryParams) {
    const query: QueryParameterMatcher[] = [];
    const names = Object.keys(m.queryParams);
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      const sm = stringMatcher(m.queryParams[name]!);
      query.push(sm ? { name, string_match: sm } : { name, present_match: true });
    }
    if (query.length > 0) match.query_parameters = query;
  }
  return match;
}

/** Istio's header operations: set overwrites, add appends, remove removes. */
export function headerOptions(ops: HeaderOperations | undefined): { add: HeaderValueOption[]; remove: string[] } {
  const add: HeaderValueOption[] = [];
  addHeaders(add, ops?.set, 'OVERWRITE_IF_EXISTS_OR_ADD');
  addHeaders(add, ops?.add, 'APPEND_IF_EXISTS_OR_ADD');
  return { add, remove: (ops?.remove ?? []).map((h) => h.toLowerCase()) };
}

function addHeaders(out: HeaderValueOption[], headers: Record<string, string> | undefined, action: HeaderValueOption['append_action']): void {
  if (!headers) return;
  const keys = Object.keys(headers);
  for (let i = 0; i < keys.length; i++) out.push({ header: { key: keys[i]!.toLowerCase(), value: headers[keys[i]!]! }, append_action: action });
}

/** The header-operation fields a route and a weighted cluster share. */
type HeaderFields = Pick<WeightedCluster, 'request_headers_to_add' | 'request_headers_to_remove' | 'response_headers_to_add' | 'response_headers_to_remove'>;

function applyHeaders(target: HeaderFields, ops: HTTPRoute['headers']): void {
  if (!ops) return;
  const req = headerOptions(ops?.request);
  const res = headerOptions(ops?.response);
  if (req.add.length) target.request_headers_to_add = req.add;
  if (req.remove.length) target.request_headers_to_remove = req.remove;
  if (res.add.length) target.response_headers_to_add = res.add;
  if (res.remove.length) target.response_headers_to_remove = res.remove;
}

function routeAction(http: HTTPRoute, namer: ClusterNamer): RouteAction {
  const dests = http.route ?? [];
  const action: RouteAction = {};
  // As istiod (route.go translateRoute): a lone destination takes all traffic whatever its weight;
  // of several, those without weight are left out and the rest split in proportion to their sum
  // (Envoy's weighted_clusters without the deprecated total_weight).
  if (dests.length === 1 && !dests[0]!.headers) {
    action.cluster = namer(dests[0]!.destination);
    addHashPolicy(action, namer, dests[0]!.destination);
  } else {
    const clusters: WeightedCluster[] = [];
    for (const d of dests) {
      if (dests.length > 1 && !d.weight) continue;
      const cluster: WeightedCluster = { name: namer(d.destination), weight: { value: dests.length === 1 ? 100 : d.weight! } };
      applyHeaders(cluster, d.headers);
      clusters.push(cluster);
      addHashPolicy(action, namer, d.destination);
    }
    action.weighted_clusters = { clusters };
  }
  action.timeout = http.timeout ? msToProto(parseDuration(http.timeout) as number) : { seconds: 0, nanos: 0 };
  const retry = retryPolicy(http.retries);
  if (retry) action.retry_policy = retry;
  if (http.rewrite?.uri !== undefined) action.prefix_rewrite = http.rewrite.uri;
  if (http.rewrite?.uriRegexRewrite) action.regex_rewrite = { pattern: { regex: http.rewrite.uriRegexRewrite.match }, substitution: http.rewrite.uriRegexRewrite.rewrite ?? '' };
  if (http.rewrite?.authority) action.host_rewrite_literal = http.rewrite.authority;
  if (http.mirror || http.mirrors) {
    const mirrors = translateMirrors(http, namer);
    if (mirrors.length > 0) action.request_mirror_policies = mirrors;
  }
  return action;
}

/** As istiod: each destination's consistent-hash policy is appended to the route's hash_policy. */
function addHashPolicy(action: RouteAction, namer: ClusterNamer, dest: Destination): void {
  const policy = namer.hashPolicy?.(dest);
  if (policy) (action.hash_policy ??= []).push(policy);
}

/** The proxy (and the gateways it serves) a route is translated for, for `match.sourceLabels` / `sourceNamespace` / `gateways`. */
export interface RouteSource {
  labels: Readonly<Record<string, string>>;
  namespace: string;
  /** `mesh` for a workload's own outbound routes */
  gateways: readonly string[];
}

/**
 * istiod's sourceMatchHTTP: a match naming `gateways` applies where one of
 * them is served (`mesh` for a workload); otherwise its `sourceLabels` must
 * be a subset of the proxy's labels and `sourceNamespace`, if set, its
 * namespace. A match that does not apply is left out of this proxy's routes.
 */
export function sourceMatch(m: HTTPMatchRequest | undefined, source: RouteSource): boolean {
  if (!m) return true;
  if (m.gateways && m.gateways.length > 0) return m.gateways.some((g) => source.gateways.includes(g));
  const want = m.sourceLabels ?? {};
  for (const k of Object.keys(want)) if (source.labels[k] !== want[k]) return false;
  return !m.sourceNamespace || m.sourceNamespace === source.namespace;
}

/** Whether a VirtualService's routes depend on the proxy they are translated for (source matches). */
export function hasSourceMatches(http: readonly HTTPRoute[] | undefined): boolean {
  return !!http?.some((h) => h.match?.some((m) => m && (m.sourceLabels !== undefined || m.sourceNamespace !== undefined || (m.gateways?.length ?? 0) > 0)));
}

/** Translates one VirtualService http route into Envoy routes (one per match). */
export function translateHttpRoute(http: HTTPRoute, index: number, port: number, namer: ClusterNamer, source?: RouteSource): Route[] {
  const matches = (http.match ?? [undefined]).filter((m) => (m?.port === undefined || m.port === port) && (source === undefined || sourceMatch(m, source)));
  if (matches.length === 0) return [];
  const base: Omit<Route, 'match'> = {
    name: http.name ?? `route-${index}`,
  };
  if (http.directResponse) {
    base.direct_response = { status: http.directResponse.status, ...(http.directResponse.body?.string !== undefined && { body: { inline_string: http.directResponse.body.string } }) };
  } else if (http.redirect) {
    base.redirect = {
      ...(http.redirect.uri !== undefined && { path_redirect: http.redirect.uri }),
      ...(http.redirect.authority !== undefined && { host_redirect: http.redirect.authority }),
      ...(http.redirect.port !== undefined && { port_redirect: http.redirect.port }),
      ...(http.redirect.scheme !== undefined && { scheme_redirect: http.redirect.scheme }),
      response_code: redirectCode(http.redirect.redirectCode ?? 301),
    };
  } else {
    base.route = routeAction(http, namer);
  }
  applyHeaders(base, http.headers);
  const fault = translateFault(http.fault);
  if (fault) base.typed_per_filter_config = { 'envoy.filters.http.fault': fault };
  const cors = translateCorsPolicy(http.corsPolicy);
  if (cors) (base.typed_per_filter_config ??= {})['envoy.filters.http.cors'] = cors;
  // One route per match, sharing everything but the match (a shallow copy, as a spread would be).
  if (matches.length === 1) {
    const route = base as Route;
    route.match = routeMatch(matches[0]);
    return [route];
  }
  return matches.map((m) => {
    const route = Object.assign({}, base) as Route;
    route.match = routeMatch(m);
    return route;
  });
}

/** Istio `mirror` / `mirrors` → request_mirror_policies (fractions as istiod writes them). */
function translateMirrors(http: HTTPRoute, namer: ClusterNamer): RequestMirrorPolicy[] {
  const out: RequestMirrorPolicy[] = [];
  if (http.mirror) {
    const fraction = translateMirrorFraction(http.mirrorPercentage, http.mirrorPercent);
    if (fraction) out.push({ cluster: namer(http.mirror), runtime_fraction: fraction });
  }
  for (const m of http.mirrors ?? []) {
    const fraction = translateMirrorFraction(m.percentage);
    if (fraction) out.push({ cluster: namer(m.destination), runtime_fraction: fraction });
  }
  return out;
}

function redirectCode(code: number): string {
  const names: Record<number, string> = { 301: 'MOVED_PERMANENTLY', 302: 'FOUND', 303: 'SEE_OTHER', 307: 'TEMPORARY_REDIRECT', 308: 'PERMANENT_REDIRECT' };
  return names[code] ?? 'MOVED_PERMANENTLY';
}

/** The route of a host without a VirtualService: all to its cluster, with the DestinationRule's hash policy (istiod's buildSidecarVirtualHostForService). */
export function defaultRoute(namer: ClusterNamer, hostname: string, port: number): Route {
  const dest = { host: hostname, port: { number: port } };
  const route: Route = { name: 'default', match: { prefix: '/' }, route: { cluster: namer(dest), timeout: { seconds: 0, nanos: 0 }, retry_policy: defaultRetryPolicy() } };
  const hash = namer.hashPolicy?.(dest);
  if (hash) route.route!.hash_policy = [hash];
  return route;
}
