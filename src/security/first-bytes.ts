/**
 * One listening socket, several protocols: a connection's first bytes are
 * peeked, pushed back with `unshift`, and the connection handed to the server
 * that speaks what they say, so that server reads the stream from its first
 * byte. 0x16 opens every TLS handshake (no HTTP method starts with it);
 * `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` opens every HTTP/2 connection with prior
 * knowledge (h2c, what gRPC and Envoy send on plaintext ports).
 */
import type { Socket } from 'node:net';

/** First byte of a TLS record carrying a handshake. */
export const TLS_HANDSHAKE_BYTE = 0x16;

/** The HTTP/2 client connection preface (RFC 9113 §3.4). */
export const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** What a connection's first bytes say it speaks. */
export type SniffedProtocol = 'tls' | 'h2c' | 'http1';

/**
 * Sniffs `head` (the bytes received so far): undefined while it is a proper
 * prefix of the HTTP/2 preface and `h2c` is asked for (wait for more bytes).
 * Without `h2c` the first byte decides.
 */
export function sniffProtocol(head: Buffer, options: { h2c?: boolean } = {}): SniffedProtocol | undefined {
  if (head[0] === TLS_HANDSHAKE_BYTE) return 'tls';
  if (options.h2c !== true) return 'http1';
  const n = Math.min(head.length, HTTP2_PREFACE.length);
  // A short HTTP/1 request ("GET / HTTP/1.0\r\n\r\n") differs from the preface within its first bytes.
  if (head.compare(HTTP2_PREFACE, 0, n, 0, n) !== 0) return 'http1';
  return n === HTTP2_PREFACE.length ? 'h2c' : undefined;
}

/** Options of {@link FirstBytesRouter}. */
export interface FirstBytesRouterOptions<T> {
  /** Connections that send nothing decisive for this long are closed (default 10 s). */
  timeoutMs?: number;
  /** Where the bytes received so far send the connection; undefined waits for more. */
  classify(head: Buffer, socket: Socket): T | undefined;
  /** Hands the connection on; its bytes have been pushed back. */
  route(socket: Socket, target: T): void;
}

/**
 * Accepts connections for a net.Server (`new net.Server(router.accept)`),
 * sorts them by their first bytes and keeps the open ones so they can be
 * destroyed on close.
 */
export class FirstBytesRouter<T> {
  /** Open connections, routed or not. */
  readonly sockets = new Set<Socket>();
  readonly #timeoutMs: number;

  constructor(private readonly options: FirstBytesRouterOptions<T>) {
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** The net.Server `connection` listener. */
  readonly accept = (socket: Socket): void => {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.setTimeout(this.#timeoutMs, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    let head: Buffer | undefined;
    const onReadable = (): void => {
      const chunk = socket.read() as Buffer | null;
      // null: the peer ended before its bytes said anything.
      if (chunk === null) {
        socket.off('readable', onReadable);
        return void socket.destroy();
      }
      head = head === undefined ? chunk : Buffer.concat([head, chunk]);
      const target = this.options.classify(head, socket);
      if (target === undefined) return;
      socket.off('readable', onReadable);
      socket.setTimeout(0);
      socket.removeAllListeners('timeout');
      socket.unshift(head);
      this.options.route(socket, target);
    };
    socket.on('readable', onReadable);
  };

  /** Destroys every open connection. */
  destroyAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }
}
