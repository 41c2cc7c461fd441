/**
 * The control plane's CA end to end: meshes in control-plane mode get their
 * certificates from the CA hosted on the ADS port (bootstrap token first,
 * renewals over mTLS on the same port), then talk mTLS through mesh.fetch →
 * mesh.createServer; the CA refuses a token or certificate for someone else.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { MeshConfigError, createMesh, type Mesh } from '../../src/index.js';
import { createControlPlane, type ControlPlane } from '../../src/control-plane/index.js';
import { openCaDir } from '../../src/security/ca-dir.js';
import { CertificateAuthority } from '../../src/security/ca.js';
import { CaRequestError, requestCertificate } from '../../src/security/ca-service.js';
import { certificateInfo, createCsr, generateKeyPair } from '../../src/security/certificates.js';
import type { MeshServer } from '../../src/security/mesh-server.js';
import { CALC, CALC_ID, CLIENT_ID, clientConfig, closeServer, listen, whoami } from '../security/helpers.js';
import { configDir } from './helpers.js';

const ISTIOD_ID = 'spiffe://cluster.local/ns/istio-system/sa/istiod';

interface Setup {
  cp: ControlPlane;
  caDir: string;
  server: Mesh;
  http: MeshServer;
  port: number;
  meshFor(name: string, options?: { token?: string; ttl?: string; identity?: string }): Promise<Mesh>;
  close(): Promise<void>;
}

/**
 * A control plane with a CA, and `calculate` (control-plane mode, certificate
 * from the CA) serving whoami on a loopback port that the config points at.
 */
async function setup(tls?: string, calcTtl?: string): Promise<Setup> {
  const caDir = await mkdtemp(join(tmpdir(), 'meshlet-cp-ca-'));
  const config = await configDir({});
  const cp = await createControlPlane({ config: config.dir, port: 0, host: '127.0.0.1', debounceMs: 10, ca: { dir: caDir }, log: () => {} });
  const meshes: Mesh[] = [];
  const meshFor = async (name: string, options: { token?: string; ttl?: string; identity?: string } = {}) => {
    const mesh = await createMesh({
      workload: { name, namespace: 'default', serviceAccount: name, labels: { app: name } },
      xds: { server: `127.0.0.1:${cp.port}`, initialFetchTimeoutMs: 2000 },
      ca: {
        root: cp.rootCert(), token: options.token ?? cp.mintToken({ namespace: 'default', serviceAccount: name, ttl: '5m' }),
        ...(options.ttl && { ttl: options.ttl }), ...(options.identity !== undefined && { identity: options.identity }),
      },
    });
    meshes.push(mesh);
    return mesh;
  };
  const server = await meshFor('calculate', calcTtl ? { ttl: calcTtl } : {});
  const http = server.createServer(whoami(server));
  const port = await listen(http);
  await config.write('calculate.yaml', clientConfig(port, tls ? { tls } : {}));
  await cp.reload();
  return {
    cp, caDir, server, http, port, meshFor,
    async close() {
      for (const m of meshes) await m.close();
      await closeServer(http);
      await cp.close();
      await config.remove();
      await rm(caDir, { recursive: true, force: true });
    },
  };
}

for (const [mode, tls] of [['auto-mTLS', undefined], ['DestinationRule ISTIO_MUTUAL', '{ mode: ISTIO_MUTUAL }']] as const) {
  test(`two meshes with certificates from the control plane's CA talk mTLS (${mode}); the server sees the caller`, async () => {
    const s = await setup(tls);
    try {
      const client = await s.meshFor('client');
      // Both identities come from the control plane's root, over the ADS port.
      assert.equal(s.server.identity?.current.spiffeId, CALC_ID);
      assert.equal(client.identity?.current.spiffeId, CLIENT_ID);
      assert.equal(client.identity?.current.root, s.cp.rootCert());
      assert.ok(new X509Certificate(client.identity!.current.certChain[0]!).verify(new X509Certificate(s.cp.rootCert()).publicKey));
      const res = await client.fetch(`http://${CALC}:8000/`);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), `${CLIENT_ID} tls`);
      // A plaintext caller on the same PERMISSIVE port is anonymous: the identity above came from mTLS.
      const plain = await fetch(`http://127.0.0.1:${s.port}/`);
      assert.equal(await plain.text(), 'anonymous plain');
    } finally {
      await s.close();
    }
  });
}

test('the hosted CA refuses a token for another service account, another CA\'s token, and a CSR for someone else', async () => {
  const s = await setup();
  try {
    // A mesh whose token names `calculate` cannot become `client`: createMesh fails with PERMISSION_DENIED.
    const stolen = s.cp.mintToken({ namespace: 'default', serviceAccount: 'calculate' });
    await assert.rejects(s.meshFor('client', { token: stolen }),
      (err: unknown) => err instanceof CaRequestError && err.grpcCode === grpc.status.PERMISSION_DENIED && /does not match/.test(err.message));
    // A token from another CA is not a credential at all.
    const other = await CertificateAuthority.create();
    await assert.rejects(s.meshFor('client', { token: other.mintBootstrapToken({ namespace: 'default', serviceAccount: 'client' }) }),
      (err: unknown) => err instanceof CaRequestError && err.grpcCode === grpc.status.UNAUTHENTICATED);
    // calculate's own certificate cannot renew anybody else (renewal authenticates by certificate).
    const csr = await createCsr(await generateKeyPair(), CLIENT_ID);
    await assert.rejects(requestCertificate(`127.0.0.1:${s.cp.port}`, csr, { material: s.server.identity!.current }, { root: s.cp.rootCert(), serverIdentity: ISTIOD_ID }),
      (err: unknown) => err instanceof CaRequestError && err.grpcCode === grpc.status.PERMISSION_DENIED);
    // `meshlet token --ca-dir <the same dir>` mints tokens the control plane accepts (same root, other process's view).
    const cliToken = (await openCaDir(s.caDir)).mintBootstrapToken({ namespace: 'default', serviceAccount: 'client', ttl: '1m' });
    const client = await s.meshFor('client', { token: cliToken });
    assert.equal(await (await client.fetch(`http://${CALC}:8000/`)).text(), `${CLIENT_ID} tls`);
  } finally {
    await s.close();
  }
});

test('renewal over mTLS on the ADS port: a short-lived certificate rotates and calls keep working', async () => {
  const s = await setup(undefined, '2s');
  try {
    const client = await s.meshFor('client', { ttl: '2s' });
    const first = s.server.identity!.current.certChain[0];
    // The SDK renews at about half-life (1 s).
    const rotated = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no rotation within 5 s')), 5000);
      const sub = s.server.identity!.onRotate((m) => { clearTimeout(timer); sub.dispose(); resolve(m.certChain[0]!); });
    });
    assert.notEqual(rotated, first);
    assert.equal(certificateInfo(rotated).uris[0], CALC_ID);
    // Renewal by certificate alone (no token) over TLS on the ADS port, as the SDK renews.
    const chain = await requestCertificate(`127.0.0.1:${s.cp.port}`, await createCsr(await generateKeyPair(), CALC_ID),
      { material: s.server.identity!.current }, { root: s.cp.rootCert(), serverIdentity: ISTIOD_ID, ttlMs: 60_000 });
    assert.deepEqual(certificateInfo(chain[0]!).uris, [CALC_ID]);
    // After the rotation both sides still talk mTLS (bounded loop).
    for (let i = 0; i < 5; i++) {
      const res = await client.fetch(`http://${CALC}:8000/`);
      assert.equal(await res.text(), `${CLIENT_ID} tls`);
    }
  } finally {
    await s.close();
  }
});

test('a bootstrap token buys one certificate: replaying it at the control plane, or a second createMesh with it, is UNAUTHENTICATED', async () => {
  const s = await setup();
  try {
    const token = s.cp.mintToken({ namespace: 'default', serviceAccount: 'client', ttl: '5m' });
    const client = await s.meshFor('client', { token });
    assert.equal(client.identity?.current.spiffeId, CLIENT_ID);
    // Whoever captured the token (a log, a fake CA before the pin) cannot get client's certificate with it.
    const csr = await createCsr(await generateKeyPair(), CLIENT_ID);
    await assert.rejects(requestCertificate(`127.0.0.1:${s.cp.port}`, csr, { token }, { root: s.cp.rootCert() }),
      (err: unknown) => err instanceof CaRequestError && err.grpcCode === grpc.status.UNAUTHENTICATED && /already used/.test(err.message));
    // Nor can a restart of the workload: a new createMesh needs a new token…
    await assert.rejects(s.meshFor('client', { token }), (err: unknown) => err instanceof CaRequestError && err.grpcCode === grpc.status.UNAUTHENTICATED);
    // …while the running mesh keeps renewing with its certificate and calling over mTLS.
    assert.equal(await (await client.fetch(`http://${CALC}:8000/`)).text(), `${CLIENT_ID} tls`);
  } finally {
    await s.close();
  }
});

test('createMesh ca.identity: a bad pin is a MeshConfigError; a pin the control plane does not carry refuses it', async () => {
  const s = await setup();
  try {
    await assert.rejects(s.meshFor('client', { identity: 'not a name' }),
      (err: unknown) => err instanceof MeshConfigError && err.path === 'ca.identity' && err.kind === 'MeshOptions');
    await assert.rejects(s.meshFor('client', { identity: 'spiffe://cluster.local/ns//sa/istiod' }), (err: unknown) => err instanceof MeshConfigError);
    // Istio's DNS pin against meshlet's control plane (a SPIFFE certificate): handshake refused, token kept.
    const token = s.cp.mintToken({ namespace: 'default', serviceAccount: 'client' });
    await assert.rejects(s.meshFor('client', { token, identity: 'istiod.istio-system.svc' }),
      (err: unknown) => err instanceof CaRequestError && err.grpcCode === grpc.status.UNAVAILABLE);
    const client = await s.meshFor('client', { token, identity: ISTIOD_ID });
    assert.equal(client.identity?.current.spiffeId, CLIENT_ID);
  } finally {
    await s.close();
  }
});
