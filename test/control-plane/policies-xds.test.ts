import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { request } from 'undici';
import { createControlPlane } from '../../src/control-plane/index.js';
import { createMesh } from '../../src/index.js';
import { configDir, waitFor } from './helpers.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';

const deny = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-all-calculate, namespace: default }
spec:
  selector: { matchLabels: { app: calculate } }
  action: DENY
  rules: [{}]
`;

describe('security policies in control-plane mode', () => {
  it('an AuthorizationPolicy pushed by the control plane is enforced by the selected workload, and lifted when removed', async () => {
    const files = await configDir({ 'policy.yaml': deny });
    const cp = await createControlPlane({ config: files.dir, port: 0, host: '127.0.0.1', debounceMs: 20 });
    const calculate = await createMesh({ workload: { name: 'calculate', namespace: 'default', labels: { app: 'calculate' } }, xds: { server: `127.0.0.1:${cp.port}` } });
    const other = await createMesh({ workload: { name: 'db', namespace: 'default', labels: { app: 'db' } }, xds: { server: `127.0.0.1:${cp.port}` } });
    const serve = (mesh: typeof calculate) => {
      const mw = mesh.express();
      const server = createServer((req, res) => mw(req, res, () => res.end('ok')));
      return new Promise<{ port: number; close(): void }>((resolve) => server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as AddressInfo).port, close: () => server.close() })));
    };
    const calc = await serve(calculate);
    const db = await serve(other);
    const get = async (port: number) => {
      const res = await request(`http://127.0.0.1:${port}/`);
      return { status: res.statusCode, body: await res.body.text() };
    };
    try {
      assert.deepEqual(await get(calc.port), { status: 403, body: 'RBAC: access denied' });
      assert.equal((await get(db.port)).status, 200, 'the policy selects app=calculate only');
      await files.write('policy.yaml', '');
      let lifted = false;
      for (let i = 0; i < 50 && !lifted; i++) {
        lifted = (await get(calc.port)).status === 200;
        if (!lifted) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(lifted, 'the policy is lifted within 5 s of the file change');
    } finally {
      calc.close();
      db.close();
      await Promise.all([calculate.close(), other.close()]);
      await cp.close();
      await files.remove();
    }
  });

  it('a STRICT PeerAuthentication pushed by the control plane closes plaintext connections to mesh.createServer; mTLS peers get through', async () => {
    const strict = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: default }
spec: { mtls: { mode: STRICT } }
`;
    const files = await configDir({ 'pa.yaml': strict });
    const ca = await mkdtemp(join(tmpdir(), 'meshlet-pa-xds-'));
    const cp = await createControlPlane({ config: files.dir, port: 0, host: '127.0.0.1', debounceMs: 20 });
    const calculate = await createMesh({ workload: { name: 'calculate', namespace: 'default', serviceAccount: 'calculate', labels: { app: 'calculate' } }, ca: { dir: ca }, xds: { server: `127.0.0.1:${cp.port}` } });
    const server = calculate.createServer((req, res) => res.end(calculate.peerOf(req) ?? 'anonymous'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const plain = () => new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, agent: false, timeout: 5000 }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
    const client = await createMesh({
      workload: { name: 'client', namespace: 'default', serviceAccount: 'client' }, ca: { dir: ca },
      config: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: calculate, namespace: default }
spec:
  hosts: [calculate.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${port} }, labels: { security.istio.io/tlsMode: istio }, serviceAccount: calculate }]
`,
    });
    try {
      assert.equal(calculate.security.modeFor(port), 'STRICT', 'the mode comes from the pushed listener');
      await assert.rejects(plain(), /ECONNRESET|socket hang up/);
      const res = await client.fetch('http://calculate.default.svc.cluster.local:8000/');
      assert.deepEqual([res.status, await res.text()], [200, 'spiffe://cluster.local/ns/default/sa/client']);
      await files.write('pa.yaml', strict.replace('STRICT', 'PERMISSIVE'));
      await waitFor(() => calculate.security.modeFor(port) === 'PERMISSIVE', 5000, 'the PERMISSIVE push');
      assert.equal(await plain(), 200);
    } finally {
      server.close();
      await Promise.all([calculate.close(), client.close()]);
      await cp.close();
      await files.remove();
      await rm(ca, { recursive: true, force: true });
    }
  });
});
