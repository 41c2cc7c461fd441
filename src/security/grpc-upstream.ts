/**
 * gRPC channel credentials for an endpoint from its cluster's transport
 * (the same resolution the HTTP pools use): ISTIO_MUTUAL → the workload
 * identity through a grpc-js certificate provider (rotation needs no new
 * channel), SPIFFE check of the server; plaintext → the caller's credentials.
 * Credentials are cached per (identity, transport) because the mesh's
 * endpoint channels are keyed by credentials object.
 */
import { type ChannelCredentials, credentials as grpcCredentials, experimental } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { IdentityCertificateProvider } from './grpc-credentials.js';
import { meshTlsParameters } from './tls.js';
import { type UpstreamTls, serverIdentityCheck } from './upstream-tls.js';
import type { WorkloadIdentity } from './workload-identity.js';

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
      const provider = new IdentityCertificateProvider(identity);
      const td = identity.current.spiffeId.slice('spiffe://'.length).split('/')[0]!;
      creds = experimental.createCertificateProviderChannelCredentials(provider, provider, { checkServerIdentity: serverIdentityCheck(tls, td) });
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
