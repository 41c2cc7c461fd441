import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CertificateAuthority } from '../../src/security/ca.js';
import { createPermissiveServer } from '../../src/security/permissive.js';
import type { AddressInfo } from 'node:net';
import { Server as GrpcServer } from '@grpc/grpc-js';
import { grpcServerCredentials } from '../../src/security/grpc-credentials.js';
import { createMeshServer } from '../../src/security/mesh-server.js';
import { MESH_SERVER_CIPHERS, clientTlsOptions, enforcePeerTrustDomain, serverTlsOptions } from '../../src/security/tls.js';
import { CBC_SUITES, handshake, httpGet, httpsGet, manualIdentity, startHttps, whoami } from './tls-helpers.js';

const clientId = 'spiffe://cluster.local/ns/default/sa/client';
const serverId = 'spiffe://cluster.local/ns/default/sa/server';

async function fixture() {
  const ca = await CertificateAuthority.create();
  const [client, server] = await Promise.all([ca.issueWorkload(clientId), ca.issueWorkload(serverId)]);
  return { ca, client, server };
}

test('mTLS: the server sees the client SPIFFE id; the client checks the server id', async (t) => {
  const { client, server } = await fixture();
  const srv = await startHttps(serverTlsOptions(server, { mode: 'STRICT' }));
  t.after(() => srv.close());
  const reply = await httpsGet(srv.port, clientTlsOptions(client, { expectedSpiffeIds: [serverId] }));
  assert.deepEqual(reply, { status: 200, body: `${clientId} tls` });
  // Same server, but the client expects another identity: refused before any request is sent.
  await assert.rejects(httpsGet(srv.port, clientTlsOptions(client, { expectedSpiffeIds: ['spiffe://cluster.local/ns/default/sa/db'] })),
    (err: NodeJS.ErrnoException) => err.code === 'ERR_MESH_PEER_IDENTITY');
  // No expected ids: any id of our trust domain.
  assert.equal((await httpsGet(srv.port, clientTlsOptions(client))).status, 200);
});

test('STRICT refuses plaintext and TLS clients without a mesh certificate', async (t) => {
  const { server } = await fixture();
  const srv = await startHttps(serverTlsOptions(server, { mode: 'STRICT' }));
  t.after(() => srv.close());
  await assert.rejects(httpGet(srv.port));
  await assert.rejects(httpsGet(srv.port, { ca: server.root, checkServerIdentity: () => undefined }));
});

test('refuses a wrong trust domain, an expired certificate and an untrusted root', async (t) => {
  const { ca, client, server } = await fixture();
  const srv = await startHttps(serverTlsOptions(server, { mode: 'STRICT' }));
  enforcePeerTrustDomain(srv.server, 'cluster.local');
  t.after(() => srv.close());
  assert.equal((await httpsGet(srv.port, clientTlsOptions(client))).status, 200);

  // Same root, another trust domain.
  const foreignCa = await CertificateAuthority.load(ca.exportRoot(), { trustDomain: 'evil.local' });
  const foreign = await foreignCa.issueWorkload('spiffe://evil.local/ns/default/sa/client');
  await assert.rejects(httpsGet(srv.port, clientTlsOptions(foreign, { trustDomain: 'cluster.local' })));
  // (without the trust-domain check the chain alone would have let it in)
  const lax = await startHttps(serverTlsOptions(server));
  t.after(() => lax.close());
  assert.equal((await httpsGet(lax.port, clientTlsOptions(foreign, { trustDomain: 'cluster.local' }))).body, 'spiffe://evil.local/ns/default/sa/client tls');
  // …and a client refuses such a server.
  const foreignServer = await startHttps(serverTlsOptions(await foreignCa.issueWorkload('spiffe://evil.local/ns/default/sa/server')));
  t.after(() => foreignServer.close());
  await assert.rejects(httpsGet(foreignServer.port, clientTlsOptions(client)), (err: NodeJS.ErrnoException) => err.code === 'ERR_MESH_PEER_IDENTITY');

  // Expired: issued by the same root with a clock two hours back, valid for one hour.
  const pastCa = await CertificateAuthority.load(ca.exportRoot(), { now: () => Date.now() - 7_200_000 });
  const expired = await pastCa.issueWorkload(clientId, { ttlMs: 3_600_000 });
  await assert.rejects(httpsGet(srv.port, clientTlsOptions(expired)));
  const expiredServer = await startHttps(serverTlsOptions(await pastCa.issueWorkload(serverId, { ttlMs: 3_600_000 })));
  t.after(() => expiredServer.close());
  await assert.rejects(httpsGet(expiredServer.port, clientTlsOptions(client)), (err: NodeJS.ErrnoException) => err.code === 'CERT_HAS_EXPIRED');

  // Untrusted root: a certificate with the right id from another CA.
  const rogue = await (await CertificateAuthority.create()).issueWorkload(clientId);
  await assert.rejects(httpsGet(srv.port, clientTlsOptions(rogue)));
  await assert.rejects(httpsGet(srv.port, { ...clientTlsOptions(rogue), ca: client.root }));
});

test('PERMISSIVE: one port serves mTLS and plaintext', async (t) => {
  const { client, server } = await fixture();
  const srv = createPermissiveServer(serverTlsOptions(server, { mode: 'PERMISSIVE' }), whoami);
  const { port } = await srv.listen(0);
  t.after(() => srv.close());
  assert.deepEqual(await httpGet(port, '/plain'), { status: 200, body: 'anonymous plain' });
  assert.deepEqual(await httpsGet(port, clientTlsOptions(client)), { status: 200, body: `${clientId} tls` });
  // TLS without a client certificate is accepted too, but anonymous.
  assert.deepEqual(await httpsGet(port, { ca: server.root, checkServerIdentity: () => undefined }), { status: 200, body: 'anonymous tls' });
  // Interleaved, several rounds on fresh connections.
  for (let i = 0; i < 5; i++) {
    const [a, b] = await Promise.all([httpGet(port), httpsGet(port, clientTlsOptions(client))]);
    assert.equal(a.body, 'anonymous plain');
    assert.equal(b.body, `${clientId} tls`);
  }
});

test('TLS defaults as Istio\'s mesh: a mesh server refuses TLS 1.2 clients offering only CBC suites, and TLS 1.1', async (t) => {
  const { client, server } = await fixture();
  const srv = await startHttps(serverTlsOptions(server, { mode: 'STRICT' }));
  t.after(() => srv.close());
  const mtls = { ...clientTlsOptions(client), servername: undefined };
  // CBC only (a downgrade attempt, or an old client): no suite in common.
  const cbc = await handshake(srv.port, { ...mtls, maxVersion: 'TLSv1.2', ciphers: CBC_SUITES });
  assert.ok('error' in cbc, `a CBC-only client was accepted: ${JSON.stringify(cbc)}`);
  // TLS 1.1 (with suites it could use): refused on the version.
  const old = await handshake(srv.port, { ...mtls, minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
  assert.ok('error' in old, `a TLS 1.1 client was accepted: ${JSON.stringify(old)}`);
  // TLS 1.2 with an Istio suite, and the default (TLS 1.3), still work.
  assert.deepEqual(await handshake(srv.port, { ...mtls, maxVersion: 'TLSv1.2' }), { protocol: 'TLSv1.2', cipher: 'ECDHE-ECDSA-AES256-GCM-SHA384' });
  assert.equal((await handshake(srv.port, mtls) as { protocol: string }).protocol, 'TLSv1.3');
  for (const suite of MESH_SERVER_CIPHERS) assert.doesNotMatch(suite, /CBC|-SHA$/);
});

test('a mesh client offers only AEAD suites: it refuses a TLS 1.2 server that speaks CBC only', async (t) => {
  const { client, server } = await fixture();
  const srv = await startHttps({ ...serverTlsOptions(server, { mode: 'STRICT' }), maxVersion: 'TLSv1.2', ciphers: CBC_SUITES });
  t.after(() => srv.close());
  await assert.rejects(httpsGet(srv.port, clientTlsOptions(client)));
  // Against the mesh's own server the same client negotiates an AEAD suite.
  const good = await startHttps({ ...serverTlsOptions(server, { mode: 'STRICT' }), maxVersion: 'TLSv1.2' });
  t.after(() => good.close());
  assert.equal((await httpsGet(good.port, clientTlsOptions(client))).status, 200);
});

test('mesh.createServer and the gRPC server credentials keep the cipher floor after a certificate rotation', async (t) => {
  const { ca, client, server } = await fixture();
  const identity = manualIdentity(server);
  const mesh = createMeshServer(whoami, { identity, modeFor: () => 'PERMISSIVE' });
  await new Promise<void>((resolve) => mesh.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => { mesh.closeAllConnections(); mesh.close(() => resolve()); }));
  const grpcServer = new GrpcServer();
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync('127.0.0.1:0', grpcServerCredentials(identity, { mode: 'PERMISSIVE' }), (err, p) => (err ? reject(err) : resolve(p))));
  t.after(() => grpcServer.forceShutdown());
  const meshPort = (mesh.address() as AddressInfo).port;
  const cbc = { ...clientTlsOptions(client), maxVersion: 'TLSv1.2' as const, ciphers: CBC_SUITES, ALPNProtocols: ['h2', 'http/1.1'] };
  const gcm = { ...clientTlsOptions(client), maxVersion: 'TLSv1.2' as const, ALPNProtocols: ['h2', 'http/1.1'] };
  for (const round of ['first certificate', 'after rotation']) {
    for (const port of [meshPort, grpcPort]) {
      assert.ok('error' in await handshake(port, cbc), `${round}: port ${port} accepted CBC`);
      assert.equal((await handshake(port, gcm) as { protocol: string }).protocol, 'TLSv1.2', `${round}: port ${port} refused an AEAD suite`);
    }
    identity.rotate(await ca.issueWorkload(serverId));
  }
});
