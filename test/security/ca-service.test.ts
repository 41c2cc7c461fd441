import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Server, status, type ServiceClientConstructor, Metadata } from '@grpc/grpc-js';
import { CertificateAuthority } from '../../src/security/ca.js';
import { CaRequestError, controlPlaneIdentity, createCaService, defaultCaAuthenticator, requestCertificate } from '../../src/security/ca-service.js';
import { createCsr, generateKeyPair, privateKeyToPem, certificateInfo } from '../../src/security/certificates.js';
import { grpcChannelCredentials, grpcPeerIdentity, grpcServerCredentials } from '../../src/security/grpc-credentials.js';
import { createIdentityMaterial } from '../../src/security/material.js';
import { identityFromCa, staticIdentity } from '../../src/security/workload-identity.js';
import { loadGrpcPackage } from '../../src/xds/protos.js';

const alice = 'spiffe://cluster.local/ns/default/sa/alice';
const bob = 'spiffe://cluster.local/ns/default/sa/bob';
const istiod = 'spiffe://cluster.local/ns/istio-system/sa/istiod';

async function startCa(t: { after(fn: () => unknown): void }, options: { mode?: 'STRICT' | 'PERMISSIVE'; defaultTtlMs?: number } = {}) {
  const ca = await CertificateAuthority.create(options.defaultTtlMs ? { defaultTtlMs: options.defaultTtlMs } : {});
  const serving = await identityFromCa(ca, istiod);
  const calls: Array<'cert' | 'token'> = [];
  const auth = defaultCaAuthenticator(ca);
  const svc = createCaService(ca, (call) => {
    calls.push(grpcPeerIdentity(call) ? 'cert' : 'token');
    return auth(call);
  });
  const server = new Server();
  server.addService(svc.definition, svc.implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpcServerCredentials(serving, { mode: options.mode ?? 'PERMISSIVE' }), (err, p) => (err ? reject(err) : resolve(p))));
  t.after(async () => {
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    await serving.close();
  });
  return { ca, target: `127.0.0.1:${port}`, calls };
}

async function csrFor(id: string) {
  const keys = await generateKeyPair();
  return { csr: await createCsr(keys, id), key: await privateKeyToPem(keys.privateKey) };
}

const code = (c: number) => (err: unknown) => err instanceof CaRequestError && err.grpcCode === c;

test('CreateCertificate: bootstrap token → certificate; renewal over mTLS', async (t) => {
  const { ca, target, calls } = await startCa(t);
  const token = ca.mintBootstrapToken({ namespace: 'default', serviceAccount: 'alice', ttl: '5m' });
  const { csr, key } = await csrFor(alice);
  const chain = await requestCertificate(target, csr, { token }, { root: ca.rootPem, expectedServerIds: [istiod], ttlMs: 7_200_000 });
  assert.equal(chain.length, 2);
  assert.equal(chain[1], ca.rootPem);
  const info = certificateInfo(chain[0]!);
  assert.deepEqual(info.uris, [alice]);
  assert.ok(info.notAfter.getTime() - info.notBefore.getTime() <= 7_200_000);

  const material = createIdentityMaterial({ key, certChain: chain, root: ca.rootPem });
  const next = await csrFor(alice);
  const renewed = await requestCertificate(target, next.csr, { material }, { root: ca.rootPem });
  assert.deepEqual(certificateInfo(renewed[0]!).uris, [alice]);
  assert.deepEqual(calls, ['token', 'cert']);
});

test('the CA refuses a CSR whose identity does not match the caller', async (t) => {
  const { ca, target } = await startCa(t);
  const aliceToken = ca.mintBootstrapToken({ namespace: 'default', serviceAccount: 'alice' });
  await assert.rejects(requestCertificate(target, (await csrFor(bob)).csr, { token: aliceToken }, { root: ca.rootPem }), code(status.PERMISSION_DENIED));
  // Same with a certificate: alice's certificate cannot renew bob.
  const aliceMaterial = await ca.issueWorkload(alice);
  await assert.rejects(requestCertificate(target, (await csrFor(bob)).csr, { material: aliceMaterial }, { root: ca.rootPem }), code(status.PERMISSION_DENIED));
  // No credentials, a forged token, or another CA's token: unauthenticated.
  await assert.rejects(requestCertificate(target, (await csrFor(alice)).csr, {}, { root: ca.rootPem }), code(status.UNAUTHENTICATED));
  const other = await CertificateAuthority.create();
  const foreignToken = other.mintBootstrapToken({ namespace: 'default', serviceAccount: 'alice' });
  await assert.rejects(requestCertificate(target, (await csrFor(alice)).csr, { token: foreignToken }, { root: ca.rootPem }), code(status.UNAUTHENTICATED));
  // A certificate from another root does not authenticate anyone (PERMISSIVE: the handshake passes, the call does not).
  const rogue = await other.issueWorkload(alice);
  await assert.rejects(requestCertificate(target, (await csrFor(alice)).csr, { material: rogue }, { root: ca.rootPem }), code(status.UNAUTHENTICATED));
  // And the client refuses a CA server it does not trust.
  await assert.rejects(requestCertificate(target, (await csrFor(alice)).csr, { token: aliceToken }, { root: other.rootPem }), code(status.UNAVAILABLE));
});

test('control-plane identity: token first, then renewals with the current certificate', async (t) => {
  const { ca, target, calls } = await startCa(t, { defaultTtlMs: 2000 });
  const token = ca.mintBootstrapToken({ namespace: 'default', serviceAccount: 'alice', ttl: '1m' });
  const identity = await controlPlaneIdentity({ target, root: ca.rootPem, spiffeId: alice, token });
  t.after(() => identity.close());
  assert.equal(identity.current.spiffeId, alice);
  const rotated = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no rotation within 5 s')), 5000);
    identity.onRotate((m) => { clearTimeout(timer); resolve(m.certChain[0]!); });
  });
  assert.notEqual(rotated, undefined);
  assert.deepEqual(calls.slice(0, 2), ['token', 'cert']);
});

test('gRPC credentials from the identity: mTLS both ways, peer identity visible, STRICT needs a client certificate', async (t) => {
  const { ca, target } = await startCa(t, { mode: 'STRICT' });
  const pkg = loadGrpcPackage(['istio/v1/auth/ca.proto']) as unknown as { istio: { v1: { auth: { IstioCertificateService: ServiceClientConstructor } } } };
  const Client = pkg.istio.v1.auth.IstioCertificateService;
  const aliceIdentity = staticIdentity(await ca.issueWorkload(alice));
  const call = (client: InstanceType<ServiceClientConstructor>, csr: string, md = new Metadata()) => new Promise<unknown>((resolve, reject) => {
    client.CreateCertificate({ csr }, md, { deadline: Date.now() + 5000 }, (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res)));
  });
  // mTLS: the server's authenticator sees alice's certificate; the client checked istiod's id.
  const good = new Client(target, grpcChannelCredentials(aliceIdentity, { expectedSpiffeIds: [istiod] }));
  t.after(() => good.close());
  const res = await call(good, (await csrFor(alice)).csr) as { cert_chain: string[] };
  assert.deepEqual(certificateInfo(res.cert_chain[0]!).uris, [alice]);
  // Wrong expected server id: handshake refused.
  const picky = new Client(target, grpcChannelCredentials(aliceIdentity, { expectedSpiffeIds: [bob] }));
  t.after(() => picky.close());
  await assert.rejects(call(picky, (await csrFor(alice)).csr), (err: { code?: number }) => err.code === status.UNAVAILABLE);
  // STRICT: a token-only client (no certificate) cannot even connect.
  const token = ca.mintBootstrapToken({ namespace: 'default', serviceAccount: 'alice' });
  await assert.rejects(requestCertificate(target, (await csrFor(alice)).csr, { token }, { root: ca.rootPem }), code(status.UNAVAILABLE));
});
