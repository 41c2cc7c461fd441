/**
 * Bootstrap tokens: short-lived ES256 JWTs naming one namespace/service
 * account, signed by the CA holder and checked by the CA before it signs a
 * workload's first certificate. Built on node:crypto alone; only ES256 is
 * accepted so `alg: none` / HMAC-confusion tricks cannot apply.
 */
import { type KeyObject, createPublicKey, randomBytes, sign, verify } from 'node:crypto';
import { MeshError } from '../errors.js';

/** Istio's default audience for tokens presented to its CA. */
export const BOOTSTRAP_TOKEN_AUDIENCE = 'istio-ca';

/** Claims meshlet puts in a bootstrap token. */
export interface BootstrapTokenClaims {
  /** Issuer: `meshlet-ca/<trustDomain>`. */
  iss: string;
  /** Subject: the SPIFFE id the token entitles its bearer to. */
  sub: string;
  aud: string;
  iat: number;
  nbf: number;
  exp: number;
  jti: string;
}

/** A bearer token the CA refused (bad signature, expired, wrong audience…). */
export class TokenError extends MeshError {
  constructor(reason: string) {
    super('MESH_TOKEN_INVALID', `bootstrap token rejected: ${reason}`);
  }
}

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');
const HEADER = b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT' }));

/** Signs claims as a compact ES256 JWT with a P-256 private key. */
export function signJwtEs256(claims: object, privateKey: KeyObject): string {
  const signingInput = `${HEADER}.${b64url(JSON.stringify(claims))}`;
  // JOSE wants the raw r||s signature, not DER.
  const signature = sign('sha256', Buffer.from(signingInput), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${signingInput}.${b64url(signature)}`;
}

/** The CA tracks more unexpired single-use tokens than its cap allows: refused until some expire. */
export class TokenReplayCacheFullError extends MeshError {
  constructor(max: number) {
    super('MESH_TOKEN_CACHE_FULL', `bootstrap token refused: the CA already tracks ${max} unexpired redeemed tokens; retry once some expire (renewals with a certificate are unaffected)`);
  }
}

/** Clock skew tolerated on nbf/exp by default, in seconds. */
export const TOKEN_LEEWAY_SECONDS = 30;

/** How often, at most, a {@link TokenReplayCache} scans for expired ids while not full (ms). */
const PRUNE_INTERVAL_MS = 1000;

/**
 * The ids (`jti`) of redeemed single-use tokens, each kept until its token
 * could no longer verify anyway (exp + leeway). Bounded: expired ids are
 * pruned, and when `maxEntries` unexpired ids are held a new one is refused
 * rather than an old one forgotten (forgetting would re-enable its replay).
 */
export class TokenReplayCache {
  readonly #until = new Map<string, number>();
  readonly #max: number;
  #nextPrune = Number.POSITIVE_INFINITY;

  constructor(maxEntries = 100_000) {
    if (!(Number.isInteger(maxEntries) && maxEntries > 0)) throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);
    this.#max = maxEntries;
  }

  /** Ids currently remembered (expired ones may linger until the next prune). */
  get size(): number {
    return this.#until.size;
  }

  /**
   * Records `jti` until `untilMs`. Returns false when it is already recorded
   * and unexpired: a replay.
   * @throws TokenReplayCacheFullError when `maxEntries` unexpired ids are held.
   */
  claim(jti: string, untilMs: number, nowMs: number): boolean {
    if (nowMs >= this.#nextPrune || this.#until.size >= this.#max) this.#prune(nowMs);
    const held = this.#until.get(jti);
    if (held !== undefined && held > nowMs) return false;
    if (held === undefined && this.#until.size >= this.#max) throw new TokenReplayCacheFullError(this.#max);
    this.#until.set(jti, untilMs);
    if (untilMs < this.#nextPrune) this.#nextPrune = Math.max(untilMs, nowMs + PRUNE_INTERVAL_MS);
    return true;
  }

  /** Forgets `jti` (its request issued nothing, so the token may be presented again). */
  release(jti: string): void {
    this.#until.delete(jti);
  }

  #prune(nowMs: number): void {
    let next = Number.POSITIVE_INFINITY;
    for (const [jti, until] of this.#until) {
      if (until <= nowMs) this.#until.delete(jti);
      else if (until < next) next = until;
    }
    this.#nextPrune = Math.max(next, nowMs + PRUNE_INTERVAL_MS);
  }
}

/** Options for {@link verifyJwtEs256}. */
export interface VerifyJwtOptions {
  audience: string;
  issuer: string;
  /** Clock in ms; defaults to Date.now. */
  now?: () => number;
  /** Clock skew tolerated on nbf/exp, in seconds (default {@link TOKEN_LEEWAY_SECONDS}). */
  leewaySeconds?: number;
}

/**
 * Verifies a compact ES256 JWT and its registered claims.
 * @throws TokenError saying why the token is not acceptable.
 */
export function verifyJwtEs256(token: string, publicKey: KeyObject, options: VerifyJwtOptions): BootstrapTokenClaims {
  const parts = typeof token === 'string' ? token.split('.') : [];
  if (parts.length !== 3) throw new TokenError('not a compact JWT');
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  let header: { alg?: unknown; crit?: unknown };
  let claims: Partial<BootstrapTokenClaims>;
  try {
    header = JSON.parse(Buffer.from(headerPart, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8'));
  } catch {
    throw new TokenError('header or payload is not base64url JSON');
  }
  if (header.alg !== 'ES256') throw new TokenError(`algorithm ${String(header.alg)} is not ES256`);
  if (header.crit !== undefined) throw new TokenError('critical header parameters are not supported');
  const signature = Buffer.from(signaturePart, 'base64url');
  const ok = signature.length === 64 &&
    verify('sha256', Buffer.from(`${headerPart}.${payloadPart}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
  if (!ok) throw new TokenError('signature does not verify');
  if (typeof claims !== 'object' || claims === null) throw new TokenError('payload is not an object');
  const now = Math.floor((options.now ?? Date.now)() / 1000);
  const leeway = options.leewaySeconds ?? TOKEN_LEEWAY_SECONDS;
  if (claims.iss !== options.issuer) throw new TokenError(`issuer ${String(claims.iss)} is not ${options.issuer}`);
  const aud = claims.aud as unknown;
  if (!(aud === options.audience || (Array.isArray(aud) && aud.includes(options.audience)))) {
    throw new TokenError(`audience does not include ${options.audience}`);
  }
  if (typeof claims.exp !== 'number') throw new TokenError('no exp claim');
  if (now > claims.exp + leeway) throw new TokenError('expired');
  if (typeof claims.nbf === 'number' && now + leeway < claims.nbf) throw new TokenError('not yet valid');
  if (typeof claims.sub !== 'string') throw new TokenError('no sub claim');
  return claims as BootstrapTokenClaims;
}

/** A fresh random token id. */
export function newTokenId(): string {
  return randomBytes(12).toString('base64url');
}

/** The public half of a private KeyObject. */
export function publicKeyOf(privateKey: KeyObject): KeyObject {
  return createPublicKey(privateKey);
}
