/**
 * TLS options from a workload identity, for node:tls, https, http2 and
 * undici's connector. SPIFFE replaces hostname verification: a peer is
 * accepted when its certificate chains to the mesh root and its URI SAN is
 * one of the identities the destination may run as.
 */
import type { PeerCertificate, SecureContextOptions, SecureVersion, TLSSocket, TlsOptions, ConnectionOptions } from 'node:tls';
import { dnsSans, uriSans } from './certificates.js';
import { formatSpiffeId, tryParseSpiffeId } from './identity.js';
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

/** Lowest TLS version of every mesh connection (Istio's mesh default; TLS 1.3 is allowed and preferred). */
export const MESH_MIN_TLS_VERSION: SecureVersion = 'TLSv1.2';

/**
 * TLS 1.2 cipher suites a mesh server accepts: Istio's inbound mTLS list
 * (`SupportedCiphers`, pilot/pkg/security/authn/utils/utils.go) — AEAD only,
 * no CBC. TLS 1.3 suites are not configurable here, as in Envoy (OpenSSL's
 * defaults: AES-GCM and ChaCha20-Poly1305).
 */
export const MESH_SERVER_CIPHERS: readonly string[] = Object.freeze([
  'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256', 'AES256-GCM-SHA384', 'AES128-GCM-SHA256',
]);

/**
 * TLS 1.2 cipher suites a mesh client offers: Envoy's default upstream list
 * (Istio sets none for sidecar clusters, so Envoy's applies) — ECDHE + AEAD only.
 */
export const MESH_CLIENT_CIPHERS: readonly string[] = Object.freeze([
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-RSA-CHACHA20-POLY1305', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
]);

/** Which end of a connection TLS options are for. */
export type TlsSide = 'server' | 'client';

const SERVER_CIPHER_LIST = MESH_SERVER_CIPHERS.join(':');
const CLIENT_CIPHER_LIST = MESH_CLIENT_CIPHERS.join(':');

/**
 * `minVersion` and `ciphers` of every TLS server and client meshlet builds.
 * Spread them into each secure context, `setSecureContext` included: node
 * does not carry a server's ciphers over to a context set later.
 */
export function meshTlsParameters(side: TlsSide): { minVersion: SecureVersion; ciphers: string } {
  return { minVersion: MESH_MIN_TLS_VERSION, ciphers: side === 'server' ? SERVER_CIPHER_LIST : CLIENT_CIPHER_LIST };
}

/**
 * key/cert/ca for a secure context (cert is the whole chain, leaf first),
 * with the mesh's TLS version floor and cipher suites for `side` (default server).
 */
export function secureContextOptions(source: IdentitySource, side: TlsSide = 'server'): SecureContextOptions {
  const m = materialOf(source);
  return { key: m.key, cert: m.certChain.join(''), ca: m.root, ...meshTlsParameters(side) };
}

/**
 * ALPN an Envoy sidecar offers on ISTIO_MUTUAL connections: its `istio.alpn`
 * filter's overrides per upstream protocol (pilot/pkg/xds/filters
 * mtlsHTTP11ALPN / mtlsHTTP2ALPN). A sidecar's inbound listener picks its mTLS
 * HTTP filter chain by these (`istio-http/1.1`, `istio-h2`); `http/1.1` / `h2`
 * remain for the protocol actually negotiated.
 */
export const ISTIO_MTLS_HTTP11_ALPN: readonly string[] = Object.freeze(['istio-http/1.1', 'istio', 'http/1.1']);
export const ISTIO_MTLS_H2_ALPN: readonly string[] = Object.freeze(['istio-h2', 'istio', 'h2']);

/** Which application protocols a TLS server speaks, for {@link meshAlpnSelector}. */
export type ServerAlpn = 'http/1.1' | 'h2' | 'h2+http/1.1';

/** ALPN values meaning HTTP/1.x on a mesh connection (served by the HTTP/1.1 parser). */
export const HTTP1_ALPNS: ReadonlySet<string> = new Set(['http/1.1', 'http/1.0', 'istio-http/1.1', 'istio-http/1.0']);

const SERVER_ALPN_PREFERENCE: Record<ServerAlpn, readonly string[]> = {
  'http/1.1': ['http/1.1', 'istio-http/1.1', 'http/1.0', 'istio-http/1.0', 'istio'],
  // gRPC: every mesh connection is HTTP/2, whichever Istio name the client used.
  h2: ['h2', 'istio-h2', 'istio'],
  'h2+http/1.1': ['h2', 'http/1.1', 'istio-h2', 'istio-http/1.1', 'http/1.0', 'istio-http/1.0', 'istio'],
};

/**
 * An `ALPNCallback` that accepts what Envoy sidecars offer as well as plain
 * clients: the standard names first, then Istio's (`istio-h2`,
 * `istio-http/1.1`, and `istio` from a sidecar that proxies the connection
 * as TCP). Never `istio-peer-exchange`: selecting it makes a sidecar run
 * TCP metadata exchange on the stream. Undefined (a handshake alert, as
 * before) when the client offers nothing this server speaks.
 */
export function meshAlpnSelector(alpn: ServerAlpn): (info: { protocols: string[] }) => string | undefined {
  const preference = SERVER_ALPN_PREFERENCE[alpn];
  return ({ protocols }) => preference.find((p) => protocols.includes(p));
}

/**
 * Server options: always ask for a client certificate; STRICT rejects
 * handshakes without a valid one, PERMISSIVE lets them through (the peer is
 * then anonymous). Pair with {@link enforcePeerTrustDomain} to also refuse
 * certificates from a foreign trust domain under the same root. With `alpn`,
 * the server also accepts Istio's ALPN names ({@link meshAlpnSelector});
 * without it, node's own ALPN settings apply (https: http/1.1 only).
 */
export function serverTlsOptions(source: IdentitySource, options: { mode?: ServerTlsMode; alpn?: ServerAlpn } = {}): TlsOptions {
  return {
    ...secureContextOptions(source), requestCert: true, rejectUnauthorized: (options.mode ?? 'STRICT') === 'STRICT',
    ...(options.alpn !== undefined && { ALPNCallback: meshAlpnSelector(options.alpn) }),
  };
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

/** Istio's control plane identity in a trust domain: `spiffe://<td>/ns/istio-system/sa/istiod`. */
export function istiodSpiffeId(trustDomain: string): string {
  return formatSpiffeId({ trustDomain, namespace: 'istio-system', serviceAccount: 'istiod' });
}

/** istiod's DNS name in its serving certificate (default revision; pilot/pkg/bootstrap/server.go getDNSNames). */
export const ISTIOD_DNS_NAME = 'istiod.istio-system.svc';

/**
 * The name istio-agent verifies istiod by (pilot/pkg/grpc/tls.go): the host
 * of `target`, `istiod.istio-system.svc` when that host is localhost (port
 * forwarding) or an address meshlet cannot pin (an IP), `override` (ISTIOD_SAN) first.
 */
export function istiodServerName(target: string, override?: string): string {
  if (override !== undefined && override.length > 0) return override;
  const host = hostOf(target);
  if (host === undefined || host.includes('localhost') || /^[\d.]+$/.test(host) || host.includes(':')) return ISTIOD_DNS_NAME;
  return host;
}

/** The host of a grpc-js target (`host:port`, `dns:///host:port`, `[v6]:port`); undefined for unix sockets. */
function hostOf(target: string): string | undefined {
  if (target.startsWith('unix:')) return undefined;
  const authority = target.replace(/^[a-z0-9+.-]+:\/\/[^/]*\//i, '').replace(/^dns:/i, '');
  if (authority.startsWith('[')) return authority.slice(1, authority.indexOf(']'));
  const colon = authority.lastIndexOf(':');
  return colon > 0 && authority.indexOf(':') === colon ? authority.slice(0, colon) : authority;
}

/**
 * A `checkServerIdentity` that pins a control plane's identity (the CA, and
 * ADS over TLS): the certificate must carry `pin` exactly — as a URI SAN when
 * the pin is a `spiffe://` id (meshlet's control plane), else as a DNS SAN
 * (Istio's istiod serves 15012 with DNS SANs only, e.g.
 * `istiod.istio-system.svc`). DNS names compare case-insensitively with no
 * wildcards and no fallback to the subject CN or the dialled host.
 * Chain validation is the caller's (`rejectUnauthorized` against the root).
 */
export function pinnedServerIdentityCheck(pin: string): (host: string, cert: PeerCertificate) => Error | undefined {
  const spiffe = pin.startsWith('spiffe://');
  const want = spiffe ? pin : pin.toLowerCase().replace(/\.$/, '');
  return (_host, cert) => {
    const names = spiffe ? uriSans(cert.subjectaltname) : dnsSans(cert.subjectaltname).map((n) => n.toLowerCase());
    if (names.includes(want)) return undefined;
    const err = new Error(`control plane certificate ${spiffe ? 'URI' : 'DNS'} SANs [${names.join(', ')}] do not include the pinned identity ${pin}`) as Error & { code: string };
    err.code = 'ERR_MESH_PEER_IDENTITY';
    return err;
  };
}

/** Client options for an ISTIO_MUTUAL connection: our certificate, the mesh root, SPIFFE peer check. */
export function clientTlsOptions(source: IdentitySource, options: ClientTlsCheckOptions = {}): ConnectionOptions {
  const m = materialOf(source);
  return {
    ...secureContextOptions(m, 'client'),
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

const localCache = Symbol('meshlet.localIdentity');
type LocalCachedSocket = TLSSocket & { [localCache]?: string | null };

/**
 * The SPIFFE id of the certificate this side presented on a TLS socket (the
 * stats filter's local SAN: destination_principal inbound, source_principal
 * outbound), or undefined on plaintext. Cached on the socket.
 */
export function localIdentity(socket: TLSSocket | { encrypted?: boolean } | undefined | null): string | undefined {
  const s = socket as LocalCachedSocket | undefined | null;
  if (!s || s.encrypted !== true || typeof s.getCertificate !== 'function') return undefined;
  const cached = s[localCache];
  if (cached !== undefined) return cached ?? undefined;
  let id: string | null = null;
  const cert = s.getCertificate();
  if (cert !== null && 'subjectaltname' in cert) {
    for (const uri of uriSans(cert.subjectaltname)) {
      if (typeof tryParseSpiffeId(uri) !== 'string') {
        id = uri;
        break;
      }
    }
  }
  s[localCache] = id;
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
