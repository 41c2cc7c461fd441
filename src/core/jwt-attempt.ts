/**
 * One request through the jwt_authn filter (core/jwt-authn): the tokens at
 * each provider's locations, each verified once (core/jwt-verify), and
 * Envoy's requirement tree evaluated over them — provider_name,
 * requires_any (one success is enough; a real failure outranks "missing"),
 * requires_all, allow_missing, allow_missing_or_failed. Protocol-neutral.
 */
import type { InboundRequestView } from './inbound-policy.js';
import type { JwksSource, RemoteJwksOptions } from './jwt-authn.js';
import { JwtStatus, type JwtKey, type JwtStatusText, type ParsedJwt, audienceAllowed, parseJwt, timeStatus, verifySignature } from './jwt-verify.js';

/** Where a provider looks for its token. */
export interface Location { readonly kind: 'header' | 'param' | 'cookie'; readonly name: string; readonly prefix: string }

/** A compiled JwtProvider. */
export interface Provider {
  readonly name: string;
  readonly issuer: string | undefined;
  readonly audiences: ReadonlySet<string> | undefined;
  readonly keys: readonly JwtKey[] | undefined;
  readonly remote: { readonly uri: string; readonly options: RemoteJwksOptions } | undefined;
  readonly forward: boolean;
  readonly payloadHeader: string | undefined;
  readonly payloadKey: string | undefined;
  readonly spaceDelimited: readonly string[];
  readonly claimHeaders: ReadonlyArray<readonly [header: string, claim: string]>;
  readonly locations: readonly Location[];
  readonly skewS: number;
}

/** A compiled JwtRequirement. */
export type Requirement =
  | { readonly type: 'provider'; readonly provider: Provider }
  | { readonly type: 'any' | 'all'; readonly children: readonly Requirement[] }
  | { readonly type: 'allow_missing' | 'allow_missing_or_failed' };

/** A token that verified, and what to do with it. */
export interface Verified { readonly provider: Provider; readonly jwt: ParsedJwt; readonly location: Location }

/** What an attempt needs from its filter. */
export interface AttemptContext {
  readonly providers: readonly Provider[];
  readonly jwks: JwksSource | undefined;
  now(): number;
}

/** What a request carries at a location (Envoy's extractor: the JWT-shaped run after the prefix). */
function extract(view: InboundRequestView, l: Location, url: string): string | undefined {
  let raw: string | undefined;
  if (l.kind === 'header') {
    const v = view.header(l.name);
    if (v === undefined) return undefined;
    if (l.prefix === '') raw = v;
    else {
      const at = v.toLowerCase().indexOf(l.prefix.toLowerCase());
      if (at < 0) return undefined;
      raw = v.slice(at + l.prefix.length);
    }
  } else if (l.kind === 'param') {
    const q = url.indexOf('?');
    if (q < 0) return undefined;
    raw = new URLSearchParams(url.slice(q + 1)).get(l.name) ?? undefined;
  } else {
    const cookies = view.header('cookie');
    if (cookies === undefined) return undefined;
    for (const part of cookies.split(/[;,]/)) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === l.name) { raw = part.slice(eq + 1).trim(); break; }
    }
  }
  const m = raw === undefined ? null : /^\s*([A-Za-z0-9_.-]+)/.exec(raw);
  return m === null ? undefined : m[1];
}

/** Per-request state: tokens found, provider results memoized, tokens that verified. */
export class Attempt {
  readonly url: string;
  readonly results = new Map<Provider, JwtStatusText | 'ok'>();
  readonly verified: Verified[] = [];
  constructor(readonly view: InboundRequestView, private readonly filter: AttemptContext) {
    this.url = view.url ?? view.path;
  }

  tokens(p: Provider): Array<{ token: string; location: Location }> {
    const out: Array<{ token: string; location: Location }> = [];
    for (const l of p.locations) {
      const token = extract(this.view, l, this.url);
      if (token !== undefined) out.push({ token, location: l });
    }
    return out;
  }

  /** A provider's verdict on its tokens: all must verify; none is Missing. */
  provider(p: Provider): JwtStatusText | 'ok' {
    let result = this.results.get(p);
    if (result !== undefined) return result;
    const tokens = this.tokens(p);
    result = tokens.length === 0 ? JwtStatus.Missing : 'ok';
    for (const t of tokens) {
      const status = this.verify(p, t.token, t.location);
      if (status !== undefined) { result = status; break; }
    }
    this.results.set(p, result);
    return result;
  }

  verify(p: Provider, token: string, location: Location): JwtStatusText | undefined {
    const jwt = parseJwt(token);
    if (typeof jwt === 'string') return jwt;
    if (p.issuer !== undefined && jwt.payload.iss !== p.issuer) return JwtStatus.UnknownIssuer;
    const late = timeStatus(jwt.payload, Math.floor(this.filter.now() / 1000), p.skewS);
    if (late !== undefined) return late;
    if (p.audiences !== undefined && !audienceAllowed(jwt.payload, p.audiences)) return JwtStatus.AudienceNotAllowed;
    let keys = p.keys;
    if (keys === undefined) {
      const remote = this.filter.jwks?.keys(p.remote!.uri, p.remote!.options);
      if (remote === undefined || typeof remote === 'string') return JwtStatus.JwksFetchFail;
      keys = remote;
    }
    const bad = verifySignature(jwt, keys);
    if (bad === JwtStatus.KidAlgMismatch && p.remote !== undefined) this.filter.jwks?.unknownKid(p.remote.uri);
    if (bad !== undefined) return bad;
    this.verified.push({ provider: p, jwt, location });
    return undefined;
  }

  /** allow_missing over every provider: each token found is verified by the provider of its issuer. */
  anyProvider(allowFailed: boolean): JwtStatusText | 'ok' {
    let status: JwtStatusText | 'ok' = 'ok';
    const seen = new Set<string>();
    for (const p of this.filter.providers) {
      for (const t of this.tokens(p)) {
        if (seen.has(t.token)) continue;
        seen.add(t.token);
        const jwt = parseJwt(t.token);
        const iss = typeof jwt === 'string' ? undefined : jwt.payload.iss;
        const here = (l: Location): boolean => l.kind === t.location.kind && l.name === t.location.name && l.prefix === t.location.prefix;
        const owner = this.filter.providers.find((q) => q.issuer === iss && q.locations.some(here)) ?? p;
        const bad = typeof jwt === 'string' ? jwt : this.verify(owner, t.token, t.location);
        if (bad !== undefined && status === 'ok') status = bad;
      }
    }
    return allowFailed ? 'ok' : status;
  }

  evaluate(r: Requirement): JwtStatusText | 'ok' {
    switch (r.type) {
      case 'provider': return this.provider(r.provider);
      case 'allow_missing': return this.anyProvider(false);
      case 'allow_missing_or_failed': return this.anyProvider(true);
      case 'all': {
        for (const c of r.children) {
          const s = this.evaluate(c);
          if (s !== 'ok') return s;
        }
        return 'ok';
      }
      case 'any': {
        // Envoy's AnyVerifier: one success is enough; otherwise a real failure outranks "missing".
        let failure: JwtStatusText | undefined;
        for (const c of r.children) {
          const s = this.evaluate(c);
          if (s === 'ok') return 'ok';
          if (failure === undefined || failure === JwtStatus.Missing) failure = s;
        }
        return failure!;
      }
    }
  }
}

