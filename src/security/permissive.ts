/**
 * PeerAuthentication PERMISSIVE: one port that accepts both mTLS and
 * plaintext, told apart by the first byte (0x16 opens every TLS handshake;
 * no HTTP method starts with it). The bytes are peeked and pushed back, so
 * the https or http server sees the connection from its first byte
 * (see first-bytes.ts).
 */
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createHttpServer, type RequestListener, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import { FirstBytesRouter, sniffProtocol } from './first-bytes.js';

export { TLS_HANDSHAKE_BYTE } from './first-bytes.js';

/** Options for {@link createPermissiveServer}. */
export interface PermissiveServerOptions {
  /** Connections that send nothing for this long are closed (default 10 s). */
  firstByteTimeoutMs?: number;
  /** Bring your own TLS server (e.g. http2.createSecureServer({ allowHTTP1: true })); default https.createServer. */
  tlsServer?: { emit(event: 'connection', socket: Socket): boolean; close(): unknown };
  /** Bring your own plaintext server; default http.createServer. */
  plainServer?: { emit(event: 'connection', socket: Socket): boolean; close(): unknown };
}

/** A listening socket that dispatches to a TLS and a plaintext server. */
export interface PermissiveServer {
  /** The listening net.Server. */
  readonly server: NetServer;
  /** Receives connections that start with a TLS handshake. */
  readonly tlsServer: HttpsServer | NonNullable<PermissiveServerOptions['tlsServer']>;
  /** Receives every other connection. */
  readonly plainServer: HttpServer | NonNullable<PermissiveServerOptions['plainServer']>;
  listen(port: number, host?: string): Promise<AddressInfo>;
  /** Swaps certificates for new handshakes (rotation); existing connections keep theirs. */
  setSecureContext(options: SecureContextOptions): void;
  /** Stops listening and closes idle and active connections. */
  close(): Promise<void>;
}

/**
 * Builds a PERMISSIVE server. `tlsOptions` normally comes from
 * `serverTlsOptions(identity, { mode: 'PERMISSIVE' })`; `handler` serves both
 * kinds of request (`peerIdentity(req.socket)` tells them apart).
 */
export function createPermissiveServer(tlsOptions: TlsOptions, handler: RequestListener, options: PermissiveServerOptions = {}): PermissiveServer {
  const tlsServer = options.tlsServer ?? createHttpsServer(tlsOptions, handler);
  const plainServer = options.plainServer ?? createHttpServer(handler);
  const router = new FirstBytesRouter({
    ...(options.firstByteTimeoutMs !== undefined && { timeoutMs: options.firstByteTimeoutMs }),
    classify: (head) => sniffProtocol(head),
    route: (socket, protocol) => void (protocol === 'tls' ? tlsServer : plainServer).emit('connection', socket),
  });
  const server = createNetServer(router.accept);

  return {
    server,
    tlsServer,
    plainServer,
    listen(port, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    setSecureContext(secure) {
      const s = tlsServer as Partial<HttpsServer>;
      if (typeof s.setSecureContext === 'function') s.setSecureContext(secure);
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        tlsServer.close();
        plainServer.close();
        router.destroyAll();
      });
    },
  };
}
