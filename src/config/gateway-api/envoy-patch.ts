/**
 * Gateway API semantics on top of the VirtualService translation, as istiod
 * applies them to VirtualServices marked `route-semantics: gateway`
 * (pilot/pkg/networking/core/route/route.go): a PathPrefix matches whole path
 * segments (path_separated_prefix), a backend that does not resolve answers
 * 500 (cluster_not_found_response_code), ReplacePrefixMatch "/" strips the
 * prefix, retry backoff, and the RequestRedirect filter's port and path rules.
 */
import { msToProto, parseDuration } from '../../core/duration.js';
import type { Route } from '../envoy.js';
import type { HTTPRoute } from '../istio-types.js';
import { translateHttpRoute, type ClusterNamer } from '../translate-routes.js';
import { routeExtras } from './convert.js';

/** A cluster name no Cluster has: requests routed to it get cluster_not_found_response_code. */
const UNRESOLVED_CLUSTER = 'gateway-api|unresolved-backend';

const REDIRECT_CODES: Readonly<Record<number, string>> = { 301: 'MOVED_PERMANENTLY', 302: 'FOUND', 303: 'SEE_OTHER', 307: 'TEMPORARY_REDIRECT', 308: 'PERMANENT_REDIRECT' };

/** translateHttpRoute for an Istio route converted from a Gateway API rule. */
export function translateGatewayApiRoute(http: HTTPRoute, index: number, port: number, namer: ClusterNamer): Route[] {
  const invalid = routeExtras.get(http)?.invalid;
  const routes = translateHttpRoute(http, index, port, invalid ? (d) => (invalid.has(d) ? UNRESOLVED_CLUSTER : namer(d)) : namer);
  for (const route of routes) {
    const prefix = route.match.prefix;
    if (prefix !== undefined && prefix !== '/') {
      delete route.match.prefix;
      // route.go: a GRPCRoute service match is the prefix `/<service>/`; the segment boundary replaces its `/`.
      route.match.path_separated_prefix = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
    }
    const action = route.route;
    if (action) {
      action.cluster_not_found_response_code = 'INTERNAL_SERVER_ERROR';
      if (action.prefix_rewrite === '/' && route.match.path_separated_prefix !== undefined) {
        // ReplacePrefixMatch "/" removes the prefix, keeping the `/` that follows it.
        delete action.prefix_rewrite;
        action.regex_rewrite = { pattern: { regex: `^${quoteMeta(route.match.path_separated_prefix)}(/?)(.*)` }, substitution: '/\\2' };
      }
      const backoff = http.retries?.backoff;
      if (backoff && action.retry_policy) {
        const ms = parseDuration(backoff);
        if (typeof ms === 'number' && ms > 0) action.retry_policy.retry_back_off = { base_interval: msToProto(ms) };
      }
    }
    if (http.redirect) route.redirect = redirectAction(http.redirect, route.match.path_separated_prefix !== undefined, port);
  }
  return routes;
}

/**
 * The Istio redirect of a Gateway API rule → Envoy RedirectAction (route.go ApplyRedirect):
 * FROM_REQUEST_PORT is the listener port (routes are built per port); 80 for http and 443
 * for https are left out; the status defaults to the Gateway API's 302.
 */
function redirectAction(r: NonNullable<HTTPRoute['redirect']>, prefixMatch: boolean, listenerPort: number): Record<string, unknown> {
  const out: Record<string, unknown> = { response_code: REDIRECT_CODES[r.redirectCode ?? 302] ?? 'FOUND' };
  if (r.authority) out.host_redirect = r.authority;
  if (r.scheme) out.scheme_redirect = r.scheme;
  if (r.prefixRewrite !== undefined && prefixMatch) out.prefix_rewrite = r.prefixRewrite;
  else if (r.uri !== undefined) out.path_redirect = r.uri;
  let port = r.port ?? (r.derivePort === 'FROM_REQUEST_PORT' ? listenerPort : 0);
  const scheme = r.scheme ?? 'http';
  if ((port === 80 && scheme === 'http') || (port === 443 && scheme === 'https')) port = 0;
  if (port > 0) out.port_redirect = port;
  return out;
}

function quoteMeta(s: string): string {
  return s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}
