/**
 * Envoy's CORS filter (source/extensions/filters/http/cors/cors_filter.cc) on
 * the route's and the virtual host's `envoy.filters.http.cors` per-filter
 * config (a CorsPolicy; the deprecated RouteAction / VirtualHost `cors` field
 * when neither has one). Each setting is taken from the route's policy when it
 * sets it, else the virtual host's.
 *
 * - A request with an `origin` and the filter enabled is a CORS request; an
 *   origin matching `allow_origin_string_match` is latched.
 * - A preflight (OPTIONS with `access-control-request-method`) is answered by
 *   the mesh with 200 and the allow-origin / -credentials / -methods /
 *   -headers / max-age headers — unless the origin does not match and
 *   `forward_not_matching_preflights` (default true) lets it through.
 * - Any other CORS request goes upstream; its response gets
 *   access-control-allow-origin (the latched origin), -allow-credentials and
 *   -expose-headers.
 */
import type { StringMatcher } from '../config/envoy.js';
import { compileStringMatcher } from './router.js';

type StringTest = (s: string) => boolean;

/** One compiled CorsPolicy; undefined fields are unset (the next policy's apply). */
export interface CorsPolicy {
  readonly allowOrigins: readonly StringTest[];
  readonly allowMethods: string;
  readonly allowHeaders: string;
  readonly exposeHeaders: string;
  readonly maxAge: string;
  readonly allowCredentials: boolean | undefined;
  readonly allowPrivateNetworkAccess: boolean | undefined;
  readonly forwardNotMatchingPreflights: boolean | undefined;
  /** filter_enabled as a probability (default 1) */
  readonly enabled: number;
}

/** What the CORS filter decided for a request. */
export type CorsDecision =
  | { readonly kind: 'none' }
  /** answer the preflight with these headers */
  | { readonly kind: 'preflight'; readonly headers: Record<string, string> }
  /** forward; add these headers to the response (empty: the origin did not match) */
  | { readonly kind: 'simple'; readonly headers: readonly (readonly [string, string])[] };

const NONE: CorsDecision = { kind: 'none' };

function bool(v: unknown): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object') return (v as { value?: unknown }).value === true;
  return v === true;
}

function fraction(v: unknown): number {
  const d = (v as { default_value?: { numerator?: number | string; denominator?: string } } | undefined)?.default_value;
  if (!d) return 1;
  const denominator = d.denominator === 'MILLION' ? 1_000_000 : d.denominator === 'TEN_THOUSAND' ? 10_000 : 100;
  return Math.min(1, Number(d.numerator ?? 0) / denominator);
}

/** Compiles an Envoy CorsPolicy (filter per-route config or the deprecated route field). Throws naming `path`. */
export function compileCorsPolicy(raw: unknown, path: string): CorsPolicy | undefined {
  if (raw === undefined || raw === null) return undefined;
  const p = raw as Record<string, unknown>;
  const origins = (p.allow_origin_string_match ?? []) as StringMatcher[];
  return {
    allowOrigins: origins.map((m, i) => compileStringMatcher(m, `${path}.allow_origin_string_match[${i}]`)),
    allowMethods: String(p.allow_methods ?? ''),
    allowHeaders: String(p.allow_headers ?? ''),
    exposeHeaders: String(p.expose_headers ?? ''),
    maxAge: String(p.max_age ?? ''),
    allowCredentials: bool(p.allow_credentials),
    allowPrivateNetworkAccess: bool(p.allow_private_network_access),
    forwardNotMatchingPreflights: bool(p.forward_not_matching_preflights),
    enabled: fraction(p.filter_enabled),
  };
}

/** The request as the CORS filter reads it. */
export interface CorsRequest {
  requestHeader(name: string): string | undefined;
}

/**
 * The filter's decision for a request under the route's then the virtual
 * host's policy. `draw` in [0, 1) decides a partial filter_enabled.
 */
export function decideCors(route: CorsPolicy | undefined, vhost: CorsPolicy | undefined, req: CorsRequest, draw: number): CorsDecision {
  const first = route ?? vhost;
  if (first === undefined) return NONE;
  if (!(first.enabled >= 1 || draw < first.enabled)) return NONE;
  const origin = req.requestHeader('origin');
  if (!origin) return NONE;
  const pick = <T>(get: (p: CorsPolicy) => T, unset: (v: T) => boolean, fallback: T): T => {
    for (const p of [route, vhost]) if (p !== undefined && !unset(get(p))) return get(p);
    return fallback;
  };
  const str = (get: (p: CorsPolicy) => string) => pick(get, (v) => v === '', '');
  const flag = (get: (p: CorsPolicy) => boolean | undefined, fallback: boolean) => pick(get, (v) => v === undefined, fallback as boolean | undefined)!;
  const allowOrigins = pick((p) => p.allowOrigins, (v) => v.length === 0, [] as readonly StringTest[]);
  const allowed = allowOrigins.some((t) => t('*') || t(origin));
  const credentials = flag((p) => p.allowCredentials, false);

  const requestMethod = req.requestHeader('access-control-request-method');
  if (req.requestHeader(':method') === 'OPTIONS' && requestMethod) {
    if (!allowed && flag((p) => p.forwardNotMatchingPreflights, true)) return NONE;
    const headers: Record<string, string> = {};
    if (allowed) headers['access-control-allow-origin'] = origin;
    if (credentials) headers['access-control-allow-credentials'] = 'true';
    const methods = str((p) => p.allowMethods);
    if (methods) headers['access-control-allow-methods'] = methods === '*' ? requestMethod : methods;
    const allowHeaders = str((p) => p.allowHeaders);
    if (allowHeaders) headers['access-control-allow-headers'] = allowHeaders === '*' ? (req.requestHeader('access-control-request-headers') ?? '') : allowHeaders;
    const maxAge = str((p) => p.maxAge);
    if (maxAge) headers['access-control-max-age'] = maxAge;
    if (flag((p) => p.allowPrivateNetworkAccess, false) && req.requestHeader('access-control-request-private-network') === 'true') {
      headers['access-control-allow-private-network'] = 'true';
    }
    return { kind: 'preflight', headers };
  }
  if (!allowed) return { kind: 'simple', headers: [] };
  const out: Array<readonly [string, string]> = [['access-control-allow-origin', origin]];
  if (credentials) out.push(['access-control-allow-credentials', 'true']);
  const expose = str((p) => p.exposeHeaders);
  if (expose) out.push(['access-control-expose-headers', expose]);
  return { kind: 'simple', headers: out };
}
