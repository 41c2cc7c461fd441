/**
 * The identity material a workload holds at one moment: its private key,
 * certificate chain and trust roots, all PEM, plus the facts read from the
 * leaf. Immutable; rotation replaces the whole object.
 */
import { X509Certificate } from 'node:crypto';
import { CertificateError, certificateInfo, keyMatchesCertificate, splitPemChain } from './certificates.js';
import { tryParseSpiffeId } from './identity.js';

/** One generation of a workload's key and certificates. */
export interface IdentityMaterial {
  /** PKCS#8 PEM private key; never leaves the process except into node:tls. */
  readonly key: string;
  /** PEM certificates, leaf first (root last when the issuer includes it). */
  readonly certChain: readonly string[];
  /** PEM trust roots (one or more concatenated certificates). */
  readonly root: string;
  /** The leaf's SPIFFE id. */
  readonly spiffeId: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** Raw PEM inputs for {@link createIdentityMaterial}. */
export interface IdentityPems {
  key: string;
  /** A chain as one PEM string or as a list, leaf first. */
  certChain: string | readonly string[];
  root: string;
}

/**
 * Checks and assembles identity material: the chain must parse, the leaf
 * must chain to one of the roots, the leaf must carry exactly one URI SAN that is a SPIFFE id (in `trustDomain` when
 * given), and the key must belong to the leaf.
 * @throws CertificateError saying what is wrong.
 */
export function createIdentityMaterial(pems: IdentityPems, options: { trustDomain?: string } = {}): IdentityMaterial {
  const chain = typeof pems.certChain === 'string' ? splitPemChain(pems.certChain) : [...pems.certChain];
  if (chain.length === 0) throw new CertificateError('certificate chain is empty');
  const roots = splitPemChain(pems.root);
  if (roots.length === 0) throw new CertificateError('root certificate is missing');
  checkChain(chain, roots);
  const leaf = certificateInfo(chain[0]!);
  if (leaf.uris.length !== 1) throw new CertificateError(`leaf certificate must have exactly one URI SAN, has ${leaf.uris.length}`);
  const id = tryParseSpiffeId(leaf.uris[0]!, options);
  if (typeof id === 'string') throw new CertificateError(`leaf certificate SAN ${leaf.uris[0]}: ${id}`);
  if (!keyMatchesCertificate(pems.key, chain[0]!)) throw new CertificateError('private key does not match the leaf certificate');
  return Object.freeze({
    key: pems.key,
    certChain: Object.freeze(chain),
    root: pems.root,
    spiffeId: id.uri,
    notBefore: leaf.notBefore,
    notAfter: leaf.notAfter,
  });
}

function issuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  return child.checkIssued(parent) && child.verify(parent.publicKey);
}

/** Each certificate must be signed by the next, and the last by (or be) a trusted root. */
function checkChain(chain: readonly string[], roots: readonly string[]): void {
  let certs: X509Certificate[];
  let trusted: X509Certificate[];
  try {
    certs = chain.map((pem) => new X509Certificate(pem));
    trusted = roots.map((pem) => new X509Certificate(pem));
  } catch (err) {
    throw new CertificateError('certificate chain or root is not readable PEM', { cause: err });
  }
  // Issuers often append the root itself; drop it before walking the chain.
  while (certs.length > 1 && trusted.some((r) => r.fingerprint256 === certs[certs.length - 1]!.fingerprint256)) certs.pop();
  for (let i = 0; i + 1 < certs.length; i++) {
    if (!issuedBy(certs[i]!, certs[i + 1]!)) throw new CertificateError(`certificate ${i} of the chain is not signed by certificate ${i + 1}`);
  }
  const last = certs[certs.length - 1]!;
  if (!trusted.some((r) => issuedBy(last, r))) throw new CertificateError('certificate chain does not lead to the trusted root');
}
