/**
 * A compiled Envoy route: match, destination clusters with cumulative
 * weights, timeouts, retry policy, rewrites, header operations and the raw
 * per-filter configs that policies (fault, rate limit) compile from.
 */
import type { Any, HeaderValueOption, Route } from '../config/envoy.js';
import { protoToMs } from './duration.js';
import type { RandomSource } from './random.js';
import { compileRetryPolicy, type CompiledRetryPolicy } from './retry.js';
import { compileMatch, type CompiledMatch } from './router.js';
import { compileRegexRewrite, rewriteErrorField } from './regex.js';
import { compileFault, type FaultPolicy } from './fault.js';
import { compileMirrorPolicies, type MirrorPolicy } from './mirror.js';
import { compileHashPolicies, type HashPolicy } from './hash-policy.js';
import { compileCorsPolicy, type CorsPolicy } from './cors.js';
import type { GlobalLimitPolicy } from './global-rate-limit.js';

/** A header to add: [lower-case name, value, overwrite existing]. */
export type HeaderAdd = readonly [name: string, value: string, overwrite: boolean];

export interface HeaderMutation {
  readonly add: readonly HeaderAdd[];
  readonly remove: readonly string[];
}

export const noHeaderMutation: HeaderMutation = Object.freeze({ add: [], remove: [] });

export interface CompiledRoute {
  readonly name: string;
  readonly match: CompiledMatch;
  readonly kind: 'route' | 'direct' | 'redirect';
  readonly clusters: readonly string[];
  /** cumulative weights, same order as clusters */
  readonly cumulative: readonly number[];
  readonly totalWeight: number;
  /** per destination cluster header mutations (weighted clusters) */
  readonly clusterRequestHeaders: readonly HeaderMutation[];
  readonly clusterResponseHeaders: readonly HeaderMutation[];
  /** the route timeout of an HTTP request: `timeout`, capped by `max_stream_duration` (0: none) */
  readonly timeoutMs: number;
  /** the same for a gRPC call with a deadline (grpc-timeout) and without one; see {@link grpcTimeouts} */
  readonly grpcTimeoutMs: number;
  readonly grpcNoDeadlineTimeoutMs: number;
  readonly retry: CompiledRetryPolicy | undefined;
  readonly prefixRewrite: string | undefined;
  /** regex_rewrite, compiled (RE2 GlobalReplace; `\1` names group 1) */
  readonly regexRewrite: ((path: string) => string) | undefined;
  readonly hostRewrite: string | undefined;
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
  readonly directStatus: number;
  readonly directBody: string;
  readonly redirect: Readonly<Record<string, unknown>> | undefined;
  /** cluster_not_found_response_code: the local reply when the picked cluster is unknown (Envoy's default 503). */
  readonly clusterNotFoundStatus: number;
  readonly mirrors: readonly MirrorPolicy[];
  /** route.hash_policy: the request hash RING_HASH / MAGLEV clusters balance on */
  readonly hashPolicies: readonly HashPolicy[];
  /** the CORS filter's per-route policy (typed_per_filter_config `envoy.filters.http.cors`) */
  readonly cors: CorsPolicy | undefined;
  /** fault injection (envoy.filters.http.fault per-route config) */
  readonly fault: FaultPolicy | undefined;
  /** raw per-filter configs (e.g. `envoy.filters.http.fault`) for policy compilers */
  readonly filterConfig: Readonly<Record<string, Any>>;
  /** the route's own global rate limit (RouteAction.rate_limits, with the virtual host's when include_vh_rate_limits); set by the snapshot */
  readonly globalLimit?: GlobalLimitPolicy | undefined;
}

function mutation(add: HeaderValueOption[] | undefined, remove: string[] | undefined): HeaderMutation {
  if (!add?.length && !remove?.length) return noHeaderMutation;
  return {
    add: (add ?? []).map((h): HeaderAdd => [h.header.key.toLowerCase(), h.header.value, h.append_action === 'OVERWRITE_IF_EXISTS_OR_ADD' || h.append_action === 'OVERWRITE_IF_EXISTS']),
    remove: (remove ?? []).map((h) => h.toLowerCase()),
  };
}

/** Compiles one Envoy route. Throws Error with a field path on unusable input. */
export function compileRoute(route: Route, index: number): CompiledRoute {
  const action = route.route;
  const weighted = action?.weighted_clusters?.clusters ?? [];
  const clusters = action?.cluster ? [action.cluster] : weighted.map((c) => c.name);
  // Weights are proportions of their sum (total_weight is deprecated), as in Envoy.
  let total = 0;
  const cumulative = action?.cluster ? [1] : weighted.map((c) => (total += Number(c.weight?.value ?? 0)));
  if (action?.cluster) total = 1;
  if (action && clusters.length === 0) throw new Error(`routes[${index}].route: no cluster or weighted_clusters`);
  if (action && total <= 0) throw new Error(`routes[${index}].route.weighted_clusters: weights total 0`);
  if (total > MAX_TOTAL_WEIGHT) throw new Error(`routes[${index}].route.weighted_clusters: weights total ${total}, more than ${MAX_TOTAL_WEIGHT}`);
  const regexRewrite = action?.regex_rewrite ? compileRewrite(action.regex_rewrite, `routes[${index}].route.regex_rewrite`) : undefined;
  const timeouts = routeTimeouts(action);
  return {
    name: route.name ?? `route-${index}`,
    match: compileMatch(route.match ?? { prefix: '/' }, `routes[${index}].match`),
    kind: route.direct_response ? 'direct' : route.redirect ? 'redirect' : 'route',
    clusters,
    cumulative,
    totalWeight: total,
    clusterRequestHeaders: action?.cluster ? [noHeaderMutation] : weighted.map((c) => mutation(c.request_headers_to_add, c.request_headers_to_remove)),
    clusterResponseHeaders: action?.cluster ? [noHeaderMutation] : weighted.map((c) => mutation(c.response_headers_to_add, c.response_headers_to_remove)),
    timeoutMs: timeouts.http,
    grpcTimeoutMs: timeouts.grpcWithDeadline,
    grpcNoDeadlineTimeoutMs: timeouts.grpcWithoutDeadline,
    retry: compileRetryPolicy(action?.retry_policy),
    // Envoy: an empty prefix_rewrite is no rewrite (getPathRewrite(...).empty()).
    prefixRewrite: action?.prefix_rewrite || undefined,
    regexRewrite,
    hostRewrite: action?.host_rewrite_literal,
    requestHeaders: mutation(route.request_headers_to_add, route.request_headers_to_remove),
    responseHeaders: mutation(route.response_headers_to_add, route.response_headers_to_remove),
    directStatus: route.direct_response?.status ?? 0,
    directBody: route.direct_response?.body?.inline_string ?? '',
    redirect: route.redirect,
    clusterNotFoundStatus: action?.cluster_not_found_response_code === 'INTERNAL_SERVER_ERROR' ? 500 : action?.cluster_not_found_response_code === 'NOT_FOUND' ? 404 : 503,
    mirrors: compileMirrorPolicies(action?.request_mirror_policies),
    hashPolicies: compileHashPolicies(action?.hash_policy, `routes[${index}].route.hash_policy`),
    cors: compileCorsPolicy(route.typed_per_filter_config?.['envoy.filters.http.cors'] ?? action?.cors, `routes[${index}].typed_per_filter_config.envoy.filters.http.cors`),
    fault: compileFault(route.typed_per_filter_config?.['envoy.filters.http.fault'], route.name ?? `route-${index}`),
    filterConfig: route.typed_per_filter_config ?? {},
  };
}

/** The smaller of two timeouts where 0 means none. */
function minTimeout(a: number, b: number): number {
  return a === 0 ? b : b === 0 ? a : Math.min(a, b);
}

/**
 * The route timeouts a request gets, as Envoy's router computes them
 * (route_components.proto RouteAction): `timeout`; for gRPC, the deprecated
 * `max_grpc_timeout` (istiod's sidecar output) replaces it with the
 * grpc-timeout header capped by it (0: uncapped), and no header means
 * infinity capped by it; `max_stream_duration.max_stream_duration` bounds the
 * whole stream (istiod's proxyless output sets it to the VirtualService
 * timeout), and for a gRPC call with a grpc-timeout header
 * `grpc_timeout_header_max` replaces it with the header capped by it. The
 * caller's own deadline (the header) is enforced by grpc-js, so only the caps
 * are armed here. 0 means no timeout.
 */
export function routeTimeouts(action: Route['route']): { http: number; grpcWithDeadline: number; grpcWithoutDeadline: number } {
  const timeout = protoToMs(action?.timeout) ?? 0;
  const msd = action?.max_stream_duration;
  const streamMax = protoToMs(msd?.max_stream_duration) ?? 0;
  const maxGrpc = action?.max_grpc_timeout ? protoToMs(action.max_grpc_timeout) : undefined;
  const grpcBase = maxGrpc ?? timeout;
  const headerMax = msd?.grpc_timeout_header_max ? protoToMs(msd.grpc_timeout_header_max) : undefined;
  return {
    http: minTimeout(timeout, streamMax),
    grpcWithDeadline: minTimeout(grpcBase, headerMax ?? streamMax),
    grpcWithoutDeadline: minTimeout(grpcBase, streamMax),
  };
}

/** Envoy refuses weighted clusters whose weights sum past a uint32. */
export const MAX_TOTAL_WEIGHT = 4294967295;

function compileRewrite(rewrite: { pattern: { regex: string }; substitution: string }, path: string): (path: string) => string {
  try {
    return compileRegexRewrite(rewrite.pattern.regex, rewrite.substitution);
  } catch (err) {
    throw new Error(`${path}.${rewriteErrorField(err)}: ${(err as Error).message}`);
  }
}

/** Picks the destination cluster index by weight. */
export function pickClusterIndex(route: CompiledRoute, random: RandomSource): number {
  const n = route.clusters.length;
  if (n === 1) return 0;
  const r = random() * route.totalWeight;
  for (let i = 0; i < n; i++) if (r < route.cumulative[i]!) return i;
  return n - 1;
}

/**
 * Applies prefix or regex rewrite to a path (the matched prefix is replaced, as Envoy does).
 * A path or safe_regex match matches the whole path, so prefix_rewrite replaces all of it
 * (Envoy's RegexRouteEntryImpl passes the whole path as the matched part).
 */
export function rewritePath(route: CompiledRoute, path: string): string {
  if (route.prefixRewrite !== undefined) {
    const m = route.match;
    if (m.kind === 'prefix' || m.kind === 'separated') return route.prefixRewrite + path.slice(m.value.length);
    return route.prefixRewrite;
  }
  if (route.regexRewrite) return route.regexRewrite(path);
  return path;
}
