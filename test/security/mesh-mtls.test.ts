import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ALLOW_CLIENT_GET, CALC, CALC_ID, CLIENT_ID, clientConfig, closeServer, listen, meshFor, tempDir, whoami } from './helpers.js';
import type { Mesh } from '../../src/mesh.js';
import type { MeshServer } from '../../src/security/mesh-server.js';

function peerAuth(mode: string, extra = ''): string {
  return `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: default }
spec: { mtls: { mode: ${mode} } }
${extra}`;
}

/** A plaintext GET on a fresh connection; resolves with the body or rejects (connection refused/reset). */
function plainGet(port: number, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

interface Pair {
  server: Mesh;
  client: Mesh;
  http: MeshServer;
  port: number;
  close(): Promise<void>;
}

async function pair(serverConfig: string, clientOptions: { meshed?: boolean; tls?: string; clientCa?: boolean } = {}): Promise<Pair> {
  const ca = await tempDir();
  const server = await meshFor('calculate', ca.dir, serverConfig);
  const http = server.createServer(whoami(server));
  const port = await listen(http);
  const client = await meshFor('client', clientOptions.clientCa === false ? undefined : ca.dir, clientConfig(port, clientOptions));
  return {
    server, client, http, port,
    async close() {
      await client.close();
      await closeServer(http);
      await server.close();
      await ca.remove();
    },
  };
}

test('two meshed services talk mTLS through mesh.fetch → mesh.createServer; the server sees the caller', async () => {
  const p = await pair('');
  try {
    const res = await p.client.fetch(`http://${CALC}:8000/`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), `${CLIENT_ID} tls`);
    assert.equal(p.server.identity?.current.spiffeId, CALC_ID);
    // The inbound telemetry path reads the same peer: connection_security_policy="mutual_tls".
    assert.equal(p.client.clusters().length > 0, true);
  } finally {
    await p.close();
  }
});

test('STRICT rejects a plaintext client and a mesh without identity; mTLS still works', async () => {
  const p = await pair(peerAuth('STRICT'));
  const anon = await meshFor('anon', undefined, clientConfig(p.port));
  try {
    await assert.rejects(plainGet(p.port), /ECONNRESET|socket hang up/);
    const refused = await anon.fetch(`http://${CALC}:8000/`);
    assert.equal(refused.status, 503);
    await refused.text();
    const ok = await p.client.fetch(`http://${CALC}:8000/`);
    assert.equal(await ok.text(), `${CLIENT_ID} tls`);
    assert.ok(p.http.rejected >= 2);
  } finally {
    await anon.close();
    await p.close();
  }
});

test('PERMISSIVE accepts mTLS and plaintext on one port', async () => {
  const p = await pair(peerAuth('PERMISSIVE'));
  try {
    assert.deepEqual(await plainGet(p.port), { status: 200, body: 'anonymous plain' });
    assert.equal(await (await p.client.fetch(`http://${CALC}:8000/`)).text(), `${CLIENT_ID} tls`);
    // TLS without a client certificate is an anonymous peer.
    const anonTls = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: p.port, agent: false, ca: p.server.identity!.current.root, checkServerIdentity: () => undefined }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(anonTls, 'anonymous tls');
  } finally {
    await p.close();
  }
});

test('DISABLE serves plaintext; per-port STRICT overrides the workload mode', async () => {
  const ca = await tempDir();
  const server = await meshFor('calculate', ca.dir, '');
  const a = server.createServer(whoami(server));
  const b = server.createServer(whoami(server));
  const portA = await listen(a);
  const portB = await listen(b);
  try {
    await server.apply(`
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: calc, namespace: default }
spec:
  selector: { matchLabels: { app: calculate } }
  mtls: { mode: DISABLE }
  portLevelMtls: { "${portB}": { mode: STRICT } }`);
    assert.deepEqual(await plainGet(portA), { status: 200, body: 'anonymous plain' });
    await assert.rejects(plainGet(portB), /ECONNRESET|socket hang up/);
    // Auto-mTLS sees the destination's DISABLE and talks plaintext.
    const client = await meshFor('client', ca.dir, `${clientConfig(portA)}\n---\n${`
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: calc, namespace: default }
spec:
  selector: { matchLabels: { app: calculate } }
  mtls: { mode: DISABLE }`}`);
    try {
      assert.equal(await (await client.fetch(`http://${CALC}:8000/`)).text(), 'anonymous plain');
    } finally {
      await client.close();
    }
  } finally {
    await closeServer(a);
    await closeServer(b);
    await server.close();
    await ca.remove();
  }
});

test('outbound: DR DISABLE goes plaintext, non-meshed endpoints go plaintext, a wrong SAN is refused', async () => {
  const p = await pair(peerAuth('PERMISSIVE'));
  const ca = await tempDir();
  try {
    await p.client.apply(clientConfig(p.port, { tls: '{ mode: DISABLE }' }));
    assert.equal(await (await p.client.fetch(`http://${CALC}:8000/`)).text(), 'anonymous plain');
    await p.client.apply(clientConfig(p.port, { meshed: false }));
    assert.equal(await (await p.client.fetch(`http://${CALC}:8000/`)).text(), 'anonymous plain');
    await p.client.apply(clientConfig(p.port, { meshed: false, tls: '{ mode: ISTIO_MUTUAL }' }));
    assert.equal(await (await p.client.fetch(`http://${CALC}:8000/`)).text(), `${CLIENT_ID} tls`);
    await p.client.apply(clientConfig(p.port, { tls: '{ mode: ISTIO_MUTUAL, subjectAltNames: [spiffe://cluster.local/ns/default/sa/other] }' }));
    const wrong = await p.client.fetch(`http://${CALC}:8000/`);
    assert.equal(wrong.status, 503);
    await wrong.text();
    // A client from another root (another CA dir) is refused by the server.
    const stranger = await meshFor('client', ca.dir, clientConfig(p.port, { tls: '{ mode: ISTIO_MUTUAL }' }));
    try {
      const res = await stranger.fetch(`http://${CALC}:8000/`);
      assert.equal(res.status, 503);
      await res.text();
    } finally {
      await stranger.close();
    }
  } finally {
    await ca.remove();
    await p.close();
  }
});

test('AuthorizationPolicy DENY before ALLOW through a real server; 403 RBAC: access denied', async () => {
  const policies = `
${ALLOW_CLIENT_GET}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-admin, namespace: default }
spec:
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/admin"] } }] }]`;
  const p = await pair(`${peerAuth('PERMISSIVE')}\n---\n${policies}`);
  try {
    const ok = await p.client.fetch(`http://${CALC}:8000/ok/1`);
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), `${CLIENT_ID} tls`);
    const admin = await p.client.fetch(`http://${CALC}:8000/admin`);
    assert.equal(admin.status, 403);
    assert.equal(await admin.text(), 'RBAC: access denied');
    const other = await p.client.fetch(`http://${CALC}:8000/other`);
    assert.equal(other.status, 403);
    await other.text();
    const post = await p.client.fetch(`http://${CALC}:8000/ok`, { method: 'POST' });
    assert.equal(post.status, 403);
    await post.text();
    // Plaintext callers have no principal: the ALLOW does not match.
    assert.deepEqual(await plainGet(p.port, '/ok'), { status: 403, body: 'RBAC: access denied' });
    // Allow-nothing: an empty ALLOW spec denies every request.
    await p.server.apply(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-nothing, namespace: default }
spec: {}`);
    const none = await p.client.fetch(`http://${CALC}:8000/ok`);
    assert.equal(none.status, 403);
    await none.text();
    // A broken policy rejects the whole config; the previous one stays.
    await assert.rejects(p.server.apply(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: bad, namespace: default }
spec: { rules: [{ when: [{ key: request.bogus, values: [x] }] }] }`), /request\.bogus/);
    const still = await p.client.fetch(`http://${CALC}:8000/ok`);
    assert.equal(still.status, 403);
    await still.text();
  } finally {
    await p.close();
  }
});
