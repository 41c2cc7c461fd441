/**
 * JWT verification as Envoy's jwt_authn does it (jwt_verify_lib and the
 * filter's authenticator): parse, issuer, time constraints with a clock
 * skew, audiences, key by `kid` and `alg`, signature. Synchronous on
 * purpose: the inbound chain decides a request in `decodeHeaders` without
 * awaiting (keys are imported once, when the JWKS is loaded), so node:crypto
 * is used directly rather than jose's promise-based verify. Protocol-neutral.
 */
import { type KeyObject, createHmac, createPublicKey, createSecretKey, timingSafeEqual, verify as cryptoVerify, constants } from 'node:crypto';

/** jwt_verify_lib's status strings (status.cc): the 401/403 body Envoy sends. */
export const JwtStatus = {
  Missing: 'Jwt is missing',
  BadFormat: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
  HeaderParseError: 'Jwt header is an invalid JSON',
  PayloadParseError: 'Jwt payload is an invalid JSON',
  SignatureParseError: 'Jwt signature is an invalid Base64url encoded',
  HeaderBadAlg: 'Jwt header [alg] field is required and must be a string',
  HeaderNotImplementedAlg: 'Jwt header [alg] is not supported',
  UnknownIssuer: 'Jwt issuer is not configured',
  AudienceNotAllowed: 'Audiences in Jwt are not allowed',
  Expired: 'Jwt is expired',
  NotYetValid: 'Jwt not yet valid',
  KidAlgMismatch: "Jwks doesn't have key to match kid or alg from Jwt",
  VerificationFail: 'Jwt verification fails',
  JwksFetchFail: 'Jwks remote fetch is failed',
} as const;

/** One of {@link JwtStatus}. */
export type JwtStatusText = (typeof JwtStatus)[keyof typeof JwtStatus];

/** A key of a JWKS, imported once. */
export interface JwtKey {
  readonly kid: string | undefined;
  readonly kty: string;
  /** The JWK's own `alg`, when it names one (a token with another alg does not use the key). */
  readonly alg: string | undefined;
  readonly key: KeyObject;
}

/** A parsed, not yet verified token. */
export interface ParsedJwt {
  readonly header: Record<string, unknown>;
  readonly payload: Record<string, unknown>;
  /** The payload segment as it arrived (base64url): Envoy's forward_payload_header value. */
  readonly payloadSegment: string;
  readonly signed: string;
  readonly signature: Buffer;
}

/** What `alg` needs: key type, node:crypto digest, and signature options. */
const ALGORITHMS: Readonly<Record<string, { kty: string; hash: string | null; pss?: boolean; ec?: boolean }>> = {
  RS256: { kty: 'RSA', hash: 'sha256' }, RS384: { kty: 'RSA', hash: 'sha384' }, RS512: { kty: 'RSA', hash: 'sha512' },
  PS256: { kty: 'RSA', hash: 'sha256', pss: true }, PS384: { kty: 'RSA', hash: 'sha384', pss: true }, PS512: { kty: 'RSA', hash: 'sha512', pss: true },
  ES256: { kty: 'EC', hash: 'sha256', ec: true }, ES384: { kty: 'EC', hash: 'sha384', ec: true }, ES512: { kty: 'EC', hash: 'sha512', ec: true },
  EdDSA: { kty: 'OKP', hash: null },
  HS256: { kty: 'oct', hash: 'sha256' }, HS384: { kty: 'oct', hash: 'sha384' }, HS512: { kty: 'oct', hash: 'sha512' },
};

function json(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Splits and decodes a compact JWS; a string is the jwt_verify_lib status of a malformed token. */
export function parseJwt(token: string): ParsedJwt | JwtStatusText {
  const first = token.indexOf('.');
  const second = first < 0 ? -1 : token.indexOf('.', first + 1);
  if (first < 0 || second < 0 || token.indexOf('.', second + 1) >= 0) return JwtStatus.BadFormat;
  const h = token.slice(0, first);
  const p = token.slice(first + 1, second);
  const s = token.slice(second + 1);
  const header = BASE64URL.test(h) ? json(h) : undefined;
  if (header === undefined) return JwtStatus.HeaderParseError;
  if (typeof header.alg !== 'string') return JwtStatus.HeaderBadAlg;
  if (ALGORITHMS[header.alg] === undefined) return JwtStatus.HeaderNotImplementedAlg;
  const payload = BASE64URL.test(p) ? json(p) : undefined;
  if (payload === undefined) return JwtStatus.PayloadParseError;
  if (!BASE64URL.test(s)) return JwtStatus.SignatureParseError;
  return { header, payload, payloadSegment: p, signed: token.slice(0, second), signature: Buffer.from(s, 'base64url') };
}

/**
 * Imports the keys of a JWKS document (`{ keys: [...] }`). Keys node:crypto
 * cannot import are skipped, as jwt_verify_lib skips keys it does not know.
 * @returns the keys, or an error string when the document is not a JWKS.
 */
export function importJwks(text: string): JwtKey[] | string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return `is not JSON: ${(err as Error).message}`;
  }
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) return 'is not a JWKS: it has no "keys" list';
  const out: JwtKey[] = [];
  for (const jwk of keys as Array<Record<string, unknown>>) {
    if (typeof jwk !== 'object' || jwk === null || typeof jwk.kty !== 'string') continue;
    try {
      const key = jwk.kty === 'oct'
        ? createSecretKey(Buffer.from(String(jwk.k ?? ''), 'base64url'))
        // Only the public half is used: a JWK with private members still verifies (Istio warns about it).
        : createPublicKey({ key: publicPart(jwk), format: 'jwk' });
      out.push({ kid: typeof jwk.kid === 'string' ? jwk.kid : undefined, kty: jwk.kty, alg: typeof jwk.alg === 'string' ? jwk.alg : undefined, key });
    } catch {
      // not a usable key
    }
  }
  return out;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth'];

function publicPart(jwk: Record<string, unknown>): import('node:crypto').JsonWebKey {
  const out: Record<string, unknown> = {};
  for (const k in jwk) if (!PRIVATE_MEMBERS.includes(k)) out[k] = jwk[k];
  return out as import('node:crypto').JsonWebKey;
}

/** True when a JWKS document's key at some index carries private material (Istio's warnPrivateJwksKeys). */
export function jwksPrivateKeyIndexes(text: string): number[] {
  try {
    const keys = (JSON.parse(text) as { keys?: unknown }).keys;
    if (!Array.isArray(keys)) return [];
    return keys.flatMap((k: Record<string, unknown>, i) => (k?.kty === 'oct' || PRIVATE_MEMBERS.some((m) => k?.[m] !== undefined) ? [i] : []));
  } catch {
    return [];
  }
}

function signatureValid(alg: string, key: JwtKey, jwt: ParsedJwt): boolean {
  const a = ALGORITHMS[alg]!;
  const data = Buffer.from(jwt.signed);
  try {
    if (a.kty === 'oct') {
      const mac = createHmac(a.hash!, key.key).update(data).digest();
      return mac.length === jwt.signature.length && timingSafeEqual(mac, jwt.signature);
    }
    if (a.pss) return cryptoVerify(a.hash, data, { key: key.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, jwt.signature);
    if (a.ec) return cryptoVerify(a.hash, data, { key: key.key, dsaEncoding: 'ieee-p1363' }, jwt.signature);
    return cryptoVerify(a.hash, data, key.key, jwt.signature);
  } catch {
    return false;
  }
}

/**
 * Verifies the signature with the keys that fit the token's `kid` and
 * `alg` (jwt_verify_lib's verifyJwt): a token naming a kid no key has, or an
 * alg no key fits, is KidAlgMismatch; a fitting key that does not verify is
 * VerificationFail.
 */
export function verifySignature(jwt: ParsedJwt, keys: readonly JwtKey[]): JwtStatusText | undefined {
  const alg = jwt.header.alg as string;
  const kid = typeof jwt.header.kid === 'string' ? jwt.header.kid : undefined;
  const kty = ALGORITHMS[alg]!.kty;
  let fitting = 0;
  for (const key of keys) {
    if (kid !== undefined && key.kid !== undefined && key.kid !== kid) continue;
    if (key.kty !== kty || (key.alg !== undefined && key.alg !== alg)) continue;
    fitting++;
    if (signatureValid(alg, key, jwt)) return undefined;
  }
  return fitting === 0 ? JwtStatus.KidAlgMismatch : JwtStatus.VerificationFail;
}

/** jwt_verify_lib's audience normalization: scheme and trailing slash do not count. */
function normalizeAudience(aud: string): string {
  let a = aud.startsWith('https://') ? aud.slice(8) : aud.startsWith('http://') ? aud.slice(7) : aud;
  if (a.endsWith('/')) a = a.slice(0, -1);
  return a;
}

/** Compiled audiences: undefined allows any (Envoy: an empty list is not checked). */
export function compileAudiences(audiences: readonly string[] | undefined): ReadonlySet<string> | undefined {
  return audiences === undefined || audiences.length === 0 ? undefined : new Set(audiences.map(normalizeAudience));
}

/** The token's `aud` (string or list) intersects the allowed set. */
export function audienceAllowed(payload: Record<string, unknown>, allowed: ReadonlySet<string>): boolean {
  const aud = payload.aud;
  const list = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  for (const a of list) if (typeof a === 'string' && allowed.has(normalizeAudience(a))) return true;
  return false;
}

/** Envoy's default clock skew for exp/nbf (JwtProvider.clock_skew_seconds). */
export const DEFAULT_CLOCK_SKEW_S = 60;

/** exp/nbf against `nowS` (seconds) with the skew; undefined when in time. */
export function timeStatus(payload: Record<string, unknown>, nowS: number, skewS: number): JwtStatusText | undefined {
  const { exp, nbf } = payload;
  if (typeof nbf === 'number' && nowS + skewS < nbf) return JwtStatus.NotYetValid;
  if (typeof exp === 'number' && exp !== 0 && nowS > exp + skewS) return JwtStatus.Expired;
  return undefined;
}
