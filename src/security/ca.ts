/**
 * A certificate authority like istiod's: a self-signed ECDSA root that signs
 * workload CSRs into leaves carrying only the SPIFFE URI SAN, with Istio's
 * key usages, and mints the bootstrap tokens that authenticate a workload's
 * first request.
 */
import { type KeyObject, createPrivateKey } from 'node:crypto';
import { MeshError } from '../errors.js';
import { parseDuration } from '../core/duration.js';
import { CertificateError, createCsr, generateKeyPair, importKeyPairPem, keyMatchesCertificate, privateKeyToPem } from './certificates.js';
import { DEFAULT_TRUST_DOMAIN, type SpiffeId, checkTrustDomain, formatSpiffeId, parseSpiffeId, tryParseSpiffeId } from './identity.js';
import { type IdentityMaterial, createIdentityMaterial } from './material.js';
import {
  BOOTSTRAP_TOKEN_AUDIENCE, type BootstrapTokenClaims, TOKEN_LEEWAY_SECONDS, TokenError, TokenReplayCache, newTokenId, publicKeyOf, signJwtEs256, verifyJwtEs256,
} from './token.js';
import { type CryptoKeyPair, type X509, loadX509, crypto, ecdsaP256 } from './x509.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Istio's defaults: workload certificates live 24 h, at most 90 days; roots 10 years. */
export const DEFAULT_WORKLOAD_CERT_TTL_MS = DAY;
export const MAX_WORKLOAD_CERT_TTL_MS = 90 * DAY;
export const DEFAULT_ROOT_CERT_TTL_MS = 3650 * DAY;

/** A CSR the CA refuses to sign. */
export class CsrRejectedError extends MeshError {
  /** True when the CSR was well-formed but names someone other than the caller. */
  readonly identityMismatch: boolean;
  constructor(reason: string, identityMismatch = false) {
    super('MESH_CSR_REJECTED', `certificate request rejected: ${reason}`);
    this.identityMismatch = identityMismatch;
  }
}

/** Options shared by every way of obtaining a CA. */
export interface CertificateAuthorityOptions {
  /** Trust domain of the ids this CA signs (default `cluster.local`). */
  trustDomain?: string;
  /** Validity when the request names none (default 24 h). */
  defaultTtlMs?: number;
  /** Longest validity granted; longer requests are capped (default 90 days). */
  maxTtlMs?: number;
  /** Clock in ms (tests move it to issue expired certificates). */
  now?: () => number;
  /**
   * Most unexpired redeemed bootstrap tokens remembered for replay refusal
   * (default 100 000); past it new tokens are refused until some expire.
   */
  maxRedeemedTokens?: number;
}

/** A bootstrap token accepted by {@link CertificateAuthority.redeemBootstrapToken}. */
export interface RedeemedToken {
  /** The SPIFFE id the token entitles its bearer to. */
  readonly id: SpiffeId;
  /** Makes the token usable again: call when its request issued no certificate. */
  release(): void;
}

/** Options when creating a fresh root. */
export interface CreateRootOptions extends CertificateAuthorityOptions {
  /** Root validity (default 10 years). */
  rootTtlMs?: number;
  /** Organization in the root's subject (default `cluster.local`, as Istio). */
  organization?: string;
}

/** Options for {@link CertificateAuthority.sign}. */
export interface SignOptions {
  /** Requested validity; capped by the CA's max and the root's expiry. */
  ttlMs?: number;
  /**
   * The authenticated caller's SPIFFE id. The CSR's id must equal it; without
   * it the CA refuses to sign (every signature is bound to a caller).
   */
  callerIdentity: string;
}

/** Options for {@link CertificateAuthority.mintBootstrapToken}. */
export interface MintTokenOptions {
  namespace: string;
  serviceAccount: string;
  /** Lifetime as milliseconds or an Istio duration string (default `1h`). */
  ttl?: number | string;
}

/** An in-process CA: a root key and certificate that sign workload CSRs. */
export class CertificateAuthority {
  /** Trust domain of every id this CA signs. */
  readonly trustDomain: string;
  /** PEM of the root certificate (what workloads trust). */
  readonly rootPem: string;
  readonly #keys: CryptoKeyPair;
  readonly #keyPem: string;
  readonly #tokenKey: KeyObject;
  readonly #tokenPublicKey: KeyObject;
  readonly #root: X509.X509Certificate;
  readonly #defaultTtlMs: number;
  readonly #maxTtlMs: number;
  readonly #now: () => number;
  readonly #redeemed: TokenReplayCache;

  private constructor(keys: CryptoKeyPair, keyPem: string, root: X509.X509Certificate, options: CertificateAuthorityOptions) {
    this.trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    const tdReason = checkTrustDomain(this.trustDomain);
    if (tdReason) throw new CertificateError(tdReason);
    this.#keys = keys;
    this.#keyPem = keyPem;
    this.#root = root;
    this.rootPem = root.toString('pem') + '\n';
    this.#tokenKey = createPrivateKey(keyPem);
    this.#tokenPublicKey = publicKeyOf(this.#tokenKey);
    this.#defaultTtlMs = options.defaultTtlMs ?? DEFAULT_WORKLOAD_CERT_TTL_MS;
    this.#maxTtlMs = options.maxTtlMs ?? MAX_WORKLOAD_CERT_TTL_MS;
    this.#now = options.now ?? Date.now;
    this.#redeemed = new TokenReplayCache(options.maxRedeemedTokens);
  }

  /** Creates a CA with a freshly generated self-signed root. */
  static async create(options: CreateRootOptions = {}): Promise<CertificateAuthority> {
    const keys = await generateKeyPair();
    const x509 = await loadX509();
    const now = (options.now ?? Date.now)();
    const org = options.organization ?? options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    const root = await x509.X509CertificateGenerator.createSelfSigned({
      name: [{ O: [org] }],
      keys,
      signingAlgorithm: ecdsaP256,
      notBefore: new Date(now),
      notAfter: new Date(now + (options.rootTtlMs ?? DEFAULT_ROOT_CERT_TTL_MS)),
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    }, crypto);
    return new CertificateAuthority(keys, await privateKeyToPem(keys.privateKey), root, options);
  }

  /** Loads a CA from its root certificate and key (PEM). */
  static async load(pems: { certPem: string; keyPem: string }, options: CertificateAuthorityOptions = {}): Promise<CertificateAuthority> {
    if (!keyMatchesCertificate(pems.keyPem, pems.certPem)) throw new CertificateError('CA key does not match the CA certificate');
    const keys = await importKeyPairPem(pems.keyPem);
    const x509 = await loadX509();
    const root = new x509.X509Certificate(pems.certPem);
    const bc = root.getExtension(x509.BasicConstraintsExtension);
    if (!bc?.ca) throw new CertificateError('CA certificate lacks basicConstraints CA:TRUE');
    return new CertificateAuthority(keys, await privateKeyToPem(keys.privateKey), root, options);
  }

  /** The root's PEM key and certificate, for persisting (development CA dir). */
  exportRoot(): { certPem: string; keyPem: string } {
    return { certPem: this.rootPem, keyPem: this.#keyPem };
  }

  /**
   * Signs a workload CSR. The CSR must be self-consistent (its signature
   * verifies), carry exactly one URI SAN that is a SPIFFE id in this trust
   * domain, and that id must be the authenticated caller's.
   * @returns the chain, leaf first and root last.
   * @throws CsrRejectedError saying why.
   */
  async sign(csrPem: string, options: SignOptions): Promise<string[]> {
    const x509 = await loadX509();
    let csr: X509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(csrPem);
    } catch {
      throw new CsrRejectedError('CSR is not a readable PKCS#10 request');
    }
    if (!(await csr.verify(crypto))) throw new CsrRejectedError('CSR signature does not verify');
    const uris = csrUris(x509, csr);
    if (uris.length !== 1) throw new CsrRejectedError(`CSR must name exactly one URI SAN, has ${uris.length}`);
    const id = tryParseSpiffeId(uris[0]!, { trustDomain: this.trustDomain });
    if (typeof id === 'string') throw new CsrRejectedError(`CSR SAN ${uris[0]}: ${id}`);
    if (typeof options.callerIdentity !== 'string' || id.uri !== options.callerIdentity) {
      throw new CsrRejectedError(`CSR identity ${id.uri} does not match the caller's identity ${String(options.callerIdentity)}`, true);
    }
    const requested = options.ttlMs ?? this.#defaultTtlMs;
    if (!(requested > 0)) throw new CsrRejectedError('requested validity must be positive');
    const now = this.#now();
    const notAfter = Math.min(now + Math.min(requested, this.#maxTtlMs), this.#root.notAfter.getTime());
    const leaf = await x509.X509CertificateGenerator.create({
      subject: [],
      issuer: this.#root.subjectName,
      publicKey: csr.publicKey,
      signingKey: this.#keys.privateKey,
      signingAlgorithm: ecdsaP256,
      notBefore: new Date(now),
      notAfter: new Date(notAfter),
      extensions: [
        // Istio's workload certificate profile: empty subject, so the SAN is critical.
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.BasicConstraintsExtension(false, undefined, true),
        await x509.AuthorityKeyIdentifierExtension.create(this.#keys.publicKey, false, crypto),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: id.uri }], true),
      ],
    }, crypto);
    return [leaf.toString('pem') + '\n', this.rootPem];
  }

  /**
   * Issues a complete identity in-process: generates a key, builds the CSR
   * and signs it (the development CA, where caller and CA share a process).
   */
  async issueWorkload(spiffeId: string, options: { ttlMs?: number } = {}): Promise<IdentityMaterial> {
    const keys = await generateKeyPair();
    const csr = await createCsr(keys, spiffeId);
    const certChain = await this.sign(csr, { callerIdentity: spiffeId, ...(options.ttlMs !== undefined ? { ttlMs: options.ttlMs } : {}) });
    return createIdentityMaterial({ key: await privateKeyToPem(keys.privateKey), certChain, root: this.rootPem }, { trustDomain: this.trustDomain });
  }

  /** The JWT issuer name of this CA's bootstrap tokens. */
  get tokenIssuer(): string {
    return `meshlet-ca/${this.trustDomain}`;
  }

  /** Mints a short-lived bootstrap token for one namespace/service account (`meshlet token`). */
  mintBootstrapToken(options: MintTokenOptions): string {
    const sub = formatSpiffeId({ trustDomain: this.trustDomain, namespace: options.namespace, serviceAccount: options.serviceAccount });
    const ttl = typeof options.ttl === 'string' ? parseDuration(options.ttl) : (options.ttl ?? HOUR);
    if (typeof ttl === 'string' || !(ttl > 0)) throw new TokenError(`ttl: ${typeof ttl === 'string' ? ttl : 'must be positive'}`);
    const iat = Math.floor(this.#now() / 1000);
    return signJwtEs256({ iss: this.tokenIssuer, sub, aud: BOOTSTRAP_TOKEN_AUDIENCE, iat, nbf: iat, exp: iat + Math.ceil(ttl / 1000), jti: newTokenId() }, this.#tokenKey);
  }

  /**
   * Verifies a bootstrap token minted by this CA, without spending it
   * (inspection; the CA service redeems tokens with {@link redeemBootstrapToken}).
   * @returns the SPIFFE id the token entitles its bearer to.
   * @throws TokenError when it is forged, expired or for another CA.
   */
  verifyBootstrapToken(token: string): SpiffeId {
    return this.#subjectOf(verifyJwtEs256(token, this.#tokenPublicKey, { audience: BOOTSTRAP_TOKEN_AUDIENCE, issuer: this.tokenIssuer, now: this.#now }));
  }

  /**
   * Verifies a bootstrap token and spends it: this CA remembers its `jti`
   * until the token expires and refuses it again, so a captured token cannot
   * be replayed once its workload has used it. Memory is per CA instance.
   * @throws TokenError when it is forged, expired, for another CA, has no jti, or was already redeemed.
   * @throws TokenReplayCacheFullError when too many unexpired tokens are remembered.
   */
  redeemBootstrapToken(token: string): RedeemedToken {
    const claims = verifyJwtEs256(token, this.#tokenPublicKey, { audience: BOOTSTRAP_TOKEN_AUDIENCE, issuer: this.tokenIssuer, now: this.#now });
    const id = this.#subjectOf(claims);
    const jti = claims.jti;
    if (typeof jti !== 'string' || jti.length === 0) throw new TokenError('no jti claim, so it cannot be made single-use');
    // verifyJwtEs256 compares whole seconds: the token verifies until the end of second exp + leeway.
    const until = (claims.exp + TOKEN_LEEWAY_SECONDS + 1) * 1000;
    if (!this.#redeemed.claim(jti, until, this.#now())) {
      throw new TokenError(`already used (jti ${jti}); a bootstrap token is single-use: mint a new one (meshlet token)`);
    }
    let released = false;
    return { id, release: () => { if (!released) { released = true; this.#redeemed.release(jti); } } };
  }

  #subjectOf(claims: BootstrapTokenClaims): SpiffeId {
    try {
      return parseSpiffeId(claims.sub, { trustDomain: this.trustDomain });
    } catch (err) {
      throw new TokenError(`sub: ${(err as Error).message}`);
    }
  }
}

function csrUris(x509: typeof X509, csr: X509.Pkcs10CertificateRequest): string[] {
  const out: string[] = [];
  for (const ext of csr.getExtensions('2.5.29.17')) {
    const san = new x509.SubjectAlternativeNameExtension(ext.rawData);
    for (const name of san.names.items) if (name.type === 'url') out.push(name.value);
  }
  return out;
}
