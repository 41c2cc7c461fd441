// Our control plane answers the subscriptions istiod answers: named listeners (short names included, as
// our listeners are named host:port), CDS/EDS by name only, and istiod's inbound listener name for a server port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createControlPlane } from '../../src/control-plane/index.js';
import { inboundListener } from '../../src/core/listener-role.js';
import { createMesh } from '../../src/index.js';
import { configDir } from '../control-plane/helpers.js';
import { startServer } from '../helpers/http-servers.js';

const quiet = () => {};
const workload = { name: 'client', namespace: 'default', labels: { app: 'client' } };
const shop = (port: number, other: number) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${port} } }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: other, namespace: default }
spec:
  hosts: [other.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${other} } }]
`;

test('our control plane serves named LDS, the inbound listener by its istiod name, and clusters by name', async (t) => {
  const v1 = await startServer('shop');
  const v2 = await startServer('other');
  const cfg = await configDir({ 'shop.yaml': shop(v1.port, v2.port) });
  const cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', log: quiet, debounceMs: 20 });
  t.after(async () => { await cp.close(); await cfg.remove(); await v1.close(); await v2.close(); });

  const mesh = await createMesh({ workload, xds: { server: `127.0.0.1:${cp.port}`, listeners: ['shop.default.svc.cluster.local:8000'], serverPorts: [8080] } });
  t.after(() => mesh.close());
  const dump = mesh.configDump();
  const names = dump.listeners.map((l) => l.name).sort();
  assert.deepEqual(names, ['shop.default.svc.cluster.local:8000', 'xds.istio.io/grpc/lds/inbound/0.0.0.0:8080']);
  assert.equal(inboundListener(dump.listeners)?.name, 'xds.istio.io/grpc/lds/inbound/0.0.0.0:8080');
  assert.ok(dump.clusters.length > 0 && dump.clusters.every((c) => c.name.includes('shop')), 'only the clusters the named routes reference');
  const syncz = cp.syncz()[0]!.types;
  assert.notEqual(syncz.CDS!.subscribed, '*', 'CDS by name');
  assert.equal(await (await mesh.fetch('http://shop.default.svc.cluster.local:8000/')).text(), 'shop');
});
