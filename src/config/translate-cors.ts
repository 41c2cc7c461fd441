/**
 * VirtualService `http[].corsPolicy` → the route's
 * typed_per_filter_config['envoy.filters.http.cors'] (an Envoy CorsPolicy),
 * as istiod's TranslateCORSPolicy: allowOrigins as string matchers (the
 * deprecated allowOrigin as exact ones), the lists joined with `,`, maxAge
 * in whole seconds, filter enabled 100%, forward_not_matching_preflights
 * false only for `unmatchedPreflights: IGNORE`. Checked as istiod's
 * validateCORSPolicy checks it.
 */
import { parseDuration } from '../core/duration.js';
import { MeshConfigError } from '../errors.js';
import type { Any, StringMatcher } from './envoy.js';
import { TYPE_URL } from './envoy.js';
import type { CorsPolicySpec } from './istio-types.js';
import type { ConfigLocation } from './translate-resilience.js';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', '*']);
/** RFC 7230 tchar: istiod's validHeaderNameRegex. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Translates a corsPolicy; throws MeshConfigError naming the field when istiod would refuse it. */
export function translateCorsPolicy(cors: CorsPolicySpec | undefined, at?: ConfigLocation): Any | undefined {
  if (!cors) return undefined;
  const fail = (field: string, reason: string): never => {
    throw new MeshConfigError(at?.kind ?? 'VirtualService', at?.resource ?? '', at ? `${at.path}.corsPolicy.${field}` : `corsPolicy.${field}`, reason);
  };
  const out: Any = {
    '@type': TYPE_URL.corsPolicy,
    filter_enabled: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
    // Envoy's default before 1.30 (forward), as istiod writes it unless IGNORE.
    forward_not_matching_preflights: { value: cors.unmatchedPreflights !== 'IGNORE' },
  };
  const origins: StringMatcher[] = [];
  if (cors.allowOrigins) {
    cors.allowOrigins.forEach((m, i) => {
      const v = m?.exact ?? m?.prefix ?? m?.regex;
      if (!v) fail(`allowOrigins[${i}]`, `'${v ?? ''}' is not a valid match type for CORS allow origins`);
      origins.push(m.exact !== undefined ? { exact: m.exact } : m.prefix !== undefined ? { prefix: m.prefix } : { safe_regex: { regex: m.regex! } });
    });
  } else if (cors.allowOrigin) {
    for (const o of cors.allowOrigin) origins.push({ exact: o });
  }
  if (origins.length > 0) out.allow_origin_string_match = origins;
  (cors.allowMethods ?? []).forEach((m, i) => {
    if (!METHODS.has(m)) fail(`allowMethods[${i}]`, `"${m}" is not a supported HTTP method`);
  });
  for (const field of ['allowHeaders', 'exposeHeaders'] as const) {
    (cors[field] ?? []).forEach((h, i) => {
      if (!h) fail(`${field}[${i}]`, 'header name cannot be empty');
      if (h !== '*' && !HEADER_NAME.test(h)) fail(`${field}[${i}]`, `header name ${h} is not a valid header name`);
    });
  }
  if (cors.allowMethods?.length) out.allow_methods = cors.allowMethods.join(',');
  if (cors.allowHeaders?.length) out.allow_headers = cors.allowHeaders.join(',');
  if (cors.exposeHeaders?.length) out.expose_headers = cors.exposeHeaders.join(',');
  if (cors.maxAge !== undefined) {
    const parsed = parseDuration(cors.maxAge);
    const ms = typeof parsed === 'string' ? fail('maxAge', parsed) : parsed;
    if (ms % 1000 !== 0) fail('maxAge', 'max_age duration is accurate only to seconds precision');
    out.max_age = String(ms / 1000);
  }
  if (cors.allowCredentials !== undefined) out.allow_credentials = { value: cors.allowCredentials };
  return out;
}
