import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Server, ServerCredentials, status, type ServiceClientConstructor, Metadata } from '@grpc/grpc-js';
import { CertificateAuthority, type CertificateAuthorityOptions } from '../../src/security/ca.js';
import { type CaAuthenticator, CaRequestError, controlPlaneIdentity, createCaService, defaultCaAuthenticator, requestCertificate } from '../../src/security/ca-service.js';
import { createCsr, generateKeyPair, privateKeyToPem, certificateInfo } from '../../src/security/certificates.js';
import { grpcChannelCredentials, grpcPeerIdentity, grpcServerCredentials } from '../../src/security/grpc-credentials.js';
import { createIdentityMaterial } from '../../src/security/material.js';
import { identityFromCa, staticIdentity } from '../../src/security/workload-identity.js';
import { TokenError } from '../../src/security/token.js';
import { loadGrpcPackage } from '../../src/xds/protos.js';
import { issueDnsCertificate } from './tls-helpers.js';

const alice = 'spiffe://cluster.local/ns/default/sa/alice';
const bob = 'spiffe://cluster.local/ns/default/sa/bob';
const calculate = 'spiffe://cluster.local/ns/default/sa/calculate';
const istiod = 'spiffe://cluster.local/ns/istio-system/sa/istiod';
type After = { after(fn: () => unknown): void };

/** Serves `authenticator` → `ca` on a loopback port; returns the target and the authorization metadata each call carried. */
async function serveCa(t: After, ca: CertificateAuthority, credentials: ServerCredentials, authenticator: CaAuthenticator = defaultCaAuthenticator(ca)) {
  const authorizations: string[] = [];
  const svc = createCaService(ca, (call) => {
    const header = call.metadata.get('authorization')[0];
    if (header !== undefined) authorizations.push(String(header));
    return authenticator(call);
  });
  const server = new Server();
  server.addService(svc.definition, svc.implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))));
  t.after(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
  return { target: `127.0.0.1:${port}`, authorizations };
}

async function startCa(t: After, options: { mode?: 'STRICT' | 'PERMISSIVE'; ca?: CertificateAuthorityOptions } = {}) {
  const ca = await CertificateAuthority.create(options.ca);
  const serving = await identityFromCa(ca, istiod);
  t.after(() => serving.close());
  const calls: Array<'cert' | 'token'> = [];
  const auth = defaultCaAuthenticator(ca);
  const { target, authorizations } = await serveCa(t, ca, grpcServerCredentials(serving, { mode: options.mode ?? 'PERMISSIVE' }), (call) => {
    calls.push(grpcPeerIdentity(call) ? 'cert' : 'token');
    return auth(call);
  });
  return { ca, target, calls, authorizations };
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
  const chain = await requestCertificate(target, csr, { token }, { root: ca.rootPem, serverIdentity: istiod, ttlMs: 7_200_000 });
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
  const { ca, target, calls } = await startCa(t, { ca: { defaultTtlMs: 2000 } });
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

test('a mesh workload posing as the CA gets no token: the CA client pins istiod\'s identity, first request and renewals', async (t) => {
  const ca = await CertificateAuthority.create();
  // The impostor holds a genuine certificate of the mesh (sa/calculate) and serves the CSR API with it.
  const impostor = staticIdentity(await ca.issueWorkload(calculate));
  const fake = await serveCa(t, ca, grpcServerCredentials(impostor, { mode: 'PERMISSIVE' }), () => {
    throw new TokenError('the impostor only wanted the token');
  });
  const token = ca.mintBootstrapToken({ namespace: 'default', serviceAccount: 'alice' });
  await assert.rejects(requestCertificate(fake.target, (await csrFor(alice)).csr, { token }, { root: ca.rootPem }), code(status.UNAVAILABLE));
  // createMesh's path: the rotating identity, default pin from the SPIFFE id's trust domain.
  await assert.rejects(controlPlaneIdentity({ target: fake.target, root: ca.rootPem, spiffeId: alice, token }), code(status.UNAVAILABLE));
  // A renewal (certificate, no token) is refused before the handshake completes too.
  const aliceMaterial = await ca.issueWorkload(alice);
  await assert.rejects(requestCertificate(fake.target, (await csrFor(alice)).csr, { material: aliceMaterial }, { root: ca.rootPem }), code(status.UNAVAILABLE));
  assert.deepEqual(fake.authorizations, [], 'the impostor received the bootstrap token');
  // The token was never disclosed, so it still buys alice's certificate at the real CA.
  const real = await startCa(t);
  await assert.rejects(requestCertificate(real.target, (await csrFor(alice)).csr, { token: real.ca.mintBootstrapToken({ namespace: 'default', serviceAccount: 'alice' }) }, { root: real.ca.rootPem, serverIdentity: calculate }),
    code(status.UNAVAILABLE), 'a pin other than the server\'s identity refuses even the real CA');
});

test('Istio\'s istiod (DNS SANs only): accepted when the pin is its DNS name, refused otherwise', async (t) => {
  const ca = await CertificateAuthority.create();
  // The SANs istiod puts in its 15012 certificate (pilot/pkg/bootstrap/server.go getDNSNames, default revision).
  const { key, cert } = await issueDnsCertificate(ca, ['istio-pilot.istio-system.svc', 'istiod-remote.istio-system.svc', 'istiod.istio-system.svc', 'istiod.istio-system.svc.cluster.local']);
  const istiodCreds = ServerCredentials.createSsl(Buffer.from(ca.rootPem), [{ private_key: Buffer.from(key), cert_chain: Buffer.from(cert) }], false);
  const { target, authorizations } = await serveCa(t, ca, istiodCreds);
  const token = () => ca.mintBootstrapToken({ namespace: 'default', serviceAccount: 'alice' });
  // Default pin (a SPIFFE id): istiod's certificate has no URI SAN.
  await assert.rejects(requestCertificate(target, (await csrFor(alice)).csr, { token: token() }, { root: ca.rootPem }), code(status.UNAVAILABLE));
  for (const wrong of ['istiod-canary.istio-system.svc', 'istiod', '127.0.0.1', 'spiffe://cluster.local/ns/istio-system/sa/istiod']) {
    await assert.rejects(requestCertificate(target, (await csrFor(alice)).csr, { token: token() }, { root: ca.rootPem, serverIdentity: wrong }), code(status.UNAVAILABLE), wrong);
  }
  assert.equal(authorizations.length, 0);
  const chain = await requestCertificate(target, (await csrFor(alice)).csr, { token: token() }, { root: ca.rootPem, serverIdentity: 'istiod.istio-system.svc' });
  assert.deepEqual(certificateInfo(chain[0]!).uris, [alice]);
  // The rotating identity keeps the pin for its renewals (certificate auth, no token).
  const identity = await controlPlaneIdentity({ target, root: ca.rootPem, spiffeId: alice, token: token(), serverIdentity: 'istiod.istio-system.svc' });
  t.after(() => identity.close());
  assert.equal(identity.current.spiffeId, alice);
  assert.equal(authorizations.length, 2);
});

test('bootstrap tokens are single-use: a replay is UNAUTHENTICATED, a refused request leaves the token usable, renewals need none', async (t) => {
  const { ca, target, calls } = await startCa(t);
  const token = ca.mintBootstrapToken({ namespace: 'default', serviceAccount: 'alice', ttl: '5m' });
  // A request that issued nothing (CSR for someone else) does not spend it.
  await assert.rejects(requestCertificate(target, (await csrFor(bob)).csr, { token }, { root: ca.rootPem }), code(status.PERMISSION_DENIED));
  const { csr, key } = await csrFor(alice);
  const chain = await requestCertificate(target, csr, { token }, { root: ca.rootPem });
  // The replay — by anyone, the workload itself included — is refused and says why.
  await assert.rejects(requestCertificate(target, (await csrFor(alice)).csr, { token }, { root: ca.rootPem }),
    (err: unknown) => code(status.UNAUTHENTICATED)(err) && /already used/.test((err as Error).message));
  // Renewal with the certificate the token bought.
  const material = createIdentityMaterial({ key, certChain: chain, root: ca.rootPem });
  assert.deepEqual(certificateInfo((await requestCertificate(target, (await csrFor(alice)).csr, { material }, { root: ca.rootPem }))[0]!).uris, [alice]);
  assert.deepEqual(calls, ['token', 'token', 'token', 'cert']);
  // A certificate that expired before renewal authenticates nobody (the token cannot stand in for it any more).
  const expired = await (await CertificateAuthority.load(ca.exportRoot(), { now: () => Date.now() - 7_200_000 })).issueWorkload(alice, { ttlMs: 3_600_000 });
  await assert.rejects(requestCertificate(target, (await csrFor(alice)).csr, { material: expired }, { root: ca.rootPem }), code(status.UNAUTHENTICATED));
});

test('the redeemed-token memory is bounded: past its cap new tokens get RESOURCE_EXHAUSTED, renewals still work', async (t) => {
  const { ca, target } = await startCa(t, { ca: { maxRedeemedTokens: 1 } });
  const first = await requestCertificate(target, (await csrFor(alice)).csr, { token: ca.mintBootstrapToken({ namespace: 'default', serviceAccount: 'alice' }) }, { root: ca.rootPem });
  await assert.rejects(requestCertificate(target, (await csrFor(bob)).csr, { token: ca.mintBootstrapToken({ namespace: 'default', serviceAccount: 'bob' }) }, { root: ca.rootPem }),
    (err: unknown) => code(status.RESOURCE_EXHAUSTED)(err) && /unexpired redeemed tokens/.test((err as Error).message));
  assert.equal(first.length, 2);
  assert.equal((await requestCertificate(target, (await csrFor(alice)).csr, { material: await ca.issueWorkload(alice) }, { root: ca.rootPem })).length, 2);
});
