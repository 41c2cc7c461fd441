/**
 * Envoy's RedirectAction, run by the router as a local reply: the Location a
 * redirect route answers with and its status, computed the way Envoy's
 * RouteEntryImplBase::newUri does (scheme, host, port, path and query each
 * kept from the request unless the action replaces them).
 */
import type { CompiledRoute } from './route.js';
import { rewritePath } from './route.js';

/** The parts of a request a redirect reads. */
export interface RedirectRequest {
  /** `http` or `https` */
  readonly scheme: string;
  /** The request's authority (Host / :authority), with its port if it had one. */
  readonly authority: string;
  /** The path without the query. */
  readonly path: string;
  /** The raw query without `?`, or ''. */
  readonly query: string;
}

const CODES: Readonly<Record<string, number>> = { MOVED_PERMANENTLY: 301, FOUND: 302, SEE_OTHER: 303, TEMPORARY_REDIRECT: 307, PERMANENT_REDIRECT: 308 };

/** The status of a redirect action: response_code by name (or number), 301 by default as in Envoy. */
export function redirectStatus(redirect: Readonly<Record<string, unknown>>): number {
  const code = redirect.response_code;
  if (typeof code === 'number') return [301, 302, 303, 307, 308].includes(code) ? code : 301;
  return CODES[String(code ?? 'MOVED_PERMANENTLY')] ?? 301;
}

/** The Location of a redirect route for a request. */
export function redirectLocation(route: CompiledRoute, req: RedirectRequest): string {
  const r = route.redirect ?? {};
  const scheme = typeof r.scheme_redirect === 'string' && r.scheme_redirect !== '' ? r.scheme_redirect.toLowerCase() : r.https_redirect === true ? 'https' : req.scheme;
  const portRedirect = Number(r.port_redirect ?? 0);
  let host: string;
  if (typeof r.host_redirect === 'string' && r.host_redirect !== '') {
    host = r.host_redirect;
  } else {
    // Envoy's processRequestHost: the request's port goes when it is replaced, or when it is
    // the default port of the scheme being left (http://a:80 → https://a).
    const [name, port] = splitAuthority(req.authority);
    const defaultOfOld = (req.scheme === 'http' && port === '80') || (req.scheme === 'https' && port === '443');
    host = portRedirect > 0 || (scheme !== req.scheme && defaultOfOld) ? name : req.authority;
  }
  if (portRedirect > 0) host = `${splitAuthority(host)[0]}:${portRedirect}`;
  let path = req.path;
  let query = r.strip_query === true ? '' : req.query;
  if (typeof r.path_redirect === 'string' && r.path_redirect !== '') {
    const q = r.path_redirect.indexOf('?');
    path = q === -1 ? r.path_redirect : r.path_redirect.slice(0, q);
    if (q !== -1) query = r.path_redirect.slice(q + 1);
  } else if (typeof r.prefix_rewrite === 'string') {
    path = rewritePath({ ...route, prefixRewrite: r.prefix_rewrite, regexRewrite: undefined }, req.path) || '/';
  }
  return `${scheme}://${host}${path}${query ? `?${query}` : ''}`;
}

/** `host:port` → [host, port]; IPv6 literals keep their brackets. */
function splitAuthority(authority: string): [string, string | undefined] {
  const colon = authority.lastIndexOf(':');
  if (colon === -1 || authority.endsWith(']')) return [authority, undefined];
  return [authority.slice(0, colon), authority.slice(colon + 1)];
}
