/**
 * meshlet's CA client against a server that behaves like Istio's istiod on
 * 15012: a serving certificate with DNS SANs only (pilot/pkg/bootstrap/server.go
 * getDNSNames), CSRs authenticated by the Kubernetes service-account token
 * (security/pkg/server/ca/authenticate/kubeauth), which istio-agent re-reads
 * from its projected file for every CSR (security/pkg/nodeagent/caclient).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import { CertificateAuthority } from '../../src/security/ca.js';
import { type CaAuthenticator, CaRequestError, controlPlaneIdentity, createCaService } from '../../src/security/ca-service.js';
import { certificateInfo } from '../../src/security/certificates.js';
import { grpcPeerIdentity } from '../../src/security/grpc-credentials.js';
import { istiodServerName } from '../../src/security/tls.js';
import { TokenError } from '../../src/security/token.js';
import type { RotatorClock } from '../../src/security/workload-identity.js';
import { issueDnsCertificate } from './tls-helpers.js';

const alice = 'spiffe://cluster.local/ns/default/sa/alice';
/** The SANs of istiod's 15012 certificate, default revision. */
const ISTIOD_SANS = ['istio-pilot.istio-system.svc', 'istiod-remote.istio-system.svc', 'istiod.istio-system.svc', 'istiod.istio-system.svc.cluster.local'];
type After = { after(fn: () => unknown): void };

interface SeenCall { token: string | undefined; clusterId: string | undefined; clientCertificate: boolean }

/**
 * An istiod-like CA: DNS-SAN certificate, tokens checked against the set of
 * currently valid ones (what a TokenReview answers), no client certificate needed.
 */
async function startIstiodCa(t: After, sans: readonly string[] = ISTIOD_SANS) {
  const ca = await CertificateAuthority.create();
  const { key, cert } = await issueDnsCertificate(ca, sans);
  const valid = new Set<string>();
  const seen: SeenCall[] = [];
  const authenticator: CaAuthenticator = (call) => {
    const header = call.metadata.get('authorization')[0];
    const token = header === undefined ? undefined : String(header).replace(/^Bearer /, '');
    const clusterId = call.metadata.get('clusterid')[0];
    seen.push({ token, clusterId: clusterId === undefined ? undefined : String(clusterId), clientCertificate: grpcPeerIdentity(call) !== undefined });
    if (token === undefined || !valid.has(token)) throw new TokenError('the token failed review');
    return alice; // istiod derives the identity from the token's namespace and service account
  };
  const svc = createCaService(ca, authenticator);
  const server = new Server();
  server.addService(svc.definition, svc.implementation);
  const creds = ServerCredentials.createSsl(Buffer.from(ca.rootPem), [{ private_key: Buffer.from(key), cert_chain: Buffer.from(cert) }], false);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
  t.after(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
  return { ca, target: `127.0.0.1:${port}`, valid, seen };
}

async function tokenDir(t: After): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'meshlet-token-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'istio-token');
}

/** A rotator clock whose renewal timer the test fires. */
function manualClock(): RotatorClock & { fire(): void } {
  let pending: (() => void) | undefined;
  return {
    now: () => Date.now(),
    setTimeout: (fn) => { pending = fn; return 1; },
    clearTimeout: () => { pending = undefined; },
    fire() {
      const fn = pending;
      pending = undefined;
      assert.ok(fn, 'a renewal is scheduled');
      fn();
    },
  };
}

test('istio-agent\'s name for istiod: the CA address\'s host, istiod.istio-system.svc for localhost or an IP, ISTIOD_SAN first', () => {
  assert.equal(istiodServerName('istiod.istio-system.svc:15012'), 'istiod.istio-system.svc');
  assert.equal(istiodServerName('dns:///istiod-1-24.istio-system.svc:15012'), 'istiod-1-24.istio-system.svc');
  assert.equal(istiodServerName('localhost:15012'), 'istiod.istio-system.svc');
  assert.equal(istiodServerName('127.0.0.1:15012'), 'istiod.istio-system.svc');
  assert.equal(istiodServerName('[::1]:15012'), 'istiod.istio-system.svc');
  assert.equal(istiodServerName('127.0.0.1:15012', 'istiod.custom.svc'), 'istiod.custom.svc');
});

test('CSR to a DNS-SAN-only istiod with the token file: pinned by DNS name, token and ClusterID sent, re-read at each renewal', async (t) => {
  const { ca, target, valid, seen } = await startIstiodCa(t);
  const tokenFile = await tokenDir(t);
  await writeFile(tokenFile, 'k8s-token-1\n');
  valid.add('k8s-token-1');
  const clock = manualClock();
  // No `serverIdentity`: with a token file the pin is istio-agent's (127.0.0.1 → istiod.istio-system.svc).
  const identity = await controlPlaneIdentity({ target, root: ca.rootPem, spiffeId: alice, tokenFile, clusterId: 'Kubernetes', clock });
  t.after(() => identity.close());
  assert.deepEqual(certificateInfo(identity.current.certChain[0]!).uris, [alice]);
  assert.deepEqual(seen, [{ token: 'k8s-token-1', clusterId: 'Kubernetes', clientCertificate: false }]);

  // The kubelet rotates the projected token; the old one no longer passes review.
  valid.delete('k8s-token-1');
  valid.add('k8s-token-2');
  await writeFile(tokenFile, 'k8s-token-2\n');
  const first = identity.current;
  const rotated = new Promise<void>((resolve) => { identity.onRotate(() => resolve()); });
  clock.fire();
  await rotated;
  assert.notEqual(identity.current, first);
  assert.deepEqual(certificateInfo(identity.current.certChain[0]!).uris, [alice]);
  // The renewal carried the new token, not the certificate (as istio-agent renews with istiod).
  assert.deepEqual(seen[1], { token: 'k8s-token-2', clusterId: 'Kubernetes', clientCertificate: false });
  assert.equal(seen.length, 2);
});

test('the token goes only to the pinned istiod: another DNS name or a missing token file sends nothing', async (t) => {
  const other = await startIstiodCa(t, ['ratings.default.svc']);
  const tokenFile = await tokenDir(t);
  await writeFile(tokenFile, 'k8s-token-1\n');
  other.valid.add('k8s-token-1');
  const unavailable = (err: unknown) => err instanceof CaRequestError && err.grpcCode === status.UNAVAILABLE;
  await assert.rejects(controlPlaneIdentity({ target: other.target, root: other.ca.rootPem, spiffeId: alice, tokenFile }), unavailable);
  assert.equal(other.seen.length, 0, 'the handshake failed before any metadata was sent');

  const real = await startIstiodCa(t);
  await assert.rejects(controlPlaneIdentity({ target: real.target, root: real.ca.rootPem, spiffeId: alice, tokenFile: join(tokenFile, '..', 'missing') }),
    (err: unknown) => err instanceof CaRequestError && err.grpcCode === status.UNAUTHENTICATED && /cannot read the token file/.test(err.message));
  assert.equal(real.seen.length, 0);
});
