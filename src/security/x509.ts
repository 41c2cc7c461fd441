/**
 * The one place meshlet imports @peculiar/x509, on first use: with its ASN.1
 * schemas and tsyringe it is ~280 ms of import time, which a mesh that never
 * mints a CSR or hosts a CA should not pay at start-up. Its tsyringe container
 * needs the Reflect metadata API loaded first (tsyringe's README asks for
 * `reflect-metadata`; it leaves an existing polyfill in place), and every
 * call gets node's WebCrypto explicitly rather than through the library's
 * global provider.
 */
import { webcrypto } from 'node:crypto';
import type * as X509 from '@peculiar/x509';

export type { X509 };

let loading: Promise<typeof X509> | undefined;

/** @peculiar/x509, imported once, the first time a certificate is made or read. */
export function loadX509(): Promise<typeof X509> {
  return (loading ??= import('reflect-metadata').then(() => import('@peculiar/x509')));
}

/** A WebCrypto key (node's type; the project compiles without the DOM lib). */
export type CryptoKey = webcrypto.CryptoKey;
/** A WebCrypto key pair. */
export type CryptoKeyPair = webcrypto.CryptoKeyPair;

/** Node's WebCrypto, handed to every @peculiar/x509 call. */
export const crypto: webcrypto.Crypto = webcrypto;

/** ECDSA P-256 with SHA-256: the key and signature algorithm of every meshlet certificate (as Istio's default). */
export const ecdsaP256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
