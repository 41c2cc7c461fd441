/**
 * Route matching, compiled: a virtual host's routes become plain objects with
 * pre-built matchers, evaluated in order (first match wins) with no parsing
 * or allocation beyond what a header lookup needs.
 */
import type { HeaderMatcher, MetadataMatcher, QueryParameterMatcher, RouteMatch, StringMatcher, ValueMatcher } from '../config/envoy.js';
import { compileFullMatch, type RegexTest } from './regex.js';

/** What the router needs to know about a request. Header names are lower-case. */
export interface RequestView {
  method: string;
  /** path without the query string */
  path: string;
  /** the raw query string without `?`, or '' */
  query: string;
  header(name: string): string | undefined;
  /** Dynamic metadata (jwt_authn's payload at the gateway); route metadata matchers see undefined without it. */
  dynamicMetadata?(filter: string, path: readonly string[]): unknown;
}

export type StringTest = (value: string) => boolean;

export interface CompiledHeaderMatch {
  name: string;
  /** undefined: a presence match (present_match, or no match specifier) */
  test: StringTest | undefined;
  /** for a presence match: match when present (true) or when absent (`present_match: false`) */
  present: boolean;
  invert: boolean;
  /** treat_missing_header_as_empty: an absent header is tested as '' */
  missingAsEmpty: boolean;
}

export interface CompiledMatch {
  /** `separated`: Envoy's path_separated_prefix (the prefix, then end of path or `/`). */
  kind: 'prefix' | 'separated' | 'path' | 'regex';
  value: string;
  /** the path's full-match test (RE2), for kind `regex` */
  regex: RegexTest | undefined;
  caseSensitive: boolean;
  headers: CompiledHeaderMatch[];
  query: Array<{ name: string; test: StringTest | undefined }>;
  /** dynamic_metadata matchers (VirtualService `@request.auth.claims` at a gateway). */
  metadata: Array<(source: MetadataSource) => boolean>;
}

/** Whatever answers dynamic metadata lookups (a RequestView, an RBAC request). */
export interface MetadataSource {
  dynamicMetadata?(filter: string, path: readonly string[]): unknown;
}

/**
 * Compiles an Envoy StringMatcher into a predicate. A bad regex throws an
 * Error whose message starts with `path` (the matcher's field path).
 */
export function compileStringMatcher(m: StringMatcher, path = 'string_match'): StringTest {
  const ic = m.ignore_case === true;
  if (m.exact !== undefined) {
    const v = ic ? m.exact.toLowerCase() : m.exact;
    return ic ? (s) => s.toLowerCase() === v : (s) => s === v;
  }
  if (m.prefix !== undefined) {
    const v = ic ? m.prefix.toLowerCase() : m.prefix;
    return ic ? (s) => s.toLowerCase().startsWith(v) : (s) => s.startsWith(v);
  }
  if (m.suffix !== undefined) {
    const v = ic ? m.suffix.toLowerCase() : m.suffix;
    return ic ? (s) => s.toLowerCase().endsWith(v) : (s) => s.endsWith(v);
  }
  if (m.contains !== undefined) {
    const v = ic ? m.contains.toLowerCase() : m.contains;
    return ic ? (s) => s.toLowerCase().includes(v) : (s) => s.includes(v);
  }
  // Envoy's safe_regex is a full match; ignore_case does not apply to it (use `(?i)`).
  if (m.safe_regex) return regexAt(m.safe_regex.regex, `${path}.safe_regex.regex`);
  return () => true;
}

/** Compiles an Envoy HeaderMatcher; `path` names it in errors. */
export function compileHeader(h: HeaderMatcher, path = 'headers'): CompiledHeaderMatch {
  const presence = h.present_match !== undefined || !h.string_match;
  return {
    name: h.name.toLowerCase(),
    test: presence ? undefined : compileStringMatcher(h.string_match!, `${path}.string_match`),
    present: h.present_match !== false,
    invert: h.invert_match === true,
    missingAsEmpty: h.treat_missing_header_as_empty === true,
  };
}

/**
 * One header matcher against a value, as Envoy's HeaderUtility: a presence match is
 * inverted like any other, but a value match on an absent header fails even when
 * inverted, unless treat_missing_header_as_empty tests it as ''.
 */
function headerMatches(h: CompiledHeaderMatch, value: string | undefined): boolean {
  if (h.test === undefined) return ((value !== undefined) === h.present) !== h.invert;
  if (value === undefined) {
    if (!h.missingAsEmpty) return false;
    value = '';
  }
  return h.test(value) !== h.invert;
}

function compileQuery(q: QueryParameterMatcher, path: string): { name: string; test: StringTest | undefined } {
  return { name: q.name, test: q.string_match ? compileStringMatcher(q.string_match, `${path}.string_match`) : undefined };
}

/** Compiles an RE2 full match, or throws `path: reason` (the form compileRoute reports). */
export function regexAt(pattern: string, path: string): RegexTest {
  try {
    return compileFullMatch(pattern);
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`);
  }
}

/**
 * Compiles an Envoy ValueMatcher over a metadata value (JSON as jwt_authn writes it): a missing
 * value matches nothing but present_match false; `path` names it in errors (`path: reason`).
 */
export function compileValueMatcher(v: ValueMatcher, path: string): (value: unknown) => boolean {
  if (v.string_match) {
    const test = compileStringMatcher(v.string_match, `${path}.string_match`);
    return (x) => typeof x === 'string' && test(x);
  }
  if (v.present_match !== undefined) {
    const want = v.present_match === true;
    return (x) => (x !== undefined && x !== null) === want;
  }
  if (v.bool_match !== undefined) return (x) => x === v.bool_match;
  if (v.list_match) {
    if (!v.list_match.one_of) throw new Error(`${path}.list_match: needs one_of`);
    const one = compileValueMatcher(v.list_match.one_of, `${path}.list_match.one_of`);
    return (x) => Array.isArray(x) && x.some(one);
  }
  if (v.or_match) {
    const list = (v.or_match.value_matchers ?? []).map((c, i) => compileValueMatcher(c, `${path}.or_match.value_matchers[${i}]`));
    if (list.length === 0) throw new Error(`${path}.or_match.value_matchers: must list matchers`);
    return (x) => list.some((t) => t(x));
  }
  throw new Error(`${path}: only string_match, present_match, bool_match, list_match and or_match metadata values are supported`);
}

/** Compiles an Envoy MetadataMatcher against a metadata lookup; throws `path: reason`. */
export function compileMetadataMatcher(m: MetadataMatcher, path: string): (source: MetadataSource) => boolean {
  if (typeof m?.filter !== 'string' || !Array.isArray(m.path)) throw new Error(`${path}: needs filter and path`);
  const keys = m.path.map((s) => s.key);
  const test = compileValueMatcher(m.value ?? {}, `${path}.value`);
  const invert = m.invert === true;
  return (source) => test(source.dynamicMetadata?.(m.filter, keys)) !== invert;
}

/** Compiles an Envoy RouteMatch; `path` names it in errors. */
export function compileMatch(m: RouteMatch, path = 'match'): CompiledMatch {
  const kind = m.path !== undefined ? 'path' : m.safe_regex ? 'regex' : m.path_separated_prefix !== undefined ? 'separated' : 'prefix';
  // Envoy: case_sensitive is "ignored for safe_regex matching" (route_components.proto).
  const caseSensitive = kind === 'regex' || m.case_sensitive?.value !== false;
  const raw = m.path ?? m.safe_regex?.regex ?? m.path_separated_prefix ?? m.prefix ?? '/';
  return {
    kind,
    value: caseSensitive ? raw : raw.toLowerCase(),
    regex: kind === 'regex' ? regexAt(raw, `${path}.safe_regex.regex`) : undefined,
    caseSensitive,
    headers: (m.headers ?? []).map((h, i) => compileHeader(h, `${path}.headers[${i}]`)),
    query: (m.query_parameters ?? []).map((q, i) => compileQuery(q, `${path}.query_parameters[${i}]`)),
    metadata: (m.dynamic_metadata ?? []).map((d, i) => compileMetadataMatcher(d, `${path}.dynamic_metadata[${i}]`)),
  };
}

/** Does the request satisfy the match? */
export function matches(m: CompiledMatch, req: RequestView): boolean {
  const path = m.caseSensitive ? req.path : req.path.toLowerCase();
  switch (m.kind) {
    case 'prefix':
      if (!path.startsWith(m.value)) return false;
      break;
    case 'separated':
      if (!path.startsWith(m.value) || (path.length > m.value.length && path.charCodeAt(m.value.length) !== 47 /* / */)) return false;
      break;
    case 'path':
      if (path !== m.value) return false;
      break;
    case 'regex':
      if (!m.regex!(req.path)) return false;
      break;
  }
  for (let i = 0; i < m.headers.length; i++) {
    const h = m.headers[i]!;
    if (!headerMatches(h, h.name === ':method' ? req.method : req.header(h.name))) return false;
  }
  for (let i = 0; i < m.query.length; i++) {
    const q = m.query[i]!;
    const value = queryParam(req.query, q.name);
    if (value === undefined || (q.test !== undefined && !q.test(value))) return false;
  }
  for (let i = 0; i < m.metadata.length; i++) if (!m.metadata[i]!(req)) return false;
  return true;
}

/**
 * The first value of `name` in a raw query string, not percent-decoded: Envoy's route
 * match parses the query with parseQueryString (no decoding); a bare `name` is ''.
 */
function queryParam(query: string, name: string): string | undefined {
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end === -1) end = query.length;
    const eq = query.indexOf('=', start);
    if (eq !== -1 && eq < end) {
      if (eq - start === name.length && query.startsWith(name, start)) return query.slice(eq + 1, end);
    } else if (end - start === name.length && query.startsWith(name, start)) return '';
    start = end + 1;
  }
  return undefined;
}

/** Do all header matchers accept the headers? (`:method` etc. read through `header` too.) */
export function headersMatch(list: readonly CompiledHeaderMatch[], header: (name: string) => string | undefined): boolean {
  for (let i = 0; i < list.length; i++) {
    const h = list[i]!;
    if (!headerMatches(h, header(h.name))) return false;
  }
  return true;
}
