/**
 * TLS options from a workload identity, for node:tls, https, http2 and
 * undici's connector. SPIFFE replaces hostname verification: a peer is
 * accepted when its certificate chains to the mesh root and its URI SAN is
 * one of the identities the destination may run as.
 */
import type { PeerCertificate, SecureContextOptions, TLSSocket, TlsOptions, ConnectionOptions } from 'node:tls';
import { uriSans } from './certificates.js';
import { tryParseSpiffeId } from './identity.js';
import type { IdentityMaterial } from './material.js';
import type { WorkloadIdentity } from './workload-identity.js';

/** PeerAuthentication mTLS modes that involve TLS on the server side. */
export type ServerTlsMode = 'STRICT' | 'PERMISSIVE';

/** A live identity or one generation of its material. */
export type IdentitySource = WorkloadIdentity | IdentityMaterial;

function materialOf(source: IdentitySource): IdentityMaterial {
  return 'current' in source ? source.current : source;
}

/** The trust domain of a SPIFFE id (`spiffe://<td>/…`). */
function trustDomainOf(spiffeId: string): string {
  const rest = spiffeId.slice('spiffe://'.length);
  return rest.slice(0, rest.indexOf('/'));
}

/** key/cert/ca for a secure context (cert is the whole chain, leaf first). */
export function secureContextOptions(source: IdentitySource): SecureContextOptions {
  const m = materialOf(source);
  return { key: m.key, cert: m.certChain.join(''), ca: m.root, minVersion: 'TLSv1.2' };
}

/**
 * Server options: always ask for a client certificate; STRICT rejects
 * handshakes without a valid one, PERMISSIVE lets them through (the peer is
 * then anonymous). Pair with {@link enforcePeerTrustDomain} to also refuse
 * certificates from a foreign trust domain under the same root.
 */
export function serverTlsOptions(source: IdentitySource, options: { mode?: ServerTlsMode } = {}): TlsOptions {
  return { ...secureContextOptions(source), requestCert: true, rejectUnauthorized: (options.mode ?? 'STRICT') === 'STRICT' };
}

/** Options for {@link clientTlsOptions} and {@link spiffeServerIdentityCheck}. */
export interface ClientTlsCheckOptions {
  /** The SPIFFE ids the destination may run as (Istio's subjectAltNames / service accounts). Empty or absent: any id of the trust domain. */
  expectedSpiffeIds?: readonly string[];
  /** Trust domain accepted when no ids are given (default: the local identity's). */
  trustDomain?: string;
}

/**
 * A `checkServerIdentity` that checks the peer's URI SANs instead of the
 * hostname. Returns an Error (the TLS handshake then fails) or undefined.
 */
export function spiffeServerIdentityCheck(options: ClientTlsCheckOptions & { trustDomain: string }): (host: string, cert: PeerCertificate) => Error | undefined {
  const expected = options.expectedSpiffeIds && options.expectedSpiffeIds.length > 0 ? new Set(options.expectedSpiffeIds) : undefined;
  const trustDomain = options.trustDomain;
  return (_host, cert) => {
    const uris = uriSans(cert.subjectaltname);
    for (const uri of uris) {
      if (expected ? expected.has(uri) : typeof tryParseSpiffeId(uri, { trustDomain }) !== 'string') return undefined;
    }
    const want = expected ? `one of ${[...expected].join(', ')}` : `a SPIFFE id in trust domain ${trustDomain}`;
    const err = new Error(`peer SPIFFE identity [${uris.join(', ')}] is not ${want}`) as Error & { code: string };
    err.code = 'ERR_MESH_PEER_IDENTITY';
    return err;
  };
}

/** Client options for an ISTIO_MUTUAL connection: our certificate, the mesh root, SPIFFE peer check. */
export function clientTlsOptions(source: IdentitySource, options: ClientTlsCheckOptions = {}): ConnectionOptions {
  const m = materialOf(source);
  return {
    ...secureContextOptions(m),
    rejectUnauthorized: true,
    checkServerIdentity: spiffeServerIdentityCheck({ ...options, trustDomain: options.trustDomain ?? trustDomainOf(m.spiffeId) }),
  };
}

const peerCache = Symbol('meshlet.peerIdentity');
type CachedSocket = TLSSocket & { [peerCache]?: string | null };

/**
 * The SPIFFE id of an authenticated TLS peer, or undefined when the socket is
 * plaintext, the peer sent no certificate, or it failed verification.
 * Cached on the socket: keep-alive requests pay for it once.
 */
export function peerIdentity(socket: TLSSocket | { encrypted?: boolean } | undefined | null): string | undefined {
  const s = socket as CachedSocket | undefined | null;
  if (!s || s.encrypted !== true) return undefined;
  const cached = s[peerCache];
  if (cached !== undefined) return cached ?? undefined;
  let id: string | null = null;
  if (s.authorized) {
    for (const uri of uriSans(s.getPeerCertificate().subjectaltname)) {
      if (typeof tryParseSpiffeId(uri) !== 'string') {
        id = uri;
        break;
      }
    }
  }
  s[peerCache] = id;
  return id ?? undefined;
}

/**
 * Destroys TLS connections whose authenticated peer is not in the trust
 * domain (a certificate from the same root but another domain). Anonymous
 * peers are left to the mode: STRICT already refused them in the handshake.
 */
export function enforcePeerTrustDomain(server: { on(event: 'secureConnection', l: (s: TLSSocket) => void): unknown; off(event: 'secureConnection', l: (s: TLSSocket) => void): unknown }, trustDomain: string): { dispose(): void } {
  const listener = (socket: TLSSocket): void => {
    if (!socket.authorized) return;
    const id = peerIdentity(socket);
    if (id === undefined || trustDomainOf(id) !== trustDomain) socket.destroy();
  };
  server.on('secureConnection', listener);
  return { dispose: () => void server.off('secureConnection', listener) };
}
