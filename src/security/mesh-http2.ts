/**
 * The HTTP/2 side of `mesh.createServer(handler, { http2: true })`: TLS
 * servers that let ALPN pick h2 or http/1.1 on one port, an h2c server for
 * prior-knowledge plaintext, and the sessions they keep open. node's http2
 * servers do not close their sessions on `close()`, so the mesh server does.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import {
  createSecureServer, createServer as createH2cServerRaw, type Http2SecureServer, type Http2Server, type Http2ServerRequest,
  type Http2ServerResponse, type ServerHttp2Session,
} from 'node:http2';
import type { TlsOptions } from 'node:tls';

/** A handler for HTTP/2 compat requests (node:http2's `request` event). */
export type Http2RequestListener = (req: Http2ServerRequest, res: Http2ServerResponse) => void;

/** A handler for both protocols: what an http2 mesh server calls (HTTP/1.1 connections bring IncomingMessage). */
export type MeshRequestListener = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void;

/** Any handler `mesh.createServer` takes. */
export type AnyRequestListener = RequestListener | Http2RequestListener | MeshRequestListener;

/** The TLS server behind a mesh server: https, or http2 with HTTP/1.1 fallback. */
export type MeshTlsServer = HttpsServer | Http2SecureServer;

/** An https server, or with `http2` an http2 secure server where ALPN picks h2 or http/1.1. */
export function createMeshTlsServer(tls: TlsOptions, handler: MeshRequestListener, http2: boolean): MeshTlsServer {
  return http2 ? createSecureServer({ ...tls, allowHTTP1: true }, handler) : createHttpsServer(tls, handler);
}

/** A plaintext HTTP/2 server for connections that opened with the h2 preface. */
export function createH2cServer(handler: MeshRequestListener): Http2Server {
  return createH2cServerRaw(handler);
}

/** The sessions of some http2 servers, closed with the mesh server. */
export class Http2Sessions {
  readonly #sessions = new Set<ServerHttp2Session>();
  #closed = false;

  /** Follows the sessions `server` (an http2 server) opens. */
  track(server: { on(event: 'session', listener: (session: ServerHttp2Session) => void): unknown }): void {
    server.on('session', (session: ServerHttp2Session) => {
      // A connection sniffed before close() but routed after it.
      if (this.#closed) return void session.close();
      this.#sessions.add(session);
      session.once('close', () => this.#sessions.delete(session));
    });
  }

  /** Sends GOAWAY on every session; each closes once its open streams finish (idle ones at once). */
  close(): void {
    this.#closed = true;
    for (const session of this.#sessions) session.close();
  }

  /** Destroys every session, open streams included. */
  destroy(): void {
    for (const session of this.#sessions) session.destroy();
  }

  /** Open sessions (tests, debugging). */
  get size(): number {
    return this.#sessions.size;
  }
}
