/**
 * JWT material for the RequestAuthentication tests: Istio's sample tokens
 * and JWKS (test/fixtures/istio-jwt, from istio/istio
 * security/tools/jwt/samples @ 86c9f01f) and tokens signed here with jose —
 * with Istio's published sample key, or a fresh key pair.
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type JWTPayload } from 'jose';

const dir = new URL('../fixtures/istio-jwt/', import.meta.url);

/** Istio's demo.jwt: iss = sub = testing@secure.istio.io, foo: bar. */
export const DEMO_JWT = readFileSync(new URL('demo.jwt', dir), 'utf8').trim();
/** Istio's groups-scope.jwt: groups [group1, group2], scope [scope1, scope2]. */
export const GROUPS_SCOPE_JWT = readFileSync(new URL('groups-scope.jwt', dir), 'utf8').trim();
/** The JWKS both verify with. */
export const ISTIO_JWKS = readFileSync(new URL('jwks.json', dir), 'utf8').trim();
export const ISTIO_ISSUER = 'testing@secure.istio.io';
export const ISTIO_KID = 'DHFbpoIUqrY8t2zpA2qXfCmr5VO5ZEr4RzHU_-envvQ';
/** Istio's sample private key (published for tests). */
export const ISTIO_KEY: KeyObject = createPrivateKey(readFileSync(new URL('key.pem', dir), 'utf8'));

/** Signs `payload` RS256 with Istio's sample key (kid set) — times in seconds. */
export function signIstio(payload: JWTPayload, options: { kid?: string; key?: KeyObject; alg?: string } = {}): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: options.alg ?? 'RS256', kid: options.kid ?? ISTIO_KID }).sign(options.key ?? ISTIO_KEY);
}

/** A fresh ES256 key pair and its public JWKS document. */
export async function freshKey(kid: string): Promise<{ privateKey: KeyObject; jwks: { keys: object[] } }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { privateKey: privateKey as unknown as KeyObject, jwks: { keys: [{ ...jwk, kid, alg: 'ES256', use: 'sig' }] } };
}

/** Seconds since the epoch. */
export const nowS = (): number => Math.floor(Date.now() / 1000);

/** A token with its signature's last characters changed (still well-formed). */
export function tamper(token: string): string {
  const last = token.at(-2) === 'A' ? 'B' : 'A';
  return `${token.slice(0, -2)}${last}${token.at(-1)}`;
}
