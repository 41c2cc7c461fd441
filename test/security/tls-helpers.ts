// Shared helpers for the security tests: loopback servers and one-shot clients.
import { createServer as createHttpsServer, request as httpsRequest, type Server as HttpsServer } from 'node:https';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ConnectionOptions, TLSSocket, TlsOptions } from 'node:tls';
import { peerIdentity } from '../../src/security/tls.js';

/** Answers with the caller's SPIFFE id (or "anonymous") and the transport. */
export function whoami(req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket as TLSSocket;
  res.end(`${peerIdentity(socket) ?? 'anonymous'} ${socket.encrypted ? 'tls' : 'plain'}`);
}

export async function startHttps(options: TlsOptions, handler = whoami): Promise<{ server: HttpsServer; port: number; close(): Promise<void> }> {
  const server = createHttpsServer(options, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

export interface Reply {
  status: number;
  body: string;
}

function collect(res: IncomingMessage): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => (body += c));
    res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    res.on('error', reject);
  });
}

/** One HTTPS GET on a fresh connection (so every call is a full handshake). */
export function httpsGet(port: number, tls: ConnectionOptions, path = '/'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, agent: false, timeout: 5000, ...(tls as object) }, (res) => collect(res).then(resolve, reject));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** One plaintext GET. */
export function httpGet(port: number, path = '/'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => collect(res).then(resolve, reject));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
