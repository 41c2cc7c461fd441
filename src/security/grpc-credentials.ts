/**
 * gRPC credentials from the same workload identity: a grpc-js
 * CertificateProvider fed by the identity, so channels and servers pick up
 * rotated certificates for new connections with no restart.
 */
import { type ChannelCredentials, ServerCredentials, credentials, experimental } from '@grpc/grpc-js';
import { type PeerCertificate, type SecureContextOptions, createSecureContext } from 'node:tls';
import { uriSans } from './certificates.js';
import { tryParseSpiffeId } from './identity.js';
import type { IdentityMaterial } from './material.js';
import { type ClientTlsCheckOptions, type ServerTlsMode, meshAlpnSelector, meshTlsParameters, pinnedServerIdentityCheck, secureContextOptions, spiffeServerIdentityCheck } from './tls.js';
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
 * Server credentials fed by the identity, carrying the mesh's TLS floor and
 * cipher suites in every secure context. grpc-js's own certificate-provider
 * credentials take ciphers only from GRPC_SSL_CIPHER_SUITES and drop them at
 * the first rotation (node's setSecureContext keeps none), so meshlet builds
 * the context options itself through ServerCredentials' subclass hooks.
 */
class IdentityServerCredentials extends ServerCredentials {
  readonly #identity: WorkloadIdentity;
  #material: IdentityMaterial;
  #subscription: Disposable | undefined;

  constructor(identity: WorkloadIdentity, requireClientCertificate: boolean) {
    // ALPN: an Envoy sidecar's gRPC arrives as istio-h2 (or istio, proxied as TCP); node's http2 default accepts only h2.
    super({ requestCert: true, rejectUnauthorized: requireClientCertificate, ...meshTlsParameters('server'), ALPNCallback: meshAlpnSelector('h2') }, contextOptions(identity.current));
    this.#identity = identity;
    this.#material = identity.current;
  }

  #publish(m: IdentityMaterial): void {
    this.#material = m;
    this.updateSecureContextOptions(contextOptions(m));
  }

  override _addWatcher(watcher: Parameters<ServerCredentials['_addWatcher']>[0]): void {
    super._addWatcher(watcher);
    if (this.#subscription) return;
    this.#subscription = this.#identity.onRotate((m) => this.#publish(m));
    // A rotation while nobody watched: the server just built from stale options gets the current ones.
    if (this.#identity.current !== this.#material) this.#publish(this.#identity.current);
  }

  override _removeWatcher(watcher: Parameters<ServerCredentials['_removeWatcher']>[0]): void {
    super._removeWatcher(watcher);
    if (this.getWatcherCount() === 0) {
      this.#subscription?.dispose();
      this.#subscription = undefined;
    }
  }

  override _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}

function contextOptions(m: IdentityMaterial): SecureContextOptions {
  return secureContextOptions(m, 'server');
}

/**
 * Server credentials: STRICT requires a client certificate from the mesh
 * root; PERMISSIVE requests one but accepts TLS clients without it
 * (grpc-js cannot share one port between TLS and plaintext). TLS 1.2+ with
 * Istio's mesh cipher suites; new handshakes use the rotated certificate.
 */
export function grpcServerCredentials(identity: WorkloadIdentity, options: { mode?: ServerTlsMode } = {}): ServerCredentials {
  return new IdentityServerCredentials(identity, (options.mode ?? 'STRICT') === 'STRICT');
}

/**
 * Channel credentials for ISTIO_MUTUAL: our certificate, the mesh root, SPIFFE
 * check of the server. grpc-js builds these secure contexts itself, so the
 * client offers node's default suites (TLS 1.2+) unless GRPC_SSL_CIPHER_SUITES
 * is set; mesh servers accept only `MESH_SERVER_CIPHERS` (tls.ts).
 */
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

/** Options of {@link controlPlaneChannelCredentials}. */
export interface ControlPlaneCredentialsOptions {
  /** PEM root the control plane's certificate must chain to. */
  root: string;
  /** The pinned control plane identity (see `pinnedServerIdentityCheck`): a `spiffe://` URI SAN or a DNS SAN. */
  serverIdentity: string;
  /** Our current material, presented as the client certificate (CA renewals); none for a token-only call. */
  material?: IdentityMaterial;
}

/**
 * Channel credentials for talking to the control plane (the CA; ADS over
 * TLS): chain to `root`, the pinned identity, TLS 1.2+ with the mesh client
 * suites. A certificate of any other workload of the mesh fails the
 * handshake, so nothing — a bootstrap token included — is sent to it.
 */
export function controlPlaneChannelCredentials(options: ControlPlaneCredentialsOptions): ChannelCredentials {
  const m = options.material;
  const context = createSecureContext({
    ...meshTlsParameters('client'),
    ca: options.root,
    ...(m && { key: m.key, cert: m.certChain.join('') }),
  });
  return credentials.createFromSecureContext(context, { checkServerIdentity: pinnedServerIdentityCheck(options.serverIdentity) });
}

/**
 * Channel credentials for a long-lived stream to the control plane (ADS over
 * TLS): the workload's rotating certificate as client certificate, the mesh
 * root, and the same pinned control-plane identity as the CA client
 * ({@link controlPlaneChannelCredentials}). grpc-js builds these contexts
 * itself (certificate provider), so the mesh client suites cannot be set here.
 */
export function rotatingControlPlaneCredentials(identity: WorkloadIdentity, serverIdentity: string): ChannelCredentials {
  const provider = new IdentityCertificateProvider(identity);
  return experimental.createCertificateProviderChannelCredentials(provider, provider, { checkServerIdentity: pinnedServerIdentityCheck(serverIdentity) });
}
