/**
 * undici connectors for meshed upstreams. An ISTIO_MUTUAL connector presents
 * the workload's current certificate: it reads `identity.current` at each
 * new connection and rebuilds its secure context (and TLS session cache)
 * when the material changed, so after a rotation new connections carry the
 * new certificate while open ones keep going — no failed request.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { buildConnector } from 'undici';
import type { IdentityMaterial } from './material.js';
import { meshTlsParameters, secureContextOptions } from './tls.js';
import { type UpstreamTls, serverIdentityCheck } from './upstream-tls.js';
import type { WorkloadIdentity } from './workload-identity.js';

/** Options of {@link createUpstreamConnector}. */
export interface UpstreamConnectorOptions {
  /** Connect (TCP + handshake) timeout in ms. */
  timeout?: number;
}

/** A secure context per material generation, shared by every connector of the process's meshes. */
const contexts = new WeakMap<IdentityMaterial, SecureContext>();

/** The node:tls client SecureContext of one material generation (parsed once), with the mesh's TLS parameters. */
export function secureContextFor(material: IdentityMaterial): SecureContext {
  let ctx = contexts.get(material);
  if (ctx === undefined) contexts.set(material, (ctx = createSecureContext(secureContextOptions(material, 'client'))));
  return ctx;
}

function trustDomainOf(spiffeId: string): string {
  const rest = spiffeId.slice('spiffe://'.length);
  return rest.slice(0, rest.indexOf('/'));
}

/**
 * A connector for a TLS profile (the pool's origin must be `https:`).
 * @throws Error when the profile needs the workload identity and there is none,
 *   or a SIMPLE/MUTUAL file cannot be read.
 */
export function createUpstreamConnector(tls: Exclude<UpstreamTls, { kind: 'plaintext' }>, identity: WorkloadIdentity | undefined, options: UpstreamConnectorOptions = {}): buildConnector.connector {
  const timeout = options.timeout;
  if (tls.kind === 'tls') {
    // Files are read once, when the pool is created; a DestinationRule change makes a new pool.
    // SIMPLE/MUTUAL: Envoy's upstream defaults too (TLS 1.2+, ECDHE + AEAD suites).
    const connector = buildConnector({
      ...(timeout !== undefined && { timeout }),
      ...meshTlsParameters('client'),
      ...(tls.caFile !== undefined && { ca: readFileSync(tls.caFile, 'utf8') }),
      ...(tls.certFile !== undefined && tls.keyFile !== undefined && { cert: readFileSync(tls.certFile, 'utf8'), key: readFileSync(tls.keyFile, 'utf8') }),
      ...(tls.sni !== undefined && { servername: tls.sni }),
      rejectUnauthorized: tls.verify,
      ...(tls.verify && { checkServerIdentity: serverIdentityCheck(tls, undefined) }),
    } as buildConnector.BuildOptions);
    return connector;
  }
  if (identity === undefined) throw new Error('ISTIO_MUTUAL needs a workload identity: createMesh({ certs | ca }) or a control-plane CA');
  let material: IdentityMaterial | undefined;
  let current: buildConnector.connector | undefined;
  return (opts, callback) => {
    const m = identity.current;
    if (m !== material || current === undefined) {
      material = m;
      current = buildConnector({
        ...(timeout !== undefined && { timeout }),
        secureContext: secureContextFor(m),
        ...(tls.sni !== undefined && { servername: tls.sni }),
        rejectUnauthorized: true,
        checkServerIdentity: serverIdentityCheck(tls, trustDomainOf(m.spiffeId)),
      } as buildConnector.BuildOptions);
    }
    return current(opts, callback);
  };
}
