/**
 * Key pairs, CSRs and certificate inspection. Keys are ECDSA P-256 generated
 * in-process with WebCrypto and leave it only as PEM handed to node:tls.
 * Inspection uses node's own X509Certificate (fast, synchronous); creation
 * goes through @peculiar/x509.
 */
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { MeshError } from '../errors.js';
import { type CryptoKey, type CryptoKeyPair, loadX509, crypto, ecdsaP256 } from './x509.js';

/** A certificate or key that cannot be used (malformed, wrong identity, mismatched key). */
export class CertificateError extends MeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MESH_CERTIFICATE_INVALID', message, undefined, undefined, options);
  }
}

/** Generates an extractable ECDSA P-256 key pair. */
export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(ecdsaP256, true, ['sign', 'verify'])) as CryptoKeyPair;
}

function toPem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Exports a private key as PKCS#8 PEM (what node:tls takes as `key`). */
export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  return toPem('PRIVATE KEY', await crypto.subtle.exportKey('pkcs8', key));
}

/**
 * Imports a PEM private key (PKCS#8, or SEC1 "EC PRIVATE KEY" as Istio's
 * tooling writes it) as an ECDSA P-256 signing key with its public half.
 */
export async function importKeyPairPem(pem: string): Promise<CryptoKeyPair> {
  let keyObject;
  try {
    keyObject = createPrivateKey(pem);
  } catch (err) {
    throw new CertificateError('private key is not a readable PEM key', { cause: err });
  }
  if (keyObject.asymmetricKeyType !== 'ec' || keyObject.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new CertificateError('private key must be ECDSA P-256');
  }
  const pkcs8 = keyObject.export({ type: 'pkcs8', format: 'der' });
  const spki = createPublicKey(keyObject).export({ type: 'spki', format: 'der' });
  const privateKey = await crypto.subtle.importKey('pkcs8', pkcs8, ecdsaP256, true, ['sign']);
  const publicKey = await crypto.subtle.importKey('spki', spki, ecdsaP256, true, ['verify']);
  return { privateKey, publicKey };
}

/** Creates a PKCS#10 CSR (PEM) whose only subject alternative name is the SPIFFE id, as Istio's agent does. */
export async function createCsr(keys: CryptoKeyPair, spiffeId: string): Promise<string> {
  const x509 = await loadX509();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: ecdsaP256,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true)],
  }, crypto);
  return csr.toString('pem');
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Splits concatenated PEM certificates into one string per certificate (order kept). */
export function splitPemChain(text: string): string[] {
  return (text.match(PEM_BLOCK) ?? []).map((block) => `${block}\n`);
}

/**
 * The URI SANs of a certificate. Node renders SANs as `URI:a, DNS:b`; SPIFFE
 * ids never contain `,` or quotes, so anything quoted is not a SPIFFE id.
 */
export function uriSans(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  const out: string[] = [];
  for (const entry of subjectAltName.split(', ')) {
    if (entry.startsWith('URI:')) out.push(entry.slice(4));
  }
  return out;
}

/** The DNS SANs of a certificate (Node's `DNS:a, DNS:b` rendering), as written. */
export function dnsSans(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  const out: string[] = [];
  for (const entry of subjectAltName.split(', ')) {
    if (entry.startsWith('DNS:')) out.push(entry.slice(4));
  }
  return out;
}

/** What meshlet needs to know about a leaf certificate. */
export interface CertificateInfo {
  readonly uris: string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly serialNumber: string;
}

/** Reads URI SANs and validity from a PEM certificate. */
export function certificateInfo(pem: string): CertificateInfo {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    throw new CertificateError('certificate is not a readable PEM certificate', { cause: err });
  }
  return {
    uris: uriSans(cert.subjectAltName),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    serialNumber: cert.serialNumber,
  };
}

/** True when the PEM private key is the key of the PEM certificate. */
export function keyMatchesCertificate(keyPem: string, certPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}
