// mesh.createServer(handler, { http2: true }): h2 (ALPN) and HTTP/1.1 on TLS, h2c and HTTP/1.1 in plaintext, one port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ClientHttp2Session, type Http2SecureServer, createSecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { CertificateAuthority } from '../../src/security/ca.js';
import { openCaDir } from '../../src/security/ca-dir.js';
import { HTTP2_PREFACE } from '../../src/security/first-bytes.js';
import { type MeshServer, createMeshServer } from '../../src/security/mesh-server.js';
import type { IdentityMaterial } from '../../src/security/material.js';
import { clientTlsOptions } from '../../src/security/tls.js';
import type { RotateListener, WorkloadIdentity } from '../../src/security/workload-identity.js';
import type { Mesh } from '../../src/mesh.js';
import { ALLOW_CLIENT_GET, CALC, CALC_ID, CLIENT_ID, clientConfig, closeServer, h2Connect, h2Get, h2Request, listen, meshFor, tempDir, whoamiVersion } from './helpers.js';
import { httpGet } from './tls-helpers.js';

function peerAuth(mode: string): string {
  return `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: default }
spec: { mtls: { mode: ${mode} } }`;
}

interface H2Pair {
  server: Mesh;
  client: Mesh;
  http: MeshServer<Http2SecureServer>;
  port: number;
  caDir: string;
  /** mTLS options of the client workload for node:http2. */
  clientTls(): ReturnType<typeof clientTlsOptions>;
  close(): Promise<void>;
}

/** A meshed `calculate` serving `mesh.createServer(whoamiVersion, { http2: true })` and a meshed `client`. */
async function h2Pair(serverConfig: string): Promise<H2Pair> {
  const ca = await tempDir();
  const server = await meshFor('calculate', ca.dir, serverConfig);
  const http = server.createServer(whoamiVersion(server), { http2: true });
  const port = await listen(http);
  const client = await meshFor('client', ca.dir, clientConfig(port));
  return {
    server, client, http, port, caDir: ca.dir,
    clientTls: () => clientTlsOptions(client.identity!, { expectedSpiffeIds: [CALC_ID] }),
    async close() {
      await client.close();
      await closeServer(http);
      await server.close();
      await ca.remove();
    },
  };
}

/** Writes `chunks` on a plaintext connection (a pause between them) and resolves with the first bytes the server answers. */
async function rawExchange(port: number, chunks: Buffer[]): Promise<Buffer> {
  const socket = netConnect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  socket.setTimeout(5000, () => socket.destroy(new Error('no answer')));
  await once(socket, 'connect');
  const answer = once(socket, 'data') as Promise<[Buffer]>;
  try {
    for (const [i, chunk] of chunks.entries()) {
      if (i > 0) await sleep(50);
      socket.write(chunk);
    }
    const [data] = await answer;
    return data;
  } finally {
    socket.destroy();
  }
}

test('STRICT + http2: ALPN h2 with the client certificate, the peer seen per stream; HTTP/1.1 mTLS on the same port', async () => {
  const p = await h2Pair(peerAuth('STRICT'));
  try {
    const session = h2Connect(`https://127.0.0.1:${p.port}`, p.clientTls());
    try {
      // Two streams on one session: the peer identity comes through the compat socket proxy both times.
      for (const path of ['/a', '/b']) {
        const reply = await h2Request(session, path);
        assert.equal(reply.status, 200);
        assert.equal(reply.alpn, 'h2');
        assert.equal(reply.body, `${CLIENT_ID} tls 2.0`);
      }
    } finally {
      session.close();
    }
    const res = await p.client.fetch(`http://${CALC}:8000/`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), `${CLIENT_ID} tls 1.1`);
    assert.equal(p.http.rejected, 0);
  } finally {
    await p.close();
  }
});

test('STRICT + http2 refuses h2c prior knowledge and certificate-less TLS: no response', async () => {
  const p = await h2Pair(peerAuth('STRICT'));
  try {
    await assert.rejects(h2Get(`http://127.0.0.1:${p.port}`), /closed before a response|ECONNRESET/);
    assert.equal(p.http.rejected, 1);
    // TLS with ALPN h2 but no client certificate fails the handshake.
    await assert.rejects(h2Get(`https://127.0.0.1:${p.port}`, { ca: p.server.identity!.current.root, checkServerIdentity: () => undefined }));
    assert.equal((await h2Get(`https://127.0.0.1:${p.port}`, p.clientTls())).body, `${CLIENT_ID} tls 2.0`);
  } finally {
    await p.close();
  }
});

test('PERMISSIVE + http2: h2c, HTTP/1.x, mTLS h2, anonymous TLS h2 and mesh.fetch on one port', async () => {
  const p = await h2Pair(peerAuth('PERMISSIVE'));
  try {
    const h2c = await h2Get(`http://127.0.0.1:${p.port}`, {}, '/h2c');
    assert.deepEqual([h2c.status, h2c.alpn, h2c.body], [200, 'h2c', 'anonymous plain 2.0']);
    assert.deepEqual(await httpGet(p.port), { status: 200, body: 'anonymous plain 1.1' });
    const mtls = await h2Get(`https://127.0.0.1:${p.port}`, p.clientTls());
    assert.deepEqual([mtls.status, mtls.alpn, mtls.body], [200, 'h2', `${CLIENT_ID} tls 2.0`]);
    const anon = await h2Get(`https://127.0.0.1:${p.port}`, { ca: p.server.identity!.current.root, checkServerIdentity: () => undefined });
    assert.deepEqual([anon.status, anon.alpn, anon.body], [200, 'h2', 'anonymous tls 2.0']);
    assert.equal(await (await p.client.fetch(`http://${CALC}:8000/`)).text(), `${CLIENT_ID} tls 1.1`);
    // A request shorter than the h2 preface is not held back waiting for more bytes.
    const short = (await rawExchange(p.port, [Buffer.from('GET / HTTP/1.0\r\n\r\n')])).toString('latin1');
    assert.match(short, /^HTTP\/1\.1 200 OK\r\n/);
    // A preface split across packets still reaches the h2c server, which answers with its SETTINGS frame (type 0x4).
    const settings = Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0]);
    const frame = await rawExchange(p.port, [HTTP2_PREFACE.subarray(0, 7), Buffer.concat([HTTP2_PREFACE.subarray(7), settings])]);
    assert.equal(frame[3], 0x4);
    assert.equal(p.http.rejected, 0);
  } finally {
    await p.close();
  }
});

test('AuthorizationPolicy on h2 requests: principal, path and :authority as host; 403 RBAC: access denied', async () => {
  const policies = `
${ALLOW_CLIENT_GET}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny, namespace: default }
spec:
  action: DENY
  rules:
    - to: [{ operation: { paths: ["/admin"] } }]
    - to: [{ operation: { hosts: ["blocked.example"] } }]`;
  const p = await h2Pair(`${peerAuth('PERMISSIVE')}\n---\n${policies}`);
  const url = `https://127.0.0.1:${p.port}`;
  try {
    const ok = await h2Get(url, p.clientTls(), '/ok/1');
    assert.deepEqual([ok.status, ok.alpn, ok.body], [200, 'h2', `${CLIENT_ID} tls 2.0`]);
    const admin = await h2Get(url, p.clientTls(), '/admin');
    assert.equal(admin.status, 403);
    assert.equal(admin.body, 'RBAC: access denied');
    assert.equal(admin.headers['x-meshlet-flags'], 'RBAC');
    const host = await h2Get(url, p.clientTls(), '/ok', { ':authority': 'blocked.example' });
    assert.deepEqual([host.status, host.body], [403, 'RBAC: access denied']);
    // h2c callers have no principal: the ALLOW does not match.
    const plain = await h2Get(`http://127.0.0.1:${p.port}`, {}, '/ok');
    assert.deepEqual([plain.status, plain.alpn, plain.body], [403, 'h2c', 'RBAC: access denied']);
  } finally {
    await p.close();
  }
});

test('a peer from another trust domain under the same root is refused over h2 (STRICT and PERMISSIVE)', async () => {
  const p = await h2Pair(peerAuth('STRICT'));
  try {
    const foreignCa = await openCaDir(p.caDir, { trustDomain: 'evil.local' });
    const foreign = await foreignCa.issueWorkload('spiffe://evil.local/ns/default/sa/client');
    const tls = clientTlsOptions(foreign, { trustDomain: 'cluster.local' });
    await assert.rejects(h2Get(`https://127.0.0.1:${p.port}`, tls), /closed before a response|ECONNRESET/);
    assert.equal(p.http.rejected, 1);
    await p.server.apply(peerAuth('PERMISSIVE'));
    await assert.rejects(h2Get(`https://127.0.0.1:${p.port}`, tls), /closed before a response|ECONNRESET/);
    assert.equal(p.http.rejected, 2);
    // The mesh's own trust domain still gets in.
    assert.equal((await h2Get(`https://127.0.0.1:${p.port}`, p.clientTls())).body, `${CLIENT_ID} tls 2.0`);
  } finally {
    await p.close();
  }
});

test('close() sends GOAWAY to idle h2 and h2c sessions; closeAllConnections ends active streams', { timeout: 15_000 }, async () => {
  const ca = await tempDir();
  const server = await meshFor('calculate', ca.dir, peerAuth('PERMISSIVE'));
  const client = await meshFor('client', ca.dir, '');
  let hung = 0;
  const handler = (req: { url?: string }, res: { end(body: string): unknown }): void => {
    if (req.url === '/hang') return void hung++; // never answered
    res.end('ok');
  };
  const http = server.createServer(handler, { http2: true });
  const port = await listen(http);
  try {
    const tlsSession = h2Connect(`https://127.0.0.1:${port}`, clientTlsOptions(client.identity!, { expectedSpiffeIds: [CALC_ID] }));
    const plainSession = h2Connect(`http://127.0.0.1:${port}`);
    assert.equal((await h2Request(tlsSession, '/')).body, 'ok');
    assert.equal((await h2Request(plainSession, '/')).body, 'ok');
    // Both sessions are open and idle: close() alone (no closeAllConnections) must let the server finish.
    const closed = new Promise<void>((resolve) => http.close(() => resolve()));
    await Promise.all([once(tlsSession, 'goaway'), once(plainSession, 'goaway'), once(tlsSession, 'close'), once(plainSession, 'close')]);
    await closed;
  } finally {
    if (http.listening) await closeServer(http);
  }
  // A stream the handler never answers is ended by closeAllConnections.
  const again = server.createServer(handler, { http2: true });
  const session = h2Connect(`http://127.0.0.1:${await listen(again)}`);
  try {
    const pending = h2Request(session, '/hang');
    while (hung === 0) await sleep(10);
    await closeServer(again);
    await assert.rejects(pending);
  } finally {
    session.destroy();
    if (again.listening) await closeServer(again);
    await client.close();
    await server.close();
    await ca.remove();
  }
});

test('rotation: new h2 connections get the new certificate, open sessions keep theirs', async () => {
  const ca = await CertificateAuthority.create();
  const [first, second, clientId] = await Promise.all([ca.issueWorkload(CALC_ID), ca.issueWorkload(CALC_ID), ca.issueWorkload(CLIENT_ID)]);
  const listeners: RotateListener[] = [];
  let current: IdentityMaterial = first;
  const identity: WorkloadIdentity = {
    get current() { return current; },
    onRotate: (l) => (listeners.push(l), { dispose: () => void listeners.splice(listeners.indexOf(l), 1) }),
    close: async () => {},
  };
  const http = createMeshServer((req, res) => res.end(req.httpVersion), { identity, modeFor: () => 'STRICT', http2: true });
  const port = await listen(http);
  // The server certificate a client session got in its handshake.
  const served = (s: ClientHttp2Session): string => (s.socket as TLSSocket).getPeerCertificate().fingerprint256;
  const fingerprint = (m: IdentityMaterial): string => new X509Certificate(m.certChain[0]!).fingerprint256;
  const tls = clientTlsOptions(clientId, { expectedSpiffeIds: [CALC_ID] });
  const old = h2Connect(`https://127.0.0.1:${port}`, tls);
  try {
    assert.equal((await h2Request(old, '/')).body, '2.0');
    assert.equal(served(old), fingerprint(first));
    current = second;
    for (const l of listeners) l(second);
    const fresh = h2Connect(`https://127.0.0.1:${port}`, tls);
    try {
      assert.equal((await h2Request(fresh, '/')).body, '2.0');
      assert.equal(served(fresh), fingerprint(second));
      assert.equal((await h2Request(old, '/')).body, '2.0');
      assert.equal(served(old), fingerprint(first));
    } finally {
      fresh.close();
    }
  } finally {
    old.close();
    await closeServer(http);
  }
  assert.equal(listeners.length, 0);
});

test('do it yourself: http2.createSecureServer({ ...mesh.serverTls(), allowHTTP1: true }) + mesh.secure(server)', async () => {
  const ca = await tempDir();
  const server = await meshFor('calculate', ca.dir, '');
  const client = await meshFor('client', ca.dir, '');
  const h2 = createSecureServer({ ...server.serverTls(), allowHTTP1: true }, whoamiVersion(server));
  const secured = server.secure(h2);
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${(h2.address() as AddressInfo).port}`;
  try {
    const reply = await h2Get(url, clientTlsOptions(client.identity!, { expectedSpiffeIds: [CALC_ID] }));
    assert.deepEqual([reply.status, reply.alpn, reply.body], [200, 'h2', `${CLIENT_ID} tls 2.0`]);
    const foreign = await (await openCaDir(ca.dir, { trustDomain: 'evil.local' })).issueWorkload('spiffe://evil.local/ns/default/sa/client');
    await assert.rejects(h2Get(url, clientTlsOptions(foreign, { trustDomain: 'cluster.local' })), /closed before a response|ECONNRESET/);
  } finally {
    secured.dispose();
    await new Promise<void>((resolve) => h2.close(() => resolve()));
    await client.close();
    await server.close();
    await ca.remove();
  }
});
