// Chaos: steady load through a mesh (bounded: at most 2,000 requests, 4 in
// flight, stopped by the script or after 120 s) while its control plane is
// killed, restarted on a directory holding a bad file next to the good ones,
// killed again and restarted on the good directory. Under Istio's semantics
// the mesh keeps its last good config while the control plane is down or
// serves an invalid directory, so no request fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createControlPlane, type ControlPlane } from '../../src/control-plane/index.js';
import { createMesh } from '../../src/index.js';
import { startServer } from '../helpers/http-servers.js';
import { configDir, waitFor } from './helpers.js';

const HOST = 'backend.default.svc.cluster.local';
const quiet = () => {};

function backendYaml(port: number): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: backend, namespace: default }
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${port} }, labels: { version: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: backend, namespace: default }
spec:
  hosts: [${HOST}]
  http: [{ route: [{ destination: { host: ${HOST} } }], timeout: 5s }]
`;
}

/** A file the control plane must refuse: a VirtualService with a null route (and, in another file, broken YAML). */
const BAD_VS = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: broken, namespace: default }
spec: { hosts: [other.default.svc.cluster.local], http: [null] }
`;

test('control plane killed and restarted on a bad directory under steady load: 0 failed requests', async (t) => {
  const backend = await startServer('backend');
  const good = await configDir({ 'backend.yaml': backendYaml(backend.port) });
  const bad = await configDir({ 'backend.yaml': backendYaml(backend.port), 'broken.yaml': BAD_VS, 'garbage.yaml': 'kind: [unclosed\n' });
  let cp: ControlPlane = await createControlPlane({ config: good.dir, port: 0, host: '127.0.0.1', log: quiet });
  const port = cp.port;
  const mesh = await createMesh({ workload: { name: 'client', namespace: 'default' }, xds: { server: `127.0.0.1:${port}` } });
  t.after(async () => {
    await mesh.close();
    await cp.close();
    await backend.close();
    await good.remove();
    await bad.remove();
  });

  const MAX = 2000;
  const deadline = Date.now() + 120_000;
  let sent = 0;
  let ok = 0;
  let stop = false;
  const failures: string[] = [];
  const worker = async () => {
    while (!stop && sent < MAX && Date.now() < deadline) {
      sent++;
      try {
        const res = await mesh.fetch(`http://${HOST}:8080/`);
        const body = await res.text();
        if (res.status === 200 && body === 'backend') ok++;
        else failures.push(`${res.status} ${res.headers.get('x-meshlet-flags') ?? ''} ${body.slice(0, 60)}`);
      } catch (err) {
        failures.push(`threw ${(err as Error).message}`);
      }
    }
  };
  const load = Promise.all([worker(), worker(), worker(), worker()]);
  // Progress counts answered requests, failed ones too, so a broken phase fails on its failures, not on a wait.
  const done = () => ok + failures.length;
  const progressed = (n: number) => { const target = done() + n; return () => done() >= target || sent >= MAX; };

  await waitFor(progressed(50), 60_000, 'load before the kill');
  await cp.close();
  await waitFor(() => mesh.xdsStatus()?.connected === false, 60_000, 'the mesh sees the control plane gone');
  await waitFor(progressed(100), 60_000, 'load while the control plane is down');

  cp = await createControlPlane({ config: bad.dir, port, host: '127.0.0.1', log: quiet });
  await waitFor(() => mesh.xdsStatus()?.connected === true, 60_000, 'reconnected to the control plane on the bad directory');
  await waitFor(progressed(100), 60_000, 'load against the bad directory');

  await cp.close();
  cp = await createControlPlane({ config: good.dir, port, host: '127.0.0.1', log: quiet });
  await waitFor(() => mesh.xdsStatus()?.connected === true, 60_000, 'reconnected to the good directory');
  await waitFor(progressed(50), 60_000, 'load after recovery');
  stop = true;
  await load;

  assert.ok(ok >= 300, `requests served: ${ok}`);
  assert.deepEqual(failures.slice(0, 3), [], `${failures.length} of ${done()} requests failed`);
});
