/**
 * undici connectors for meshed upstreams. An ISTIO_MUTUAL connector presents
 * the workload's current certificate: it reads `identity.current` at each
 * new connection and rebuilds its secure context (and TLS session cache)
 * when the material changed, so after a rotation new connections carry the
 * new certificate while open ones keep going — no failed request.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { connect as tlsConnect, createSecureContext, type SecureContext } from 'node:tls';
import { buildConnector, errors } from 'undici';
import type { IdentityMaterial } from './material.js';
import { ISTIO_MTLS_HTTP11_ALPN, meshTlsParameters, secureContextOptions } from './tls.js';
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
      current = istioMutualConnector(m, tls, timeout ?? 10_000);
    }
    return current(opts, callback);
  };
}

/**
 * An ISTIO_MUTUAL connector for one material generation. undici's own
 * connector always offers ALPN `http/1.1` alone, and an Envoy sidecar's
 * PERMISSIVE inbound then takes the connection for plain TLS to pass through
 * to the app instead of terminating mTLS; this one offers what a sidecar
 * does ({@link ISTIO_MTLS_HTTP11_ALPN}), otherwise connecting as undici's
 * (keep-alive, no delay, connect timeout, a TLS session cache per server name).
 */
function istioMutualConnector(m: IdentityMaterial, tls: Extract<UpstreamTls, { kind: 'istio' }>, timeoutMs: number): buildConnector.connector {
  const secureContext = secureContextFor(m);
  const checkServerIdentity = serverIdentityCheck(tls, trustDomainOf(m.spiffeId));
  const sessions = new Map<string, Buffer>();
  return ({ hostname, port, servername, localAddress, httpSocket }, callback) => {
    const sni = tls.sni ?? (servername || (isIP(hostname) === 0 ? hostname : undefined));
    const sessionKey = sni ?? `${hostname}:${port}`;
    const socket = tlsConnect({
      host: hostname, port: Number(port) || 443, ...(sni !== undefined && { servername: sni }), ...(localAddress && { localAddress }),
      ...(httpSocket !== undefined && { socket: httpSocket }), secureContext, rejectUnauthorized: true, checkServerIdentity,
      ALPNProtocols: [...ISTIO_MTLS_HTTP11_ALPN], session: sessions.get(sessionKey),
    });
    socket.on('session', (session: Buffer) => {
      // Bounded like undici's cache (100 names); the oldest name goes first.
      if (!sessions.has(sessionKey) && sessions.size >= 100) sessions.delete(sessions.keys().next().value!);
      sessions.set(sessionKey, session);
    });
    socket.setKeepAlive(true, 60_000).setNoDelay(true);
    let done = false;
    const finish = (err: Error | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err === null) return void callback(null, socket);
      sessions.delete(sessionKey);
      socket.destroy();
      callback(err, null);
    };
    const timer = setTimeout(() => finish(new errors.ConnectTimeoutError(`Connect Timeout Error (attempted address: ${hostname}:${port}, timeout: ${timeoutMs}ms)`)), timeoutMs);
    timer.unref();
    socket.once('secureConnect', () => finish(null)).on('error', (err) => finish(err));
    return socket;
  };
}
