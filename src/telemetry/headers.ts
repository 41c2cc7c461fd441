/**
 * Header helpers shared by the telemetry modules: reading a header from the
 * shapes the request path carries, and telling which headers are secrets
 * that must never reach a span.
 */

/**
 * Headers in any of the request path's shapes: Node's lower-cased
 * `IncomingHttpHeaders`, a user's record (any case), or a flat
 * `[name, value, …]` array (undici raw headers).
 */
export type HeaderSource = Record<string, string | string[] | number | undefined> | readonly string[];

/** The first value of header `name` (lower-case), or undefined. */
export function headerValue(headers: HeaderSource, name: string): string | undefined {
  if (isHeaderArray(headers)) {
    for (let i = 0; i < headers.length - 1; i += 2) {
      const key = headers[i]!;
      if (key.length === name.length && key.toLowerCase() === name) return headers[i + 1];
    }
    return undefined;
  }
  let v = headers[name];
  if (v === undefined) {
    // A user's record may be mixed-case; Node's never is, so this scan is rare.
    for (const key of Object.keys(headers)) {
      if (key.length === name.length && key.toLowerCase() === name) {
        v = headers[key];
        break;
      }
    }
  }
  if (v === undefined) return undefined;
  if (Array.isArray(v)) return v[0];
  return String(v);
}

function isHeaderArray(headers: HeaderSource): headers is readonly string[] {
  return Array.isArray(headers);
}

const SECRET_HEADERS = new Set([
  'authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'www-authenticate', 'proxy-authenticate',
  'x-api-key', 'api-key', 'apikey', 'x-amz-security-token', 'x-csrf-token', 'x-xsrf-token',
  'x-forwarded-client-cert', 'x-envoy-peer-metadata',
]);

/** Substrings that mark a custom header as a credential (`x-auth-token`, `x-client-secret`, `x-session-id` …). */
const SECRET_PARTS = ['token', 'secret', 'password', 'passwd', 'credential', 'api-key', 'apikey', 'session', 'signature', 'auth'];

/**
 * True for headers that must never be recorded on a span: Authorization,
 * Cookie, Set-Cookie, Proxy-Authorization, and anything that looks like a
 * credential (`x-*-token`, `*secret*`, `*api-key*`, `*session*`, `*auth*` …).
 * Deliberately broad: a missing attribute costs nothing, a leaked token does.
 */
export function isSecretHeader(name: string): boolean {
  const n = name.toLowerCase();
  if (SECRET_HEADERS.has(n)) return true;
  for (const part of SECRET_PARTS) if (n.includes(part)) return true;
  return false;
}
