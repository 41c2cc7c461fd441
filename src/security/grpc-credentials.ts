/**
 * gRPC credentials from the same workload identity: a grpc-js
 * CertificateProvider fed by the identity, so channels and servers pick up
 * rotated certificates for new connections with no restart.
 */
import { type ChannelCredentials, type ServerCredentials, experimental } from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { uriSans } from './certificates.js';
import { tryParseSpiffeId } from './identity.js';
import type { IdentityMaterial } from './material.js';
import { type ClientTlsCheckOptions, type ServerTlsMode, spiffeServerIdentityCheck } from './tls.js';
import type { Disposable, WorkloadIdentity } from './workload-identity.js';

type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

/** A grpc-js CertificateProvider that serves a workload identity's root and key/chain. */
export class IdentityCertificateProvider implements experimental.CertificateProvider {
  readonly #identity: WorkloadIdentity;
  readonly #caListeners = new Set<CaListener>();
  readonly #identityListeners = new Set<IdentityListener>();
  #subscription: Disposable | undefined;

  constructor(identity: WorkloadIdentity) {
    this.#identity = identity;
  }

  #updates(m: IdentityMaterial): { ca: experimental.CaCertificateUpdate; id: experimental.IdentityCertificateUpdate } {
    return { ca: { caCertificate: Buffer.from(m.root) }, id: { certificate: Buffer.from(m.certChain.join('')), privateKey: Buffer.from(m.key) } };
  }

  #watch(): void {
    if (this.#subscription) return;
    this.#subscription = this.#identity.onRotate((m) => {
      const { ca, id } = this.#updates(m);
      for (const l of this.#caListeners) l(ca);
      for (const l of this.#identityListeners) l(id);
    });
  }

  #unwatchIfIdle(): void {
    if (this.#caListeners.size === 0 && this.#identityListeners.size === 0) {
      this.#subscription?.dispose();
      this.#subscription = undefined;
    }
  }

  addCaCertificateListener(listener: CaListener): void {
    this.#caListeners.add(listener);
    this.#watch();
    // grpc-js's own providers deliver the first value asynchronously too.
    process.nextTick(listener, this.#updates(this.#identity.current).ca);
  }
  removeCaCertificateListener(listener: CaListener): void {
    this.#caListeners.delete(listener);
    this.#unwatchIfIdle();
  }
  addIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.add(listener);
    this.#watch();
    process.nextTick(listener, this.#updates(this.#identity.current).id);
  }
  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.delete(listener);
    this.#unwatchIfIdle();
  }
}

/**
 * Server credentials: STRICT requires a client certificate from the mesh
 * root; PERMISSIVE requests one but accepts TLS clients without it
 * (grpc-js cannot share one port between TLS and plaintext).
 */
export function grpcServerCredentials(identity: WorkloadIdentity, options: { mode?: ServerTlsMode } = {}): ServerCredentials {
  const provider = new IdentityCertificateProvider(identity);
  return experimental.createCertificateProviderServerCredentials(provider, provider, (options.mode ?? 'STRICT') === 'STRICT');
}

/** Channel credentials for ISTIO_MUTUAL: our certificate, the mesh root, SPIFFE check of the server. */
export function grpcChannelCredentials(identity: WorkloadIdentity, options: ClientTlsCheckOptions = {}): ChannelCredentials {
  const provider = new IdentityCertificateProvider(identity);
  const td = options.trustDomain ?? identity.current.spiffeId.slice('spiffe://'.length).split('/')[0]!;
  return experimental.createCertificateProviderChannelCredentials(provider, provider, {
    checkServerIdentity: spiffeServerIdentityCheck({ ...options, trustDomain: td }),
  });
}

/**
 * The caller's SPIFFE id inside a gRPC handler, from the verified client
 * certificate (grpc-js exposes it only when the handshake authorized it).
 */
export function grpcPeerIdentity(call: { getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null }): string | undefined {
  const cert = call.getAuthContext()?.sslPeerCertificate;
  if (!cert) return undefined;
  for (const uri of uriSans(cert.subjectaltname)) if (typeof tryParseSpiffeId(uri) !== 'string') return uri;
  return undefined;
}
