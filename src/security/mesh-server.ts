/**
 * The server behind `mesh.createServer(handler)`: one listening socket whose
 * connections are sorted by their first bytes (0x16 opens every TLS
 * handshake; with `http2`, the HTTP/2 preface opens an h2c connection) and by
 * the PeerAuthentication mode of the port they arrived on, read per
 * connection so a config push applies to new connections:
 *
 *   STRICT      TLS with a client certificate from the mesh root; plaintext is closed
 *   PERMISSIVE  mTLS, TLS without a certificate (anonymous) and plaintext
 *   DISABLE     plaintext only (TLS bytes reach the HTTP parser and fail, as behind a sidecar)
 *
 * With `http2`, TLS connections negotiate h2 or http/1.1 by ALPN and
 * plaintext ones speak h2c (prior knowledge) or HTTP/1.1, all on one port.
 * Authenticated peers must belong to the trust domain; a certificate that
 * fails verification is refused in every mode. Certificates rotate with the
 * identity (`setSecureContext`); open connections keep theirs.
 */
import { Server as NetServer, type Socket } from 'node:net';
import { createServer as createHttpServer, type RequestListener, type Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Http2SecureServer, Http2Server } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { FirstBytesRouter, sniffProtocol } from './first-bytes.js';
import {
  type AnyRequestListener, Http2Sessions, type MeshRequestListener, type MeshTlsServer, createH2cServer, createMeshTlsServer,
} from './mesh-http2.js';
import { applyIdleTimeout, handshakeTimeout, httpServerOptions, resolveServerTimeouts, type ServerTimeouts } from './server-timeouts.js';
import { HTTP1_ALPNS, peerIdentity, serverTlsOptions } from './tls.js';
import type { MtlsMode } from './peer-authentication.js';
import type { Disposable, WorkloadIdentity } from './workload-identity.js';

/** Options of {@link createMeshServer}. */
export interface MeshServerOptions {
  /** The workload identity; without one the server is plaintext only. */
  identity: WorkloadIdentity | undefined;
  /** The PeerAuthentication mode for a connection to local `port` (read per connection). */
  modeFor: (port: number | undefined) => MtlsMode;
  /** Authenticated peers must be in this trust domain (default: the identity's). */
  trustDomain?: string;
  /** Connections that send nothing for this long are closed (default 10 s). */
  firstByteTimeoutMs?: number;
  /**
   * Also serve HTTP/2 (default false): ALPN h2 or http/1.1 on TLS, h2c with
   * prior knowledge or HTTP/1.1 on plaintext. The handler then also gets
   * `Http2ServerRequest` / `Http2ServerResponse`.
   */
  http2?: boolean;
  /** Header, request, idle and keep-alive timeouts (Envoy's HCM names; defaults in server-timeouts.ts). */
  timeouts?: ServerTimeouts;
}

/** Where a connection goes after its first bytes. */
type Target = 'strict' | 'permissive' | 'plain' | 'h2c' | 'reject';

function trustDomainOf(spiffeId: string): string {
  const rest = spiffeId.slice('spiffe://'.length);
  return rest.slice(0, rest.indexOf('/'));
}

/**
 * Runs `allow` on every TLS connection before the HTTP layer's own
 * `secureConnection` listener, which a refused socket then never reaches
 * (no request parsed, no HTTP/2 session opened).
 */
function gateSecureConnections(server: MeshTlsServer, allow: (socket: TLSSocket) => boolean, divert?: (socket: TLSSocket) => boolean): void {
  const serve = server.listeners('secureConnection') as ((socket: TLSSocket) => void)[];
  server.removeAllListeners('secureConnection');
  server.on('secureConnection', (socket: TLSSocket) => {
    if (!allow(socket) || divert?.(socket) === true) return;
    for (const listener of serve) listener.call(server, socket);
  });
}

/**
 * An http2 server serves every ALPN but `http/1.1` as HTTP/2; the other
 * HTTP/1 names a sidecar negotiates (`istio-http/1.1`, and `istio` for a
 * connection it proxies as TCP) go to the HTTP/1.1 parser instead.
 */
function speaksHttp1(socket: TLSSocket): boolean {
  const alpn = socket.alpnProtocol;
  return typeof alpn === 'string' && alpn !== 'http/1.1' && (HTTP1_ALPNS.has(alpn) || alpn === 'istio');
}

/**
 * A net.Server that serves HTTP/1.1 (and with `http2`, HTTP/2) over mTLS,
 * TLS and plaintext per PeerAuthentication. `listen`, `address` and `close`
 * behave as on any node server; `close()` also closes idle keep-alive
 * connections and HTTP/2 sessions. `T` is the TLS server: https, or with
 * `http2` an http2 secure server (HTTP/1.1 allowed); plain `MeshServer` is either.
 */
export class MeshServer<T extends MeshTlsServer = MeshTlsServer> extends NetServer {
  /** TLS server requiring a verified client certificate (STRICT). */
  readonly strictServer: T | undefined;
  /** TLS server accepting clients with or without a certificate (PERMISSIVE). */
  readonly permissiveServer: T | undefined;
  /** Plaintext HTTP/1.1 server (PERMISSIVE, DISABLE). */
  readonly plainServer: HttpServer;
  /** Plaintext HTTP/2 server for prior-knowledge (h2c) connections (PERMISSIVE, DISABLE), with `http2`. */
  readonly h2cServer: Http2Server | undefined;
  /** Connections refused by mode or identity (tests, debugging). */
  rejected = 0;
  readonly #router: FirstBytesRouter<Target>;
  readonly #sessions = new Http2Sessions();
  readonly #rotation: Disposable | undefined;

  /** @internal use {@link createMeshServer} */
  constructor(handler: AnyRequestListener, options: MeshServerOptions) {
    super();
    const serve = handler as MeshRequestListener;
    const identity = options.identity;
    const http2 = options.http2 === true;
    const timeouts = resolveServerTimeouts(options.timeouts);
    const httpOptions = httpServerOptions(timeouts);
    this.plainServer = createHttpServer(httpOptions, serve as RequestListener);
    if (http2) {
      this.h2cServer = createH2cServer(serve);
      this.#sessions.track(this.h2cServer);
    }
    if (identity !== undefined) {
      const trustDomain = options.trustDomain ?? trustDomainOf(identity.current.spiffeId);
      // Istio's ALPN names too, so a sidecar's mTLS (istio-http/1.1, istio-h2, istio) is accepted.
      const alpn = http2 ? 'h2+http/1.1' : 'http/1.1';
      const tls = (mode: 'STRICT' | 'PERMISSIVE') => ({ ...serverTlsOptions(identity, { mode, alpn }), ...httpOptions, ...handshakeTimeout(timeouts) });
      const strict = createMeshTlsServer(tls('STRICT'), serve, http2);
      const permissive = createMeshTlsServer(tls('PERMISSIVE'), serve, http2);
      this.strictServer = strict as T;
      this.permissiveServer = permissive as T;
      const check = (socket: TLSSocket): boolean => {
        // No client certificate: an anonymous TLS peer (PERMISSIVE; STRICT refused it in the handshake).
        // Checked first because a resumed session without one reports `authorized` true.
        if (socket.getPeerCertificate()?.raw === undefined) return true;
        if (socket.authorized) {
          const id = peerIdentity(socket);
          if (id !== undefined && trustDomainOf(id) === trustDomain) return true;
        }
        this.rejected++;
        socket.destroy();
        return false;
      };
      const toHttp1 = http2 ? (socket: TLSSocket): boolean => {
        if (!speaksHttp1(socket)) return false;
        this.plainServer.emit('connection', socket);
        return true;
      } : undefined;
      for (const server of [strict, permissive]) {
        gateSecureConnections(server, check, toHttp1);
        if (http2) this.#sessions.track(server);
      }
      this.#rotation = identity.onRotate((m) => {
        strict.setSecureContext(serverTlsOptions(m, { mode: 'STRICT' }));
        permissive.setSecureContext(serverTlsOptions(m, { mode: 'PERMISSIVE' }));
      });
    }

    for (const server of [this.plainServer, this.h2cServer, this.strictServer, this.permissiveServer]) {
      if (server === undefined) continue;
      applyIdleTimeout(server, timeouts);
      // HTTP/1.1 fallback of an http2 secure server reads these from the server object.
      Object.assign(server, httpOptions);
      // node starts checking header/request timeouts when a server emits 'listening'; these never listen
      // (connections come from this socket's router), so without it a slowloris is never timed out.
      server.emit('listening');
    }

    this.#router = new FirstBytesRouter<Target>({
      ...(options.firstByteTimeoutMs !== undefined && { timeoutMs: options.firstByteTimeoutMs }),
      classify: (head, socket) => this.#classify(head, this.strictServer === undefined ? 'DISABLE' : options.modeFor(socket.localPort)),
      route: (socket, target) => this.#route(socket, target),
    });
    this.on('connection', this.#router.accept);
  }

  #classify(head: Buffer, mode: MtlsMode): Target | undefined {
    // STRICT refuses plaintext on its first byte, h2c preface or not.
    const protocol = sniffProtocol(head, { h2c: this.h2cServer !== undefined && mode !== 'STRICT' });
    if (protocol === undefined) return undefined;
    if (protocol === 'tls' && mode !== 'DISABLE') return mode === 'STRICT' ? 'strict' : 'permissive';
    if (mode === 'STRICT') return 'reject';
    return protocol === 'h2c' ? 'h2c' : 'plain';
  }

  #route(socket: Socket, target: Target): void {
    switch (target) {
      case 'strict': return void this.strictServer!.emit('connection', socket);
      case 'permissive': return void this.permissiveServer!.emit('connection', socket);
      case 'h2c': return void this.h2cServer!.emit('connection', socket);
      case 'plain': return void this.plainServer.emit('connection', socket);
      case 'reject':
        this.rejected++;
        socket.destroy();
    }
  }

  /** Stops listening, closes idle connections and HTTP/2 sessions (GOAWAY) and stops following rotations. */
  override close(callback?: (err?: Error) => void): this {
    super.close(callback);
    this.#rotation?.dispose();
    this.strictServer?.close();
    this.permissiveServer?.close();
    this.h2cServer?.close();
    this.plainServer.close();
    this.#sessions.close();
    return this;
  }

  /** Destroys every connection, active ones and HTTP/2 sessions included. */
  closeAllConnections(): void {
    this.#sessions.destroy();
    this.#router.destroyAll();
  }
}

/** Creates the server behind `mesh.createServer(handler)`; pass `http2: true` to also serve HTTP/2. */
export function createMeshServer(handler: MeshRequestListener, options: MeshServerOptions & { http2: true }): MeshServer<Http2SecureServer>;
export function createMeshServer(handler: AnyRequestListener, options: MeshServerOptions & { http2: true }): MeshServer<Http2SecureServer>;
export function createMeshServer(handler: RequestListener, options: MeshServerOptions & { http2?: false }): MeshServer<HttpsServer>;
export function createMeshServer(handler: AnyRequestListener, options: MeshServerOptions): MeshServer;
export function createMeshServer(handler: AnyRequestListener, options: MeshServerOptions): MeshServer {
  return new MeshServer(handler, options);
}
