/**
 * The one place meshlet imports @peculiar/x509. Its tsyringe container needs
 * the Reflect metadata API loaded first (tsyringe's README asks for
 * `reflect-metadata`; it leaves an existing polyfill in place), and every
 * call gets node's WebCrypto explicitly rather than through the library's
 * global provider.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

export { x509 };

/** A WebCrypto key (node's type; the project compiles without the DOM lib). */
export type CryptoKey = webcrypto.CryptoKey;
/** A WebCrypto key pair. */
export type CryptoKeyPair = webcrypto.CryptoKeyPair;

/** Node's WebCrypto, handed to every @peculiar/x509 call. */
export const crypto: webcrypto.Crypto = webcrypto;

/** ECDSA P-256 with SHA-256: the key and signature algorithm of every meshlet certificate (as Istio's default). */
export const ecdsaP256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
