import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CertificateAuthority, CsrRejectedError } from '../../src/security/ca.js';
import { CA_DIR_FILES, openCaDir } from '../../src/security/ca-dir.js';
import { certDirIdentity, loadCertDir } from '../../src/security/cert-dir.js';
import { createCsr, generateKeyPair, privateKeyToPem } from '../../src/security/certificates.js';
import { createIdentityMaterial } from '../../src/security/material.js';
import { TokenError, TokenReplayCache, TokenReplayCacheFullError } from '../../src/security/token.js';
import { loadX509 } from '../../src/security/x509.js';

const x509 = await loadX509();

const alice = 'spiffe://cluster.local/ns/default/sa/alice';

test('signs a CSR into an Istio-shaped workload certificate, leaf first, root last', async () => {
  const ca = await CertificateAuthority.create();
  const keys = await generateKeyPair();
  const chain = await ca.sign(await createCsr(keys, alice), { callerIdentity: alice, ttlMs: 3_600_000 });
  assert.equal(chain.length, 2);
  assert.equal(chain[1], ca.rootPem);
  const leaf = new X509Certificate(chain[0]!);
  const root = new X509Certificate(ca.rootPem);
  assert.ok(leaf.checkIssued(root) && leaf.verify(root.publicKey));
  assert.equal(leaf.subjectAltName, `URI:${alice}`);
  assert.equal(leaf.ca, false);
  assert.deepEqual(leaf.keyUsage?.sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  const parsed = new x509.X509Certificate(chain[0]!);
  const ku = parsed.getExtension(x509.KeyUsagesExtension)!;
  assert.equal(ku.usages, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
  assert.equal(parsed.getExtension(x509.SubjectAlternativeNameExtension)!.critical, true);
  const lifetime = parsed.notAfter.getTime() - parsed.notBefore.getTime();
  assert.ok(lifetime > 3_590_000 && lifetime <= 3_600_000, `lifetime ${lifetime}`);
  // The material helper accepts it with the key that made the CSR.
  const m = createIdentityMaterial({ key: await privateKeyToPem(keys.privateKey), certChain: chain, root: ca.rootPem });
  assert.equal(m.spiffeId, alice);
});

test('caps validity at the CA maximum and refuses CSRs for someone else', async () => {
  const ca = await CertificateAuthority.create({ maxTtlMs: 7_200_000 });
  const keys = await generateKeyPair();
  const csr = await createCsr(keys, alice);
  const [leafPem] = await ca.sign(csr, { callerIdentity: alice, ttlMs: 365 * 86_400_000 });
  const leaf = new x509.X509Certificate(leafPem!);
  assert.ok(leaf.notAfter.getTime() - leaf.notBefore.getTime() <= 7_200_000);

  await assert.rejects(ca.sign(csr, { callerIdentity: 'spiffe://cluster.local/ns/default/sa/mallory' }),
    (err: unknown) => err instanceof CsrRejectedError && err.identityMismatch && /does not match/.test(err.message));
  await assert.rejects(ca.sign(await createCsr(keys, 'spiffe://evil.org/ns/default/sa/alice'), { callerIdentity: 'spiffe://evil.org/ns/default/sa/alice' }),
    (err: unknown) => err instanceof CsrRejectedError && !err.identityMismatch && /trust domain/.test(err.message));
  await assert.rejects(ca.sign('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', { callerIdentity: alice }), CsrRejectedError);
});

test('bootstrap tokens: minted for one identity, forged or expired ones refused', async () => {
  let now = Date.now();
  const ca = await CertificateAuthority.create({ now: () => now });
  const other = await CertificateAuthority.create();
  const token = ca.mintBootstrapToken({ namespace: 'default', serviceAccount: 'alice', ttl: '10m' });
  assert.equal(ca.verifyBootstrapToken(token).uri, alice);
  assert.throws(() => other.verifyBootstrapToken(token), TokenError);
  const [h, p] = token.split('.');
  const forgedPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), sub: 'spiffe://cluster.local/ns/default/sa/admin' })).toString('base64url');
  assert.throws(() => ca.verifyBootstrapToken(`${h}.${forgedPayload}.${token.split('.')[2]}`), /signature/);
  const none = Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url');
  assert.throws(() => ca.verifyBootstrapToken(`${none}.${p}.`), /not ES256/);
  now += 11 * 60_000;
  assert.throws(() => ca.verifyBootstrapToken(token), /expired/);
});

test('redeemed bootstrap tokens: single-use until they expire, released when nothing was issued, memory pruned and capped', async () => {
  let now = Date.now();
  const ca = await CertificateAuthority.create({ now: () => now, maxRedeemedTokens: 2 });
  const mint = (sa: string, ttl = '10m') => ca.mintBootstrapToken({ namespace: 'default', serviceAccount: sa, ttl });
  const a = mint('alice');
  const redeemed = ca.redeemBootstrapToken(a);
  assert.equal(redeemed.id.uri, alice);
  assert.throws(() => ca.redeemBootstrapToken(a), (err: unknown) => err instanceof TokenError && /already used/.test(err.message));
  // Verification alone (inspection) neither spends nor is refused.
  assert.equal(ca.verifyBootstrapToken(a).uri, alice);
  redeemed.release();
  assert.equal(ca.redeemBootstrapToken(a).id.uri, alice);
  // Two unexpired tokens held: a third is refused, not an old one forgotten.
  ca.redeemBootstrapToken(mint('bob', '1m'));
  const c = mint('carol');
  assert.throws(() => ca.redeemBootstrapToken(c), TokenReplayCacheFullError);
  // Once bob's token is past exp + leeway its id is pruned and room is made; alice's is still remembered.
  now += 2 * 60_000;
  assert.equal(ca.redeemBootstrapToken(c).id.uri, 'spiffe://cluster.local/ns/default/sa/carol');
  assert.throws(() => ca.redeemBootstrapToken(a), /already used/);
  // After its own expiry a replay fails as expired, whatever the memory holds.
  now += 10 * 60_000;
  assert.throws(() => ca.redeemBootstrapToken(a), /expired/);
});

test('the replay cache keeps an id until the given time, then forgets it', () => {
  const cache = new TokenReplayCache(3);
  assert.equal(cache.claim('x', 10_000, 0), true);
  assert.equal(cache.claim('x', 10_000, 9_999), false);
  assert.equal(cache.claim('x', 30_000, 10_000), true, 'an expired id may be recorded again');
  for (const id of ['y', 'z']) assert.equal(cache.claim(id, 20_000, 10_000), true);
  assert.throws(() => cache.claim('w', 40_000, 15_000), TokenReplayCacheFullError);
  assert.equal(cache.claim('w', 40_000, 20_000), true);
  assert.equal(cache.size, 2, 'y and z were pruned');
  assert.throws(() => new TokenReplayCache(0), RangeError);
});

test('development CA dir: one root shared by every opener, a fresh leaf for each', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'meshlet-ca-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // Concurrent first use must still end with a single root.
  const [a, b] = await Promise.all([openCaDir(dir), openCaDir(dir)]);
  const c = await openCaDir(dir);
  assert.equal(a.rootPem, b.rootPem);
  assert.equal(a.rootPem, c.rootPem);
  assert.equal((await stat(join(dir, CA_DIR_FILES.key))).mode & 0o777, 0o600);
  assert.equal(await readFile(join(dir, CA_DIR_FILES.root), 'utf8'), a.rootPem);
  const m1 = await a.issueWorkload(alice);
  const m2 = await c.issueWorkload(alice);
  assert.notEqual(m1.key, m2.key);
  assert.ok(new X509Certificate(m2.certChain[0]!).checkIssued(new X509Certificate(a.rootPem)));
});

test('Istio /etc/certs layout: loads, reloads on change (debounced), keeps old material on garbage', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'meshlet-certs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ca = await CertificateAuthority.create();
  const write = async (m: { key: string; certChain: readonly string[]; root: string }) => {
    await writeFile(join(dir, 'cert-chain.pem'), m.certChain.join(''));
    await writeFile(join(dir, 'key.pem'), m.key);
    await writeFile(join(dir, 'root-cert.pem'), m.root);
  };
  const first = await ca.issueWorkload(alice);
  await write(first);
  assert.equal((await loadCertDir(dir)).spiffeId, alice);
  const errors: unknown[] = [];
  const identity = await certDirIdentity(dir, { debounceMs: 50, onError: (e) => errors.push(e) });
  t.after(() => identity.close());
  const rotated = new Promise<string>((resolve) => identity.onRotate((m) => resolve(m.certChain[0]!)));
  const second = await ca.issueWorkload(alice);
  await write(second);
  const ac = new AbortController();
  const leaf = await Promise.race([rotated, sleep(5000, 'timeout', { signal: ac.signal }).catch(() => 'aborted')]);
  ac.abort();
  assert.equal(leaf, second.certChain[0]);
  assert.equal(identity.current.certChain[0], second.certChain[0]);

  await writeFile(join(dir, 'key.pem'), first.key); // key no longer matches the chain
  const deadline = Date.now() + 5000;
  while (errors.length === 0 && Date.now() < deadline) await sleep(20);
  assert.ok(errors.length > 0, 'a mismatched key is reported');
  assert.equal(identity.current.key, second.key, 'old material keeps serving');
  await identity.close();
});

test('identity material must chain to the given root', async () => {
  const [ca, other] = await Promise.all([CertificateAuthority.create(), CertificateAuthority.create()]);
  const m = await ca.issueWorkload(alice);
  assert.throws(() => createIdentityMaterial({ key: m.key, certChain: m.certChain, root: other.rootPem }), /trusted root/);
  assert.equal(createIdentityMaterial({ key: m.key, certChain: m.certChain.slice(0, 1), root: ca.rootPem }).spiffeId, alice);
});
