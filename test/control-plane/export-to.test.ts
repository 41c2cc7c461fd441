/**
 * exportTo through the control plane: it translates per namespace, so a
 * client in `other` must not get a VirtualService exported only to `.` from
 * `shop` (pilot/pkg/model/push_context.go initVirtualServices, istio/istio
 * 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c), while a client in `shop` does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh } from '../../src/index.js';
import { createControlPlane } from '../../src/control-plane/index.js';
import { startServer } from '../helpers/http-servers.js';
import { configDir, waitFor } from './helpers.js';

const URL_ = 'http://api.shop.svc.cluster.local:8000/items';

const yaml = (v1: number, v2: number) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [api.shop.svc.cluster.local]
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }]
  endpoints:
    - { address: 127.0.0.1, ports: { http: ${v1} }, labels: { version: v1 } }
    - { address: 127.0.0.1, ports: { http: ${v2} }, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api-v2-private, namespace: shop }
spec:
  hosts: [api]
  exportTo: ["."]
  http: [{ route: [{ destination: { host: api, subset: v2 } }] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api-v1-public, namespace: shop }
spec:
  hosts: [api]
  http: [{ route: [{ destination: { host: api, subset: v1 } }] }]
`;

test('a VirtualService exported to `.` reaches its own namespace\'s clients only; others take the public one', async (t) => {
  const v1 = await startServer('v1');
  const v2 = await startServer('v2');
  const cfg = await configDir({ 'api.yaml': yaml(v1.port, v2.port) });
  const cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', log: () => {}, debounceMs: 50 });
  const inShop = await createMesh({ workload: { name: 'a', namespace: 'shop' }, xds: { server: `127.0.0.1:${cp.port}` } });
  const inOther = await createMesh({ workload: { name: 'b', namespace: 'other' }, xds: { server: `127.0.0.1:${cp.port}` } });
  t.after(async () => { await inShop.close(); await inOther.close(); await cp.close(); await v1.close(); await v2.close(); await cfg.remove(); });

  const answer = async (mesh: typeof inShop) => {
    const res = await mesh.fetch(URL_);
    return res.status === 200 ? res.text() : `${res.status} ${await res.text()}`;
  };
  // Wait until each client holds its route for the host (pushed over ADS), then every call goes one way.
  const routed = (mesh: typeof inShop, subset: string) => {
    const dump = mesh.configDump();
    return dump.routes.some((r) => r.name === 'api.shop.svc.cluster.local:8000')
      && dump.endpoints.some((e) => e.cluster_name === `outbound|8000|${subset}|api.shop.svc.cluster.local` && (e.endpoints?.[0]?.lb_endpoints?.length ?? 0) > 0);
  };
  await waitFor(() => routed(inShop, 'v2') && routed(inOther, 'v1'), 10_000, 'routes pushed to both clients');
  for (let i = 0; i < 5; i++) assert.equal(await answer(inShop), 'v2');
  for (let i = 0; i < 5; i++) assert.equal(await answer(inOther), 'v1');

  const cluster = (ns: string) => cp.configDump(ns).routes.find((r) => r.name === 'api.shop.svc.cluster.local:8000')?.virtual_hosts[0]?.routes[0]?.route?.cluster;
  assert.equal(cluster('shop'), 'outbound|8000|v2|api.shop.svc.cluster.local');
  assert.equal(cluster('other'), 'outbound|8000|v1|api.shop.svc.cluster.local');
});
