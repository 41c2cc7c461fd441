/**
 * OpenTelemetry HTTP semantic-convention rules meshlet's spans follow: the
 * method normalisation and the redaction of credentials and signed-URL
 * values in recorded URLs.
 */

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

/** Semantic conventions: known methods upper-case, anything else `_OTHER`. */
export function normalizeMethod(method: string): string {
  if (method === 'GET' || method === 'POST') return method;
  if (KNOWN_METHODS.has(method)) return method;
  const upper = method.toUpperCase();
  return KNOWN_METHODS.has(upper) ? upper : '_OTHER';
}

/** Query parameters whose values the semantic conventions require redacting. */
const SIGNED_QUERY_PARAMS = ['AWSAccessKeyId', 'Signature', 'sig', 'X-Goog-Signature'];

/**
 * `url.full` without credentials: user info becomes `REDACTED:REDACTED` and
 * the values of signed-URL query parameters become `REDACTED`.
 */
export function redactUrl(url: string): string {
  let out = url;
  const scheme = out.indexOf('@') === -1 ? -1 : out.indexOf('://');
  if (scheme !== -1) {
    const authorityStart = scheme + 3;
    let authorityEnd = out.length;
    for (const c of ['/', '?', '#']) {
      const i = out.indexOf(c, authorityStart);
      if (i !== -1 && i < authorityEnd) authorityEnd = i;
    }
    const at = out.lastIndexOf('@', authorityEnd);
    if (at >= authorityStart) out = `${out.slice(0, authorityStart)}REDACTED:REDACTED${out.slice(at)}`;
  }
  const q = out.indexOf('?');
  if (q !== -1 && hasSignedParam(out)) {
    const hash = out.indexOf('#', q);
    const end = hash === -1 ? out.length : hash;
    out = out.slice(0, q + 1) + redactQuery(out.slice(q + 1, end)) + out.slice(end);
  }
  return out;
}

/** Whether `text` may hold a signed-URL parameter (a cheap substring test before any splitting). */
function hasSignedParam(text: string): boolean {
  for (const p of SIGNED_QUERY_PARAMS) if (text.includes(p)) return true;
  return false;
}

/** A query string with the values of signed-URL parameters replaced by `REDACTED`. */
export function redactQuery(query: string): string {
  if (!hasSignedParam(query)) return query;
  return query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq === -1 ? pair : pair.slice(0, eq);
      return eq !== -1 && SIGNED_QUERY_PARAMS.includes(name) ? `${name}=REDACTED` : pair;
    })
    .join('&');
}
