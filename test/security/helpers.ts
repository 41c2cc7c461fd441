// Shared helpers for the mesh-level security tests: a dev CA dir, meshed client and server.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { type ClientHttp2Session, type Http2ServerRequest, type Http2ServerResponse, type SecureClientSessionOptions, connect as http2Connect } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { createMesh, type Mesh, type MeshOptions } from '../../src/mesh.js';
import type { MeshServer } from '../../src/security/mesh-server.js';

export const CALC = 'calculate.default.svc.cluster.local';
export const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/client';
export const CALC_ID = 'spiffe://cluster.local/ns/default/sa/calculate';

export async function tempDir(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'meshlet-sec-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** The client's view of `calculate` (port 8000) on a local port, optionally with a DestinationRule tls block. */
export function clientConfig(port: number, options: { meshed?: boolean; tls?: string } = {}): string {
  const labels = options.meshed === false ? '{ app: calculate }' : '{ app: calculate, security.istio.io/tlsMode: istio }';
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: calculate, namespace: default }
spec:
  hosts: [${CALC}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }]
  endpoints:
    - { address: 127.0.0.1, ports: { http: ${port} }, labels: ${labels}, serviceAccount: calculate }
${options.tls ? `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: calculate, namespace: default }
spec:
  host: ${CALC}
  trafficPolicy:
    tls: ${options.tls}
` : ''}`;
}

/** Answers `<peer id or anonymous> <tls|plain>`. */
export function whoami(mesh: Mesh) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const encrypted = (req.socket as TLSSocket).encrypted === true;
    res.end(`${mesh.peerOf(req) ?? 'anonymous'} ${encrypted ? 'tls' : 'plain'}`);
  };
}

export async function meshFor(name: string, caDir: string | undefined, config: string, extra: Partial<MeshOptions> = {}): Promise<Mesh> {
  return createMesh({
    workload: { name, namespace: 'default', serviceAccount: name, labels: { app: name } },
    config: config.trim() === '' ? [] : config,
    ...(caDir !== undefined && { ca: { dir: caDir } }),
    ...extra,
  });
}

export async function listen(server: MeshServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

export async function closeServer(server: MeshServer): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

// ── HTTP/2 (mesh.createServer(handler, { http2: true })) ─────────────────────────────────────────

/** Answers `<peer id or anonymous> <tls|plain> <HTTP version>` to HTTP/1.x and HTTP/2 (compat) requests. */
export function whoamiVersion(mesh: Mesh) {
  return (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void => {
    const encrypted = (req.socket as TLSSocket).encrypted === true;
    res.end(`${mesh.peerOf(req) ?? 'anonymous'} ${encrypted ? 'tls' : 'plain'} ${req.httpVersion}`);
  };
}

/** One HTTP/2 response. `alpn` is the session's protocol: 'h2' over TLS, 'h2c' in plaintext. */
export interface H2Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  alpn: string | undefined;
}

/**
 * Opens an HTTP/2 session: `https://host:port` with `tls` (ALPN h2), or
 * `http://host:port` for h2c with prior knowledge. Close it with `session.close()`.
 */
export function h2Connect(authority: string, tls: SecureClientSessionOptions = {}): ClientHttp2Session {
  const session = http2Connect(authority, tls);
  session.on('error', () => {}); // surfaced by h2Request
  session.setTimeout(5000, () => session.destroy(new Error('timeout')));
  return session;
}

/** One request on `session`; rejects when the stream or session fails or closes before a complete response. */
export function h2Request(session: ClientHttp2Session, path = '/', headers: OutgoingHttpHeaders = {}): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const fail = (err: unknown): void => reject(err instanceof Error ? err : new Error(String(err)));
    session.once('error', fail);
    session.once('close', () => fail(new Error('session closed before a response')));
    const stream = session.request({ ':path': path, ...headers });
    stream.on('error', fail);
    stream.on('close', () => fail(new Error(`stream closed before a response (rst code ${stream.rstCode})`)));
    stream.on('response', (h) => {
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => (body += c));
      stream.on('end', () => resolve({ status: Number(h[':status']), headers: h, body, alpn: session.alpnProtocol }));
    });
    stream.end();
  });
}

/** One HTTP/2 GET on a fresh session, closed afterwards. */
export async function h2Get(authority: string, tls: SecureClientSessionOptions = {}, path = '/', headers: OutgoingHttpHeaders = {}): Promise<H2Reply> {
  const session = h2Connect(authority, tls);
  try {
    return await h2Request(session, path, headers);
  } finally {
    session.close();
  }
}

/** ALLOW for calculate: GET on /ok* and /admin from the client's identity only. */
export const ALLOW_CLIENT_GET = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-client, namespace: default }
spec:
  selector: { matchLabels: { app: calculate } }
  action: ALLOW
  rules:
    - from: [{ source: { principals: [cluster.local/ns/default/sa/client] } }]
      to: [{ operation: { methods: [GET], paths: ["/ok*", "/admin"] } }]`;
