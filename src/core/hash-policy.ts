/**
 * A route's `hash_policy` (Envoy RouteAction.HashPolicy), compiled, and the
 * request hash it yields for RING_HASH / MAGLEV clusters, as Envoy's
 * HashPolicyImpl::generateHash (source/common/http/hash_policy.cc): each policy
 * that produces a value is xxHash64'd and folded in (the running hash rotated
 * left by one, then XORed), and a `terminal` policy that produced a hash ends
 * the walk. Header values (optionally regex-rewritten), a cookie (generated
 * with Set-Cookie when absent and a ttl is given), the downstream source IP,
 * a query parameter; `filter_state` never yields a value (meshlet keeps no
 * filter state), as Envoy's does when the key is absent.
 */
import { compileRegexRewrite } from './regex.js';
import { uint64ToHex, xxHash64 } from './xxhash64.js';

const MASK = 0xffffffffffffffffn;

/** One compiled hash policy. */
export type HashPolicy =
  | { readonly kind: 'header'; readonly name: string; readonly rewrite: ((v: string) => string) | undefined; readonly terminal: boolean }
  | { readonly kind: 'cookie'; readonly name: string; readonly path: string; readonly ttlSeconds: number | undefined; readonly attributes: readonly (readonly [string, string])[]; readonly terminal: boolean }
  | { readonly kind: 'source_ip'; readonly terminal: boolean }
  | { readonly kind: 'query'; readonly name: string; readonly terminal: boolean }
  | { readonly kind: 'none'; readonly terminal: boolean };

/** What evaluating hash policies reads from the request. */
export interface HashInputs {
  /** A request header (lower-case name); `:path` carries the query. */
  requestHeader(name: string): string | undefined;
  /** The downstream peer's address (an IP), when there is one. */
  downstreamAddress(): string | undefined;
  /** A fresh value for a generated cookie (Envoy hashes the downstream connection's addresses). */
  newCookieValue(): string;
}

/** The request hash and the Set-Cookie headers generating it added, if any. */
export interface RequestHash {
  readonly hash: bigint | undefined;
  readonly setCookies: readonly string[] | undefined;
}

type Raw = Record<string, unknown>;

/** Compiles `route.hash_policy`. Throws Error naming `path` on unusable input (an xDS NACK). */
export function compileHashPolicies(raw: ReadonlyArray<Raw> | undefined, path: string): readonly HashPolicy[] {
  if (!raw || raw.length === 0) return [];
  return raw.map((p, i) => compileOne(p, `${path}[${i}]`));
}

function compileOne(p: Raw, path: string): HashPolicy {
  const terminal = p.terminal === true;
  const header = p.header as Raw | undefined;
  if (header) {
    const name = String(header.header_name ?? '').toLowerCase();
    if (name === '') throw new Error(`${path}.header.header_name: must not be empty`);
    const rr = header.regex_rewrite as { pattern?: { regex?: string }; substitution?: string } | undefined;
    let rewrite: ((v: string) => string) | undefined;
    if (rr) {
      try {
        rewrite = compileRegexRewrite(String(rr.pattern?.regex ?? ''), String(rr.substitution ?? ''));
      } catch (err) {
        throw new Error(`${path}.header.regex_rewrite: ${(err as Error).message}`);
      }
    }
    return { kind: 'header', name, rewrite, terminal };
  }
  const cookie = p.cookie as Raw | undefined;
  if (cookie) {
    const name = String(cookie.name ?? '');
    if (name === '') throw new Error(`${path}.cookie.name: must not be empty`);
    const ttl = cookie.ttl as { seconds?: number | string } | undefined;
    const attributes = ((cookie.attributes ?? []) as Raw[]).map((a) => [String(a.name ?? ''), String(a.value ?? '')] as const);
    // Envoy takes whole seconds of the ttl (std::chrono::seconds(ttl.seconds())).
    return { kind: 'cookie', name, path: String(cookie.path ?? ''), ttlSeconds: ttl ? Number(ttl.seconds ?? 0) : undefined, attributes, terminal };
  }
  const conn = p.connection_properties as Raw | undefined;
  if (conn) return conn.source_ip === true ? { kind: 'source_ip', terminal } : { kind: 'none', terminal };
  const query = p.query_parameter as Raw | undefined;
  if (query) {
    const name = String(query.name ?? '');
    if (name === '') throw new Error(`${path}.query_parameter.name: must not be empty`);
    return { kind: 'query', name, terminal };
  }
  if (p.filter_state) return { kind: 'none', terminal };
  throw new Error(`${path}: no policy (header, cookie, connection_properties, query_parameter or filter_state)`);
}

/** The request's hash under `policies` (Envoy's generateHash); undefined when no policy yields one. */
export function requestHash(policies: readonly HashPolicy[], req: HashInputs): RequestHash {
  let hash: bigint | undefined;
  let setCookies: string[] | undefined;
  for (const p of policies) {
    let value: bigint | undefined;
    switch (p.kind) {
      case 'header': {
        const v = req.requestHeader(p.name);
        if (v !== undefined) value = xxHash64(p.rewrite ? p.rewrite(v) : v);
        break;
      }
      case 'cookie': {
        let v = cookieValue(req.requestHeader('cookie'), p.name);
        if (v === '' && p.ttlSeconds !== undefined) {
          v = req.newCookieValue();
          (setCookies ??= []).push(setCookieValue(p.name, v, p.path, p.ttlSeconds, p.attributes));
        }
        if (v !== '') value = xxHash64(v);
        break;
      }
      case 'source_ip': {
        const ip = req.downstreamAddress();
        if (ip) value = xxHash64(ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip);
        break;
      }
      case 'query': {
        const v = queryValue(req.requestHeader(':path'), p.name);
        if (v !== undefined) value = xxHash64(v);
        break;
      }
      default:
        break;
    }
    if (value !== undefined) {
      // Rotating the old value keeps two equal policies from cancelling each other out (Envoy).
      const old = hash === undefined ? 0n : ((hash << 1n) | (hash >> 63n)) & MASK;
      hash = old ^ value;
    }
    if (p.terminal && hash !== undefined) break;
  }
  return { hash, setCookies };
}

/** Envoy's Utility::parseCookieValue: the first `name=value` pair of the Cookie header, quotes stripped; '' when absent. */
export function cookieValue(header: string | undefined, name: string): string {
  if (!header) return '';
  for (const part of header.split(';')) {
    const item = part.trimStart();
    const eq = item.indexOf('=');
    if (eq === -1 || item.slice(0, eq) !== name) continue;
    let v = item.slice(eq + 1);
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    return v;
  }
  return '';
}

/** Envoy's Utility::makeSetCookieValue with httponly. */
export function setCookieValue(name: string, value: string, path: string, maxAgeSeconds: number, attributes: readonly (readonly [string, string])[]): string {
  let out = `${name}="${value}"`;
  if (maxAgeSeconds !== 0) out += `; Max-Age=${maxAgeSeconds}`;
  if (path !== '') out += `; Path=${path}`;
  for (const [k, v] of attributes) out += v === '' ? `; ${k}` : `; ${k}=${v}`;
  return `${out}; HttpOnly`;
}

/** The first value of a query parameter in a `:path` (raw, not decoded, as Envoy's parseQueryString). */
function queryValue(path: string | undefined, name: string): string | undefined {
  if (!path) return undefined;
  const q = path.indexOf('?');
  if (q === -1) return undefined;
  const end = path.indexOf('#', q);
  for (const pair of path.slice(q + 1, end === -1 ? undefined : end).split('&')) {
    const eq = pair.indexOf('=');
    if ((eq === -1 ? pair : pair.slice(0, eq)) === name) return eq === -1 ? '' : pair.slice(eq + 1);
  }
  return undefined;
}

/** A generated cookie's value: 16 hex digits, as Envoy's (Hex::uint64ToHex of a hash). */
export function cookieValueFrom(seed: string): string {
  return uint64ToHex(xxHash64(seed));
}
