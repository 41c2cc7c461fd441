/**
 * gRPC channel credentials for an endpoint from its cluster's transport
 * (the same resolution the HTTP pools use): ISTIO_MUTUAL → the workload
 * identity's current certificate at each connection (rotation needs no new
 * channel), SPIFFE check of the server, and a sidecar's ALPN;
 * plaintext → the caller's credentials.
 * Credentials are cached per (identity, transport) because the mesh's
 * endpoint channels are keyed by credentials object.
 */
import { type CallCredentials, type ChannelOptions, ChannelCredentials, credentials as grpcCredentials } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { isIP, type Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext } from 'node:tls';
import { secureContextFor } from './upstream-connector.js';
import { ISTIO_MTLS_H2_ALPN, meshTlsParameters } from './tls.js';
import { type UpstreamTls, serverIdentityCheck } from './upstream-tls.js';
import type { WorkloadIdentity } from './workload-identity.js';

/**
 * ISTIO_MUTUAL for grpc-js channels. grpc-js's TLS credentials always offer
 * ALPN `h2` alone, which an Envoy sidecar's PERMISSIVE inbound takes for
 * plain TLS to pass through (and STRICT for opaque TCP); these offer what a
 * sidecar sends for HTTP/2 ({@link ISTIO_MTLS_H2_ALPN}) with the mesh's
 * client TLS parameters, through grpc-js's credentials extension point.
 */
class IstioMutualChannelCredentials extends ChannelCredentials {
  readonly #identity: WorkloadIdentity;
  readonly #tls: Extract<UpstreamTls, { kind: 'istio' }>;

  constructor(identity: WorkloadIdentity, tls: Extract<UpstreamTls, { kind: 'istio' }>) {
    super();
    this.#identity = identity;
    this.#tls = tls;
  }

  override _isSecure(): boolean {
    return true;
  }

  override _equals(other: ChannelCredentials): boolean {
    return other === this;
  }

  override _createSecureConnector(channelTarget: { path: string }, options: ChannelOptions, callCredentials?: CallCredentials): ReturnType<ChannelCredentials['_createSecureConnector']> {
    const host = hostOf(channelTarget.path);
    const override = options['grpc.ssl_target_name_override'] as string | undefined;
    const sni = this.#tls.sni ?? override ?? (isIP(host) === 0 ? host : undefined);
    const identity = this.#identity;
    const tls = this.#tls;
    const calls = callCredentials ?? grpcCredentials.createEmpty();
    return {
      connect: (socket: Socket) => new Promise((resolve, reject) => {
        const m = identity.current;
        const secure = tlsConnect({
          socket, secureContext: secureContextFor(m), ALPNProtocols: [...ISTIO_MTLS_H2_ALPN], rejectUnauthorized: true,
          checkServerIdentity: serverIdentityCheck(tls, m.spiffeId.slice('spiffe://'.length).split('/')[0]!), ...(sni !== undefined && { servername: sni }),
        }, () => resolve({ socket: secure, secure: true }));
        secure.once('error', reject);
      }),
      waitForReady: () => Promise.resolve(),
      getCallCredentials: () => calls,
      destroy: () => {},
    };
  }
}

/** The host of a grpc-js target path (`host:port`, `[v6]:port`). */
function hostOf(path: string): string {
  if (path.startsWith('[')) return path.slice(1, path.indexOf(']'));
  const colon = path.lastIndexOf(':');
  return colon > 0 && path.indexOf(':') === colon ? path.slice(0, colon) : path;
}

const cache = new WeakMap<WorkloadIdentity | object, Map<string, ChannelCredentials>>();
const noIdentity = {};

/**
 * The credentials for a channel to an endpoint with transport `tls`;
 * `plaintext` is returned for plaintext endpoints (and auto-mTLS without an identity).
 * @throws Error for ISTIO_MUTUAL without an identity, or unreadable SIMPLE/MUTUAL files.
 */
export function upstreamChannelCredentials(tls: UpstreamTls, identity: WorkloadIdentity | undefined, plaintext: ChannelCredentials): ChannelCredentials {
  if (tls.kind === 'plaintext' || (tls.kind === 'istio' && tls.auto && identity === undefined)) return plaintext;
  let byKey = cache.get(identity ?? noIdentity);
  if (byKey === undefined) cache.set(identity ?? noIdentity, (byKey = new Map()));
  let creds = byKey.get(tls.key);
  if (creds === undefined) {
    if (tls.kind === 'istio') {
      if (identity === undefined) throw new Error('ISTIO_MUTUAL needs a workload identity');
      creds = new IstioMutualChannelCredentials(identity, tls);
    } else {
      // SIMPLE/MUTUAL: our own secure context, so Envoy's upstream TLS defaults apply (createSsl takes no ciphers).
      const context = createSecureContext({
        ...meshTlsParameters('client'),
        ...(tls.caFile !== undefined && { ca: readFileSync(tls.caFile) }),
        ...(tls.certFile !== undefined && tls.keyFile !== undefined && { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }),
      });
      creds = grpcCredentials.createFromSecureContext(context, {
        ...(tls.verify ? { checkServerIdentity: serverIdentityCheck(tls, undefined) } : { checkServerIdentity: () => undefined }),
      });
    }
    byKey.set(tls.key, creds);
  }
  return creds;
}
