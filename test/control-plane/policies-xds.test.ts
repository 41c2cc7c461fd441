import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { request } from 'undici';
import { createControlPlane } from '../../src/control-plane/index.js';
import { createMesh } from '../../src/index.js';
import { configDir } from './helpers.js';

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
});
