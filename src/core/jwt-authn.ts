/**
 * Envoy's JWT authentication HTTP filter
 * (`envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication`, filter
 * `envoy.filters.http.jwt_authn`) compiled for the inbound chain: what
 * istiod writes for RequestAuthentication (pilot/pkg/security/authn/
 * policy_applier.go) and what meshlet's translator writes from the same
 * resource (security/jwt-policy.ts).
 *
 * Per request: the first rule whose match fits the path gives the
 * requirement (provider_name, requires_any, requires_all, allow_missing,
 * allow_missing_or_failed); each provider extracts its tokens (from_headers
 * with value_prefix, from_params, from_cookies; default `Authorization:
 * Bearer` and `access_token`) and verifies them (core/jwt-verify). A failure
 * is Envoy's local reply: 401 (403 for a disallowed audience) with the
 * jwt_verify_lib status as body and `www-authenticate: Bearer realm="<uri>",
 * error="invalid_token"`. On success the payload goes to dynamic metadata
 * (`envoy.filters.http.jwt_authn` / payload_in_metadata) where RBAC's
 * metadata matchers read it; the token header is removed unless `forward`,
 * and forward_payload_header / claim_to_headers are set.
 *
 * Keys: `local_jwks.inline_string` is imported at compile time;
 * `remote_jwks` asks the mesh's {@link JwksSource} (which fetches and caches
 * off the request path). Protocol-neutral: no http, undici or grpc here.
 */
import type { Any } from '../config/envoy.js';
import { MeshConfigError } from '../errors.js';
import { type ProtoDuration, parseDuration, protoToMs } from './duration.js';
import type { InboundFilter, InboundFilterContext, InboundLocalReply, InboundRequestView } from './inbound-policy.js';
import { DEFAULT_CLOCK_SKEW_S, JwtStatus, type JwtKey, type JwtStatusText, compileAudiences, importJwks } from './jwt-verify.js';
import { Attempt, type Location, type Provider, type Requirement, type Verified } from './jwt-attempt.js';

/** The filter's type URL. */
export const JWT_AUTHN_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';
/** istiod's filter name, also the dynamic metadata namespace the payload is written under. */
export const JWT_AUTHN_FILTER = 'envoy.filters.http.jwt_authn';
/** istiod's payload_in_metadata key (pilot/pkg/xds/filters: EnvoyJwtFilterPayload). */
export const JWT_PAYLOAD_KEY = 'payload';
/** meshlet's response flag for a JWT local reply (Envoy sets none; details carry the status). */
export const JWT_FLAG = 'JWT';

/** Envoy `JwtProvider` (the fields meshlet reads; any other is refused). */
export interface JwtProviderConfig {
  issuer?: string;
  audiences?: string[];
  local_jwks?: { inline_string?: string };
  remote_jwks?: { http_uri?: { uri?: string; cluster?: string; timeout?: ProtoDuration | string }; cache_duration?: ProtoDuration | string; async_fetch?: unknown; retry_policy?: unknown };
  forward?: boolean;
  forward_payload_header?: string;
  payload_in_metadata?: string;
  normalize_payload_in_metadata?: { space_delimited_claims?: string[] };
  claim_to_headers?: Array<{ header_name?: string; claim_name?: string }>;
  from_headers?: Array<{ name?: string; value_prefix?: string }>;
  from_params?: string[];
  from_cookies?: string[];
  clock_skew_seconds?: number;
  clear_route_cache?: boolean;
}

/** Envoy `JwtRequirement`. */
export interface JwtRequirement {
  provider_name?: string;
  requires_any?: { requirements?: JwtRequirement[] };
  requires_all?: { requirements?: JwtRequirement[] };
  allow_missing?: Record<string, never>;
  allow_missing_or_failed?: Record<string, never>;
}

/** Envoy `JwtAuthentication`. */
export interface JwtAuthenticationConfig {
  providers?: Record<string, JwtProviderConfig>;
  rules?: Array<{ match?: { prefix?: string; path?: string }; requires?: JwtRequirement }>;
  bypass_cors_preflight?: boolean;
}

/** Where remote keys come from: the mesh's JWKS cache (security/jwks.ts). */
export interface JwksSource {
  /** The keys at `uri` now; `pending` before the first load ends, `failed` when it failed. Starts loading when unknown. */
  keys(uri: string, options: RemoteJwksOptions): readonly JwtKey[] | 'pending' | 'failed';
  /** A token named a kid the cached keys lack: refetch soon (bounded by the source). */
  unknownKid(uri: string): void;
}

/** A remote JWKS as a provider names it. */
export interface RemoteJwksOptions {
  readonly timeoutMs: number;
  readonly cacheMs: number;
}

const PROVIDER_FIELDS = new Set(['issuer', 'audiences', 'local_jwks', 'remote_jwks', 'forward', 'forward_payload_header', 'payload_in_metadata',
  'normalize_payload_in_metadata', 'claim_to_headers', 'from_headers', 'from_params', 'from_cookies', 'clock_skew_seconds', 'clear_route_cache']);
const DEFAULT_TIMEOUT_MS = 1000; // Envoy's http_uri has no default; istiod writes 5 s
const DEFAULT_CACHE_MS = 5 * 60_000; // Envoy's default cache_duration


function durationMs(value: ProtoDuration | string | undefined, fallback: number, fail: (reason: string) => never): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'string') {
    const ms = parseDuration(value);
    return typeof ms === 'number' ? ms : fail(ms);
  }
  return protoToMs(value) ?? fallback;
}

class JwtCompiler {
  readonly providers = new Map<string, Provider>();
  constructor(private readonly resource: string) {}

  fail(path: string, reason: string): never {
    throw new MeshConfigError('Listener', this.resource, path, reason);
  }

  strings(value: unknown, path: string): string[] {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) this.fail(path, 'must be a list of strings');
    return value as string[];
  }

  provider(name: string, p: JwtProviderConfig, path: string): Provider {
    if (typeof p !== 'object' || p === null) this.fail(path, 'must be a JwtProvider');
    for (const key of Object.keys(p)) if (!PROVIDER_FIELDS.has(key)) this.fail(`${path}.${key}`, 'is not supported by meshlet\'s jwt_authn');
    let keys: JwtKey[] | undefined;
    let remote: Provider['remote'];
    if (p.local_jwks !== undefined) {
      if (typeof p.local_jwks.inline_string !== 'string') this.fail(`${path}.local_jwks`, 'only inline_string is supported');
      const imported = importJwks(p.local_jwks.inline_string);
      if (typeof imported === 'string') this.fail(`${path}.local_jwks.inline_string`, imported);
      keys = imported;
    } else if (p.remote_jwks !== undefined) {
      const uri = p.remote_jwks.http_uri?.uri;
      if (typeof uri !== 'string' || !/^https?:\/\//.test(uri)) this.fail(`${path}.remote_jwks.http_uri.uri`, 'must be an http(s) URL');
      const timeoutMs = durationMs(p.remote_jwks.http_uri?.timeout, DEFAULT_TIMEOUT_MS, (r) => this.fail(`${path}.remote_jwks.http_uri.timeout`, r));
      const cacheMs = durationMs(p.remote_jwks.cache_duration, DEFAULT_CACHE_MS, (r) => this.fail(`${path}.remote_jwks.cache_duration`, r));
      remote = { uri, options: { timeoutMs, cacheMs } };
    } else {
      this.fail(path, 'needs local_jwks or remote_jwks');
    }
    const locations: Location[] = [];
    (p.from_headers ?? []).forEach((h, i) => {
      if (typeof h?.name !== 'string' || h.name.length === 0) this.fail(`${path}.from_headers[${i}].name`, 'must be a header name');
      locations.push({ kind: 'header', name: h.name.toLowerCase(), prefix: h.value_prefix ?? '' });
    });
    for (const q of this.strings(p.from_params, `${path}.from_params`)) locations.push({ kind: 'param', name: q, prefix: '' });
    for (const c of this.strings(p.from_cookies, `${path}.from_cookies`)) locations.push({ kind: 'cookie', name: c, prefix: '' });
    // Envoy's default locations: the Bearer scheme of Authorization, then the access_token parameter.
    if (locations.length === 0) locations.push({ kind: 'header', name: 'authorization', prefix: 'Bearer ' }, { kind: 'param', name: 'access_token', prefix: '' });
    const claimHeaders = (p.claim_to_headers ?? []).map((c, i): readonly [string, string] => {
      if (typeof c?.header_name !== 'string' || !c.header_name || typeof c.claim_name !== 'string' || !c.claim_name) this.fail(`${path}.claim_to_headers[${i}]`, 'needs header_name and claim_name');
      return [c.header_name.toLowerCase(), c.claim_name];
    });
    return {
      name, issuer: p.issuer || undefined, audiences: compileAudiences(this.strings(p.audiences, `${path}.audiences`)), keys, remote,
      forward: p.forward === true, payloadHeader: p.forward_payload_header ? p.forward_payload_header.toLowerCase() : undefined,
      payloadKey: p.payload_in_metadata || undefined,
      spaceDelimited: this.strings(p.normalize_payload_in_metadata?.space_delimited_claims, `${path}.normalize_payload_in_metadata.space_delimited_claims`),
      claimHeaders, locations, skewS: typeof p.clock_skew_seconds === 'number' ? p.clock_skew_seconds : DEFAULT_CLOCK_SKEW_S,
    };
  }

  requirement(r: JwtRequirement | undefined, path: string): Requirement {
    if (r === undefined || r === null || typeof r !== 'object') this.fail(path, 'must be a JwtRequirement');
    if (typeof r.provider_name === 'string') {
      const provider = this.providers.get(r.provider_name);
      if (provider === undefined) this.fail(`${path}.provider_name`, `names no provider ("${r.provider_name}")`);
      return { type: 'provider', provider };
    }
    for (const type of ['requires_any', 'requires_all'] as const) {
      const list = r[type]?.requirements;
      if (r[type] === undefined) continue;
      if (!Array.isArray(list) || list.length === 0) this.fail(`${path}.${type}.requirements`, 'must list requirements');
      return { type: type === 'requires_any' ? 'any' : 'all', children: list.map((c, i) => this.requirement(c, `${path}.${type}.requirements[${i}]`)) };
    }
    if (r.allow_missing !== undefined) return { type: 'allow_missing' };
    if (r.allow_missing_or_failed !== undefined) return { type: 'allow_missing_or_failed' };
    return this.fail(path, `requirement ${Object.keys(r).join(', ') || '(empty)'} is not supported`);
  }
}

/** The compiled jwt_authn filter of one inbound chain. */
export class JwtAuthnFilter implements InboundFilter {
  /** Runs wherever authorization runs (gRPC, the gateway): RBAC reads what it writes. */
  readonly authorization = true;
  readonly providers: readonly Provider[];

  constructor(
    readonly name: string,
    providers: ReadonlyMap<string, Provider>,
    private readonly rules: ReadonlyArray<{ readonly prefix: string | undefined; readonly path: string | undefined; readonly requires: Requirement | undefined }>,
    private readonly bypassCorsPreflight: boolean,
    readonly jwks: JwksSource | undefined,
    readonly now: () => number,
  ) {
    this.providers = [...providers.values()];
    this.sanitize = [...new Set(this.providers.flatMap((p) => [...(p.payloadHeader ? [p.payloadHeader] : []), ...p.claimHeaders.map(([h]) => h)]))];
  }

  /** Headers only a verified token may set (Envoy's extractor headers_to_sanitize_): a client's own are removed. */
  private readonly sanitize: readonly string[];

  decodeHeaders(view: InboundRequestView): InboundLocalReply | undefined {
    if (this.bypassCorsPreflight && view.method === 'OPTIONS' && view.header('origin') !== undefined && view.header('access-control-request-method') !== undefined) return undefined;
    const path = view.path;
    const rule = this.rules.find((r) => (r.path !== undefined ? r.path === path : path.startsWith(r.prefix ?? '/')));
    if (rule === undefined || rule.requires === undefined) return undefined;
    for (const h of this.sanitize) if (view.header(h) !== undefined) view.removeRequestHeader?.(h);
    const attempt = new Attempt(view, this);
    const status = attempt.evaluate(rule.requires);
    if (status !== 'ok') return jwtDeniedReply(status, view);
    for (const v of attempt.verified) apply(v, view);
    return undefined;
  }
}

/** Writes a verified token's results: metadata, payload and claim headers, the token removed unless forwarded. */
function apply(v: Verified, view: InboundRequestView): void {
  const p = v.provider;
  if (p.payloadKey !== undefined) {
    const payload: Record<string, unknown> = { ...v.jwt.payload };
    // Envoy's normalize_payload_in_metadata: `scope: "a b"` is matched as the list [a, b].
    for (const claim of p.spaceDelimited) {
      const value = payload[claim];
      if (typeof value === 'string') payload[claim] = value.split(' ').filter((s) => s.length > 0);
    }
    view.setMetadata?.(JWT_AUTHN_FILTER, { ...view.metadata?.(JWT_AUTHN_FILTER), [p.payloadKey]: payload });
  }
  if (!p.forward && v.location.kind === 'header') view.removeRequestHeader?.(v.location.name);
  if (p.payloadHeader !== undefined) view.setRequestHeader(p.payloadHeader, v.jwt.payloadSegment);
  for (const [header, claim] of p.claimHeaders) {
    const value = v.jwt.payload[claim];
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') view.setRequestHeader(header, String(value));
  }
}

/** Envoy's local reply for a failed verification (filter.cc onComplete). */
export function jwtDeniedReply(status: JwtStatusText, view: InboundRequestView): InboundLocalReply {
  const host = view.header(':authority') ?? view.header('host') ?? '';
  const scheme = view.header(':scheme') ?? 'http';
  const uri = `${scheme}://${host}${view.path}`.slice(0, 256);
  const challenge = `Bearer realm="${uri}"${status === JwtStatus.Missing ? '' : ', error="invalid_token"'}`;
  return {
    status: status === JwtStatus.AudienceNotAllowed ? 403 : 401,
    flags: JWT_FLAG,
    details: `jwt_authn_access_denied{${status.replace(/\s/g, '_')}}`,
    body: status,
    headers: [['www-authenticate', challenge]],
    source: JWT_AUTHN_FILTER,
  };
}

/**
 * Compiles a JwtAuthentication config.
 * @throws MeshConfigError naming the listener filter and the bad field.
 */
export function compileJwtAuthn(config: Any | undefined, resource: string, name: string, options: { jwks?: JwksSource; now?: () => number } = {}): JwtAuthnFilter | undefined {
  const c = new JwtCompiler(resource);
  const cfg = (config ?? {}) as JwtAuthenticationConfig;
  for (const key of Object.keys(cfg)) {
    if (key !== '@type' && key !== 'providers' && key !== 'rules' && key !== 'bypass_cors_preflight') c.fail(`typed_config.${key}`, 'is not supported by meshlet\'s jwt_authn');
  }
  for (const [pname, p] of Object.entries(cfg.providers ?? {})) c.providers.set(pname, c.provider(pname, p, `typed_config.providers['${pname}']`));
  const rules = (cfg.rules ?? []).map((r, i) => {
    const m = r?.match ?? {};
    for (const key of Object.keys(m)) if (key !== 'prefix' && key !== 'path') c.fail(`typed_config.rules[${i}].match.${key}`, 'only prefix and path matches are supported');
    return { prefix: m.prefix, path: m.path, requires: r.requires === undefined ? undefined : c.requirement(r.requires, `typed_config.rules[${i}].requires`) };
  });
  if (rules.length === 0) return undefined;
  return new JwtAuthnFilter(name, c.providers, rules, cfg.bypass_cors_preflight === true, options.jwks, options.now ?? Date.now);
}

/** The built-in factory for jwt_authn filters (registered by type URL in core/inbound-policy). */
export function jwtAuthnFilterFactory(context: InboundFilterContext): InboundFilter | undefined {
  return compileJwtAuthn(context.config, context.resource, context.name, { ...(context.jwks !== undefined && { jwks: context.jwks }), now: context.now });
}

/** Every remote JWKS the jwt_authn filters of some listeners name (the mesh prefetches them). */
export function remoteJwksOf(listeners: readonly unknown[]): Array<{ uri: string; options: RemoteJwksOptions }> {
  const out = new Map<string, { uri: string; options: RemoteJwksOptions }>();
  const visit = (value: unknown): void => {
    if (typeof value !== 'object' || value === null) return;
    if (Array.isArray(value)) { value.forEach(visit); return; }
    const v = value as Record<string, unknown>;
    if (v['@type'] === JWT_AUTHN_TYPE_URL) {
      for (const p of Object.values((v as JwtAuthenticationConfig).providers ?? {})) {
        const uri = p?.remote_jwks?.http_uri?.uri;
        if (typeof uri !== 'string' || out.has(uri)) continue;
        const never = (): never => { throw new Error('bad duration'); };
        try {
          out.set(uri, { uri, options: { timeoutMs: durationMs(p.remote_jwks!.http_uri!.timeout, DEFAULT_TIMEOUT_MS, never), cacheMs: durationMs(p.remote_jwks!.cache_duration, DEFAULT_CACHE_MS, never) } });
        } catch {
          // validation reports it
        }
      }
      return;
    }
    for (const k in v) visit(v[k]);
  };
  visit(listeners);
  return [...out.values()];
}
