/**
 * The control plane's one gRPC port. Plaintext only (ADS as on istiod's
 * 15010) unless a TLS server is given; then the port also speaks TLS
 * (istiod's 15012: the CSR API and ADS over TLS), told apart by the first
 * byte as PERMISSIVE servers do. Plaintext and TLS connections go to two
 * different grpc-js servers, so what a plaintext caller can reach (the
 * rate-limit service; ADS only when allowed; never the CA) is decided by
 * which services that server has, not by each handler.
 */
import * as grpc from '@grpc/grpc-js';
import { createServer as createNetServer } from 'node:net';
import { FirstBytesRouter, sniffProtocol } from '../security/first-bytes.js';

/** A bound gRPC port. */
export interface GrpcListener {
  readonly port: number;
  /** Stops accepting and destroys open connections; call before server.forceShutdown(). */
  close(): Promise<void>;
}

/** Options of {@link listenGrpc}. */
export interface GrpcListenOptions {
  host: string;
  port: number;
  /** Serves plaintext connections; without it, they are closed. */
  plaintext?: grpc.Server;
  /** When set, connections opening with a TLS handshake are served by `server` with these credentials. */
  tls?: { server: grpc.Server; credentials: grpc.ServerCredentials };
  /** Connections that send nothing for this long are closed (default 10 s). */
  firstByteTimeoutMs?: number;
}

const hostPort = (host: string, port: number) => `${host.includes(':') ? `[${host}]` : host}:${port}`;

/** Binds host:port: the plaintext server alone, or TLS (and plaintext) sniffed on the same port. */
export async function listenGrpc(options: GrpcListenOptions): Promise<GrpcListener> {
  if (options.tls === undefined) {
    const server = options.plaintext;
    if (!server) throw new TypeError('listenGrpc needs a plaintext or a TLS server');
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(hostPort(options.host, options.port), grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    // server.forceShutdown() closes a bound port.
    return { port, close: async () => {} };
  }

  const plain = options.plaintext?.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const secure = options.tls.server.createConnectionInjector(options.tls.credentials);
  // Peeked and pushed back: the HTTP/2 (or TLS) server reads the stream from its first byte.
  const router = new FirstBytesRouter<boolean>({
    ...(options.firstByteTimeoutMs !== undefined && { timeoutMs: options.firstByteTimeoutMs }),
    classify: (head) => sniffProtocol(head) === 'tls',
    route: (socket, tls) => {
      if (tls) secure.injectConnection(socket);
      else if (plain) plain.injectConnection(socket);
      else socket.destroy();
    },
  });
  const net = createNetServer(router.accept);
  await new Promise<void>((resolve, reject) => {
    net.once('error', reject);
    net.listen(options.port, options.host, () => {
      net.off('error', reject);
      resolve();
    });
  });
  const address = net.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  return {
    port,
    close: () => new Promise<void>((resolve) => {
      net.close(() => resolve());
      plain?.destroy();
      secure.destroy();
      router.destroyAll();
    }),
  };
}
