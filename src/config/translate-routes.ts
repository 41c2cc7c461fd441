/**
 * VirtualService http routes → Envoy routes, the way istiod writes them:
 * one Envoy route per match condition (matches are ORed), weighted clusters
 * named `outbound|port|subset|host`, Istio's default retry policy when the
 * VirtualService sets none, timeouts, rewrites, header operations, faults and
 * mirrors in the route's per-filter config.
 */
import { msToProto, parseDuration } from '../core/duration.js';
import type { HeaderMatcher, HeaderValueOption, QueryParameterMatcher, RequestMirrorPolicy, RetryPolicy, Route, RouteAction, RouteMatch, StringMatcher } from './envoy.js';
import type { Destination, HTTPMatchRequest, HTTPRoute, HeaderOperations, StringMatch } from './istio-types.js';
import { translateFault, translateMirrorFraction } from './translate-resilience.js';

/** Resolves an Istio destination to the Envoy cluster name that serves it. */
export type ClusterNamer = (destination: Destination) => string;

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

function stringMatcher(m: StringMatch, ignoreCase = false): StringMatcher | undefined {
  const base = ignoreCase ? { ignore_case: true } : {};
  if (m.exact !== undefined) return { exact: m.exact, ...base };
  if (m.prefix !== undefined) return { prefix: m.prefix, ...base };
  if (m.regex !== undefined) return { safe_regex: { regex: m.regex } };
  return undefined;
}

function headerMatchers(headers: Record<string, StringMatch> | undefined, invert: boolean): HeaderMatcher[] {
  const out: HeaderMatcher[] = [];
  for (const [name, m] of Object.entries(headers ?? {})) {
    const sm = stringMatcher(m);
    // An empty match means "the header is present" (Istio's presence match).
    out.push({ name: name.toLowerCase(), ...(sm ? { string_match: sm } : { present_match: true }), ...(invert && { invert_match: true }) });
  }
  return out;
}

function routeMatch(m: HTTPMatchRequest | undefined): RouteMatch {
  const match: RouteMatch = {};
  const uri = m?.uri;
  if (uri?.exact !== undefined) match.path = uri.exact;
  else if (uri?.regex !== undefined) match.safe_regex = { regex: uri.regex };
  else match.prefix = uri?.prefix ?? '/';
  if (m?.ignoreUriCase) match.case_sensitive = { value: false };
  const headers = [...headerMatchers(m?.headers, false), ...headerMatchers(m?.withoutHeaders, true)];
  if (m?.method) headers.push({ name: ':method', string_match: stringMatcher(m.method)! });
  if (m?.authority) headers.push({ name: ':authority', string_match: stringMatcher(m.authority)! });
  if (m?.scheme) headers.push({ name: ':scheme', string_match: stringMatcher(m.scheme)! });
  if (headers.length > 0) match.headers = headers;
  const query: QueryParameterMatcher[] = [];
  for (const [name, qm] of Object.entries(m?.queryParams ?? {})) {
    const sm = stringMatcher(qm);
    query.push(sm ? { name, string_match: sm } : { name, present_match: true });
  }
  if (query.length > 0) match.query_parameters = query;
  return match;
}

/** Istio's header operations: set overwrites, add appends, remove removes. */
export function headerOptions(ops: HeaderOperations | undefined): { add: HeaderValueOption[]; remove: string[] } {
  const add: HeaderValueOption[] = [];
  for (const [key, value] of Object.entries(ops?.set ?? {})) add.push({ header: { key: key.toLowerCase(), value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
  for (const [key, value] of Object.entries(ops?.add ?? {})) add.push({ header: { key: key.toLowerCase(), value }, append_action: 'APPEND_IF_EXISTS_OR_ADD' });
  return { add, remove: (ops?.remove ?? []).map((h) => h.toLowerCase()) };
}

function applyHeaders(target: Route, ops: HTTPRoute['headers']): void {
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
  if (dests.length === 1 && !dests[0]!.headers) {
    action.cluster = namer(dests[0]!.destination);
  } else {
    action.weighted_clusters = {
      clusters: dests.map((d) => {
        const req = headerOptions(d.headers?.request);
        const res = headerOptions(d.headers?.response);
        return {
          name: namer(d.destination),
          weight: { value: d.weight ?? (dests.length === 1 ? 100 : 0) },
          ...(req.add.length > 0 && { request_headers_to_add: req.add }),
          ...(req.remove.length > 0 && { request_headers_to_remove: req.remove }),
          ...(res.add.length > 0 && { response_headers_to_add: res.add }),
          ...(res.remove.length > 0 && { response_headers_to_remove: res.remove }),
        };
      }),
    };
  }
  action.timeout = http.timeout ? msToProto(parseDuration(http.timeout) as number) : { seconds: 0, nanos: 0 };
  const retry = retryPolicy(http.retries);
  if (retry) action.retry_policy = retry;
  if (http.rewrite?.uri !== undefined) action.prefix_rewrite = http.rewrite.uri;
  if (http.rewrite?.uriRegexRewrite) action.regex_rewrite = { pattern: { regex: http.rewrite.uriRegexRewrite.match }, substitution: http.rewrite.uriRegexRewrite.rewrite ?? '' };
  if (http.rewrite?.authority) action.host_rewrite_literal = http.rewrite.authority;
  const mirrors = translateMirrors(http, namer);
  if (mirrors.length > 0) action.request_mirror_policies = mirrors;
  return action;
}

/** Translates one VirtualService http route into Envoy routes (one per match). */
export function translateHttpRoute(http: HTTPRoute, index: number, port: number, namer: ClusterNamer): Route[] {
  const matches = (http.match ?? [undefined]).filter((m) => m?.port === undefined || m.port === port);
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
  applyHeaders(base as Route, http.headers);
  const fault = translateFault(http.fault);
  if (fault) base.typed_per_filter_config = { 'envoy.filters.http.fault': fault };
  return matches.map((m) => ({ ...base, match: routeMatch(m) }));
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
