/**
 * The server behind `mesh.createServer(handler)`: one listening socket whose
 * connections are sorted by their first byte (0x16 opens every TLS
 * handshake) and by the PeerAuthentication mode of the port they arrived on,
 * read per connection so a config push applies to new connections:
 *
 *   STRICT      TLS with a client certificate from the mesh root; plaintext is closed
 *   PERMISSIVE  mTLS, TLS without a certificate (anonymous) and plaintext
 *   DISABLE     plaintext only (TLS bytes reach the HTTP parser and fail, as behind a sidecar)
 *
 * Authenticated peers must belong to the trust domain; a certificate that
 * fails verification is refused in every mode. Certificates rotate with the
 * identity (`setSecureContext`); open connections keep theirs.
 */
import { Server as NetServer, type Socket } from 'node:net';
import { createServer as createHttpServer, type RequestListener, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { peerIdentity, serverTlsOptions } from './tls.js';
import type { MtlsMode } from './peer-authentication.js';
import type { Disposable, WorkloadIdentity } from './workload-identity.js';

/** First byte of a TLS record carrying a handshake. */
const TLS_HANDSHAKE = 0x16;

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
}

function trustDomainOf(spiffeId: string): string {
  const rest = spiffeId.slice('spiffe://'.length);
  return rest.slice(0, rest.indexOf('/'));
}

/**
 * A net.Server that serves HTTP/1.1 over mTLS, TLS and plaintext per
 * PeerAuthentication. `listen`, `address` and `close` behave as on any
 * node server; `close()` also closes idle keep-alive connections.
 */
export class MeshServer extends NetServer {
  /** TLS server requiring a verified client certificate (STRICT). */
  readonly strictServer: HttpsServer | undefined;
  /** TLS server accepting clients with or without a certificate (PERMISSIVE). */
  readonly permissiveServer: HttpsServer | undefined;
  /** Plaintext server (PERMISSIVE, DISABLE). */
  readonly plainServer: HttpServer;
  /** Connections refused by mode or identity (tests, debugging). */
  rejected = 0;
  readonly #sockets = new Set<Socket>();
  readonly #rotation: Disposable | undefined;

  /** @internal use {@link createMeshServer} */
  constructor(handler: RequestListener, options: MeshServerOptions) {
    super();
    const identity = options.identity;
    const firstByteTimeoutMs = options.firstByteTimeoutMs ?? 10_000;
    this.plainServer = createHttpServer(handler);
    if (identity !== undefined) {
      const trustDomain = options.trustDomain ?? trustDomainOf(identity.current.spiffeId);
      this.strictServer = createHttpsServer(serverTlsOptions(identity, { mode: 'STRICT' }), handler);
      this.permissiveServer = createHttpsServer(serverTlsOptions(identity, { mode: 'PERMISSIVE' }), handler);
      const check = (socket: TLSSocket): void => {
        // No client certificate: an anonymous TLS peer (PERMISSIVE; STRICT refused it in the handshake).
        // Checked first because a resumed session without one reports `authorized` true.
        if (socket.getPeerCertificate()?.raw === undefined) return;
        if (socket.authorized) {
          const id = peerIdentity(socket);
          if (id !== undefined && trustDomainOf(id) === trustDomain) return;
        }
        this.rejected++;
        socket.destroy();
      };
      // Before the HTTP layer attaches, so a refused peer never gets a request parsed.
      this.strictServer.prependListener('secureConnection', check);
      this.permissiveServer.prependListener('secureConnection', check);
      this.#rotation = identity.onRotate((m) => {
        this.strictServer!.setSecureContext(serverTlsOptions(m, { mode: 'STRICT' }));
        this.permissiveServer!.setSecureContext(serverTlsOptions(m, { mode: 'PERMISSIVE' }));
      });
    }

    this.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      socket.setTimeout(firstByteTimeoutMs, () => socket.destroy());
      socket.on('error', () => socket.destroy());
      socket.once('readable', () => this.#dispatch(socket, options.modeFor));
    });
  }

  #dispatch(socket: Socket, modeFor: (port: number | undefined) => MtlsMode): void {
    const first = socket.read(1) as Buffer | null;
    if (first === null) return void socket.destroy();
    socket.setTimeout(0);
    socket.removeAllListeners('timeout');
    socket.unshift(first);
    const mode = this.strictServer === undefined ? 'DISABLE' : modeFor(socket.localPort);
    if (first[0] === TLS_HANDSHAKE && mode !== 'DISABLE') {
      (mode === 'STRICT' ? this.strictServer! : this.permissiveServer!).emit('connection', socket);
    } else if (mode === 'STRICT') {
      this.rejected++;
      socket.destroy();
    } else {
      this.plainServer.emit('connection', socket);
    }
  }

  /** Stops listening, closes idle connections and stops following rotations. */
  override close(callback?: (err?: Error) => void): this {
    super.close(callback);
    this.#rotation?.dispose();
    this.strictServer?.close();
    this.permissiveServer?.close();
    this.plainServer.close();
    return this;
  }

  /** Destroys every connection, active ones included. */
  closeAllConnections(): void {
    for (const socket of this.#sockets) socket.destroy();
  }
}

/** Creates the server behind `mesh.createServer(handler)`. */
export function createMeshServer(handler: RequestListener, options: MeshServerOptions): MeshServer {
  return new MeshServer(handler, options);
}
