// Shared helpers for the security tests: loopback servers and one-shot clients.
import { createServer as createHttpsServer, request as httpsRequest, type Server as HttpsServer } from 'node:https';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ConnectionOptions, type TLSSocket, type TlsOptions, connect as tlsConnect } from 'node:tls';
import type { CertificateAuthority } from '../../src/security/ca.js';
import { generateKeyPair, importKeyPairPem, privateKeyToPem } from '../../src/security/certificates.js';
import type { IdentityMaterial } from '../../src/security/material.js';
import { peerIdentity } from '../../src/security/tls.js';
import type { WorkloadIdentity } from '../../src/security/workload-identity.js';
import { crypto as x509crypto, ecdsaP256, loadX509 } from '../../src/security/x509.js';

const x509 = await loadX509();

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

/**
 * A serving certificate with DNS SANs only, signed by `ca`'s root: what
 * Istio's istiod presents on 15012 (pilot/pkg/bootstrap/server.go getDNSNames:
 * istiod.istio-system.svc, istiod-remote…, istio-pilot…, plus the discovery host).
 */
export async function issueDnsCertificate(ca: CertificateAuthority, dnsNames: readonly string[]): Promise<{ key: string; cert: string }> {
  const root = ca.exportRoot();
  const rootKeys = await importKeyPairPem(root.keyPem);
  const rootCert = new x509.X509Certificate(root.certPem);
  const keys = await generateKeyPair();
  const leaf = await x509.X509CertificateGenerator.create({
    subject: [], // (the root's subject is O=cluster.local; a leaf with the same name would read as self-signed)
    issuer: rootCert.subjectName,
    publicKey: keys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: ecdsaP256,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    extensions: [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.SubjectAlternativeNameExtension(dnsNames.map((value) => ({ type: 'dns' as const, value })), true),
    ],
  }, x509crypto);
  return { key: await privateKeyToPem(keys.privateKey), cert: leaf.toString('pem') + '\n' };
}

/** The outcome of one TLS handshake: protocol and cipher, or the error code. */
export function handshake(port: number, options: ConnectionOptions): Promise<{ protocol: string | null; cipher: string } | { error: string }> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ...options }, () => {
      resolve({ protocol: socket.getProtocol(), cipher: socket.getCipher().name });
      socket.destroy();
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('timeout')));
    socket.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
  });
}

/** TLS 1.2 CBC suites (ECDSA keys, as every mesh certificate): what a downgrade attempt offers. */
export const CBC_SUITES = 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA';

/** A WorkloadIdentity whose rotations the test triggers (as the rotator would, listeners first to last). */
export function manualIdentity(first: IdentityMaterial): WorkloadIdentity & { rotate(next: IdentityMaterial): void } {
  let current = first;
  const listeners = new Set<(m: IdentityMaterial) => void>();
  return {
    get current() {
      return current;
    },
    onRotate(listener) {
      listeners.add(listener);
      return { dispose: () => void listeners.delete(listener) };
    },
    async close() {
      listeners.clear();
    },
    rotate(next) {
      current = next;
      for (const l of listeners) l(next);
    },
  };
}
