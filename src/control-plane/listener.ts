/**
 * The control plane's one gRPC port. Plaintext only (ADS as on istiod's
 * 15010) unless TLS credentials are given; then the port also speaks TLS
 * (istiod's 15012: the CSR API and ADS over TLS), told apart by the first
 * byte as PERMISSIVE servers do, so existing plaintext ADS clients and
 * workloads asking the CA over TLS share one address.
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
  /** When set, connections opening with a TLS handshake are served with these credentials. */
  tls?: grpc.ServerCredentials;
  /** Connections that send nothing for this long are closed (default 10 s). */
  firstByteTimeoutMs?: number;
}

const hostPort = (host: string, port: number) => `${host.includes(':') ? `[${host}]` : host}:${port}`;

/** Binds `server` on host:port, plaintext or plaintext + TLS on the same port. */
export async function listenGrpc(server: grpc.Server, options: GrpcListenOptions): Promise<GrpcListener> {
  if (options.tls === undefined) {
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(hostPort(options.host, options.port), grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    // server.forceShutdown() closes a bound port.
    return { port, close: async () => {} };
  }

  const plain = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const secure = server.createConnectionInjector(options.tls);
  // Peeked and pushed back: the HTTP/2 (or TLS) server reads the stream from its first byte.
  const router = new FirstBytesRouter<boolean>({
    ...(options.firstByteTimeoutMs !== undefined && { timeoutMs: options.firstByteTimeoutMs }),
    classify: (head) => sniffProtocol(head) === 'tls',
    route: (socket, tls) => (tls ? secure : plain).injectConnection(socket),
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
      plain.destroy();
      secure.destroy();
      router.destroyAll();
    }),
  };
}
