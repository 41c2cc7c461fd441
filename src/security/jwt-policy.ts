/**
 * RequestAuthentication (security.istio.io/v1) → Envoy's jwt_authn HTTP
 * filter, as istiod builds it (pilot/pkg/security/authn/policy_applier.go,
 * convertToEnvoyJwtConfig, istio/istio 86c9f01f): every jwtRule of every
 * policy selecting the workload (its namespace or the root namespace) is one
 * provider `origins-<i>`, rules sorted by issuer; one rule on prefix `/`
 * whose requirement lets a request without a token through ("allow
 * missing") and fails one whose token does not verify. The verified payload
 * lands in dynamic metadata (`envoy.filters.http.jwt_authn` / `payload`),
 * where AuthorizationPolicy's requestPrincipals and request.auth.* conditions
 * (config/translate-rbac.ts) match it.
 *
 * `jwks` is inlined (local_jwks); `jwksUri` becomes remote_jwks, fetched and
 * cached by the mesh (security/jwks.ts); with neither, the issuer's OpenID
 * discovery document names the JWKS (as istiod's resolver does).
 * Validation follows pkg/config/validation (validateJwtRule) and names the
 * field: a rule istiod would reject is a MeshConfigError here.
 */
import { MeshConfigError } from '../errors.js';
import { parseDuration, msToProto } from '../core/duration.js';
import { JWT_AUTHN_FILTER, JWT_AUTHN_TYPE_URL, JWT_PAYLOAD_KEY, type JwtAuthenticationConfig, type JwtProviderConfig, type JwtRequirement } from '../core/jwt-authn.js';
import { importJwks } from '../core/jwt-verify.js';

const KIND = 'RequestAuthentication';
/** istiod's default JWKS fetch timeout (policy_applier.go) and Envoy cache duration it writes. */
const DEFAULT_TIMEOUT_MS = 5000;
const CACHE_DURATION_MS = 5 * 60_000;
/** Envoy's normalize_payload_in_metadata defaults that istiod always adds (buildSpaceDelimitedClaims). */
const DEFAULT_SPACE_DELIMITED = ['permission', 'scope'];
const RULE_FIELDS = new Set(['issuer', 'audiences', 'jwksUri', 'jwks', 'fromHeaders', 'fromParams', 'fromCookies', 'forwardOriginalToken',
  'outputPayloadToHeader', 'outputClaimToHeaders', 'timeout', 'spaceDelimitedClaims', 'presence']);
/** The key set of an issuer whose keys cannot be found: no token verifies against it. */
const NO_KEYS = '{"keys":[]}';

function remoteJwks(uri: string, cluster: string, timeoutMs: number): NonNullable<JwtProviderConfig['remote_jwks']> {
  return { http_uri: { uri, cluster, timeout: msToProto(timeoutMs) }, cache_duration: msToProto(CACHE_DURATION_MS) };
}

/** Istio's ValidateStrictHTTPHeaderName. */
const HEADER_NAME = /^[a-zA-Z0-9!#$%&'*+.^_`|~-]+$/;

/** A RequestAuthentication as written in YAML (the fields read here). */
export interface RequestAuthenticationInput {
  kind?: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
}

interface JwtRuleInput {
  issuer?: string; audiences?: string[]; jwksUri?: string; jwks?: string;
  fromHeaders?: Array<{ name?: string; prefix?: string }>; fromParams?: string[]; fromCookies?: string[];
  forwardOriginalToken?: boolean; outputPayloadToHeader?: string; outputClaimToHeaders?: Array<{ header?: string; claim?: string }>;
  timeout?: string; spaceDelimitedClaims?: string[]; presence?: string;
}

/** One validated policy. */
export interface TranslatedRequestAuthentication {
  readonly namespace: string;
  readonly name: string;
  readonly matchLabels: Readonly<Record<string, string>> | undefined;
  /** Providers in rule order, not yet named. */
  readonly providers: readonly JwtProviderConfig[];
  /** Per provider: `presence: REQUIRED` (a request without this token fails). */
  readonly required: readonly boolean[];
}

/** The host and port of a JWKS URI (Istio's ParseJwksURI), for the cluster name istiod writes. */
function jwksCluster(uri: string): string | undefined {
  try {
    const u = new URL(uri);
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.hostname === '') return undefined;
    const port = u.port !== '' ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
    return `outbound|${port}||${u.hostname}`;
  } catch {
    return undefined;
  }
}

class RuleTranslator {
  constructor(readonly resource: string) {}

  fail(path: string, reason: string): never {
    throw new MeshConfigError(KIND, this.resource, path, reason);
  }

  strings(value: unknown, path: string, what: string): string[] {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) this.fail(path, 'must be a list');
    value.forEach((v, i) => { if (typeof v !== 'string' || v.length === 0) this.fail(`${path}[${i}]`, `${what} must be a non-empty string`); });
    return value as string[];
  }

  rule(raw: unknown, path: string): JwtProviderConfig {
    if (typeof raw !== 'object' || raw === null) this.fail(path, 'must be an object');
    for (const key of Object.keys(raw)) if (!RULE_FIELDS.has(key)) this.fail(`${path}.${key}`, 'unknown field');
    const r = raw as JwtRuleInput;
    const issuer = r.issuer ?? '';
    if (typeof issuer !== 'string') this.fail(`${path}.issuer`, 'must be a string');
    const audiences = this.strings(r.audiences, `${path}.audiences`, 'audience');
    if (issuer === '' && !r.jwksUri) this.fail(`${path}.issuer`, 'issuer or jwksUri must be non-empty string');
    const timeoutMs = r.timeout === undefined ? DEFAULT_TIMEOUT_MS : parseDuration(r.timeout);
    if (typeof timeoutMs === 'string') this.fail(`${path}.timeout`, timeoutMs);
    if (timeoutMs <= 0) this.fail(`${path}.timeout`, 'must be positive');
    const p: JwtProviderConfig = { issuer, ...(audiences.length > 0 && { audiences }) };
    const fromHeaders = (r.fromHeaders ?? []) as unknown[];
    if (!Array.isArray(fromHeaders)) this.fail(`${path}.fromHeaders`, 'must be a list');
    if (fromHeaders.length > 0) {
      p.from_headers = fromHeaders.map((h, i) => {
        const loc = h as { name?: unknown; prefix?: unknown } | null;
        if (typeof loc?.name !== 'string' || loc.name.length === 0) this.fail(`${path}.fromHeaders[${i}].name`, 'location header name must be non-empty string');
        if (loc.prefix !== undefined && typeof loc.prefix !== 'string') this.fail(`${path}.fromHeaders[${i}].prefix`, 'must be a string');
        return { name: loc.name, ...(typeof loc.prefix === 'string' && loc.prefix !== '' && { value_prefix: loc.prefix }) };
      });
    }
    const params = this.strings(r.fromParams, `${path}.fromParams`, 'location query');
    if (params.length > 0) p.from_params = params;
    const cookies = this.strings(r.fromCookies, `${path}.fromCookies`, 'cookie name');
    if (cookies.length > 0) p.from_cookies = cookies;
    if (r.forwardOriginalToken !== undefined && typeof r.forwardOriginalToken !== 'boolean') this.fail(`${path}.forwardOriginalToken`, 'must be a boolean');
    if (r.forwardOriginalToken === true) p.forward = true;
    if (r.outputPayloadToHeader !== undefined && r.outputPayloadToHeader !== '') {
      if (typeof r.outputPayloadToHeader !== 'string' || !HEADER_NAME.test(r.outputPayloadToHeader)) this.fail(`${path}.outputPayloadToHeader`, 'must be an HTTP header name');
      p.forward_payload_header = r.outputPayloadToHeader;
    }
    const claims = (r.outputClaimToHeaders ?? []) as unknown[];
    if (!Array.isArray(claims)) this.fail(`${path}.outputClaimToHeaders`, 'must be a list');
    if (claims.length > 0) {
      p.claim_to_headers = claims.map((c, i) => {
        const ch = c as { header?: unknown; claim?: unknown } | null;
        if (typeof ch?.header !== 'string' || ch.header === '' || typeof ch.claim !== 'string' || ch.claim === '') this.fail(`${path}.outputClaimToHeaders[${i}]`, 'outputClaimToHeaders header and claim value must be non-empty string');
        if (!HEADER_NAME.test(ch.header)) this.fail(`${path}.outputClaimToHeaders[${i}].header`, `"${ch.header}" is not a valid HTTP header name`);
        return { header_name: ch.header, claim_name: ch.claim };
      });
    }
    const spaceDelimited = this.strings(r.spaceDelimitedClaims, `${path}.spaceDelimitedClaims`, 'claim');
    // Last, as validateJwtRule reports the other fields first.
    if (r.jwks !== undefined && r.jwks !== '') {
      if (typeof r.jwks !== 'string') this.fail(`${path}.jwks`, 'must be a JWKS document (a string)');
      const keys = importJwks(r.jwks);
      if (typeof keys === 'string') this.fail(`${path}.jwks`, `jwks parse error: ${keys}`);
      p.local_jwks = { inline_string: r.jwks };
    } else if (r.jwksUri) {
      const cluster = typeof r.jwksUri === 'string' ? jwksCluster(r.jwksUri) : undefined;
      if (cluster === undefined) this.fail(`${path}.jwksUri`, `"${String(r.jwksUri)}" is not an http(s) URL with a host`);
      p.remote_jwks = remoteJwks(r.jwksUri, cluster, timeoutMs);
    } else {
      // istiod's resolver: the issuer's OpenID discovery document names the keys. An issuer that is no
      // URL (`example.com`) cannot be resolved: istiod inlines a key nobody can sign with, so every token fails.
      const uri = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      const cluster = jwksCluster(uri);
      if (cluster === undefined) p.local_jwks = { inline_string: NO_KEYS };
      else p.remote_jwks = remoteJwks(uri, cluster, timeoutMs);
    }
    p.payload_in_metadata = JWT_PAYLOAD_KEY;
    p.normalize_payload_in_metadata = { space_delimited_claims: [...new Set([...spaceDelimited, ...DEFAULT_SPACE_DELIMITED])].sort() };
    return p;
  }
}

/**
 * Validates one RequestAuthentication and translates its rules.
 * @throws MeshConfigError naming the policy and the bad field.
 */
export function translateRequestAuthentication(resource: RequestAuthenticationInput, options: { defaultNamespace?: string } = {}): TranslatedRequestAuthentication {
  const name = resource?.metadata?.name;
  const namespace = resource?.metadata?.namespace ?? options.defaultNamespace ?? 'default';
  const t = new RuleTranslator(`${namespace}/${String(name)}`);
  if (typeof name !== 'string' || name.length === 0) t.fail('metadata.name', 'must be a non-empty string');
  const spec = (resource.spec ?? {}) as Record<string, unknown>;
  if (spec.targetRef !== undefined || spec.targetRefs !== undefined) t.fail(spec.targetRef !== undefined ? 'spec.targetRef' : 'spec.targetRefs', 'targetRef(s) are not supported; use selector');
  let matchLabels: Record<string, string> | undefined;
  if (spec.selector !== undefined) {
    const ml = (spec.selector as { matchLabels?: unknown } | null)?.matchLabels;
    if (ml !== undefined && (typeof ml !== 'object' || ml === null)) t.fail('spec.selector.matchLabels', 'must be a map of labels');
    matchLabels = ml && Object.keys(ml).length > 0 ? { ...(ml as Record<string, string>) } : undefined;
  }
  const rules: unknown = spec.jwtRules ?? [];
  if (!Array.isArray(rules)) t.fail('spec.jwtRules', 'must be a list');
  const list = rules as unknown[];
  const required = list.map((r, i) => {
    const presence = (r as { presence?: unknown } | null)?.presence;
    if (presence !== undefined && presence !== 'REQUIRED' && presence !== 'OPTIONAL') t.fail(`spec.jwtRules[${i}].presence`, `"${String(presence)}" is not OPTIONAL or REQUIRED`);
    return presence === 'REQUIRED';
  });
  return { namespace, name, matchLabels, providers: list.map((r, i) => t.rule(r, `spec.jwtRules[${i}]`)), required };
}

function selects(p: TranslatedRequestAuthentication, workload: { namespace: string; labels?: Readonly<Record<string, string>> }, rootNamespace: string): boolean {
  if (p.namespace !== workload.namespace && p.namespace !== rootNamespace) return false;
  if (p.matchLabels === undefined) return true;
  const labels = workload.labels ?? {};
  for (const k in p.matchLabels) if (labels[k] !== p.matchLabels[k]) return false;
  return true;
}

/**
 * istiod's requirement: one provider → any(provider, allow_missing); several → any(each, all(any(each,
 * allow_missing)…)). A rule with `presence: REQUIRED` drops its allow_missing, so a request without
 * that token fails (istiod at 86c9f01f does not write presence yet; meshlet applies the API's meaning).
 */
function requirement(names: readonly string[], required: readonly boolean[]): JwtRequirement {
  const allowMissing = (n: string, i: number): JwtRequirement => (required[i] ? { provider_name: n } : { requires_any: { requirements: [{ provider_name: n }, { allow_missing: {} }] } });
  if (names.length === 1) return allowMissing(names[0]!, 0);
  if (required.some(Boolean)) return { requires_all: { requirements: names.map(allowMissing) } };
  return { requires_any: { requirements: [...names.map((n) => ({ provider_name: n })), { requires_all: { requirements: names.map(allowMissing) } }] } };
}

/**
 * The jwt_authn filter for the RequestAuthentications among `resources`
 * that select the workload; undefined when none has a rule.
 * @throws MeshConfigError for an invalid policy.
 */
export function translateJwtAuthn(resources: readonly RequestAuthenticationInput[], workload: { namespace: string; labels?: Readonly<Record<string, string>> }, rootNamespace = 'istio-system'):
  { name: string; typed_config: JwtAuthenticationConfig & { '@type': string } } | undefined {
  const selected = resources.filter((r) => r?.kind === KIND).map((r) => translateRequestAuthentication(r)).filter((p) => selects(p, workload, rootNamespace));
  // istiod sorts the rules by issuer (stable) before naming them origins-<i>.
  const all = selected.flatMap((p) => p.providers.map((provider, j) => ({ provider, required: p.required[j]! }))).map(({ provider: p, required }, i) => ({ p, i, required })).sort((a, b) => (a.p.issuer! < b.p.issuer! ? -1 : a.p.issuer! > b.p.issuer! ? 1 : a.i - b.i));
  if (all.length === 0) return undefined;
  const providers: Record<string, JwtProviderConfig> = {};
  const names = all.map(({ p }, i) => { providers[`origins-${i}`] = p; return `origins-${i}`; });
  return {
    name: JWT_AUTHN_FILTER,
    typed_config: { '@type': JWT_AUTHN_TYPE_URL, providers, rules: [{ match: { prefix: '/' }, requires: requirement(names, all.map((a) => a.required)) }], bypass_cors_preflight: true },
  };
}
