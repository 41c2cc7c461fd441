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
  const extras = routeExtras.get(http);
  const invalid = extras?.invalid;
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
      if (extras?.backoff && action.retry_policy) {
        const ms = parseDuration(extras.backoff);
        if (typeof ms === 'number' && ms > 0) action.retry_policy.retry_back_off = { base_interval: msToProto(ms) };
      }
    }
    if (extras?.redirect) route.redirect = redirectAction(extras.redirect, route.match.path_separated_prefix !== undefined, port);
  }
  return routes;
}

/** Gateway API RequestRedirect → Envoy RedirectAction (conversion.go createRedirectFilter + route.go ApplyRedirect). */
function redirectAction(r: NonNullable<NonNullable<ReturnType<typeof routeExtras.get>>['redirect']>, prefixMatch: boolean, listenerPort: number): Record<string, unknown> {
  const out: Record<string, unknown> = { response_code: REDIRECT_CODES[r.statusCode ?? 302] ?? 'FOUND' };
  if (r.hostname) out.host_redirect = r.hostname;
  if (r.scheme) out.scheme_redirect = r.scheme;
  if (r.path?.type === 'ReplaceFullPath') out.path_redirect = r.path.replaceFullPath ?? '/';
  if (r.path?.type === 'ReplacePrefixMatch' && prefixMatch) out.prefix_rewrite = r.path.replacePrefixMatch ?? '/';
  // "When empty, port (if specified) of the request is used", unless the scheme changes (its default port).
  let port = r.port ?? (r.scheme ? 0 : r.hostname ? listenerPort : 0);
  const scheme = r.scheme ?? 'http';
  if ((port === 80 && scheme === 'http') || (port === 443 && scheme === 'https')) port = 0;
  if (port > 0) out.port_redirect = port;
  return out;
}

function quoteMeta(s: string): string {
  return s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}
