import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createControlPlane } from '../../src/control-plane/index.js';
import { createGateway } from '../../src/gateway/index.js';
import { startServer } from '../helpers/http-servers.js';
import { backendService, boundRoutes, call, docs, gatewayDoc } from '../gateway/helpers.js';

describe('a gateway in control-plane mode', () => {
  it('gets its Gateway listeners and bound routes over xDS (translated for its labels)', async () => {
    const backend = await startServer('client');
    const dir = await mkdtemp(join(tmpdir(), 'meshlet-gw-xds-'));
    await writeFile(join(dir, 'mesh.yaml'), docs(backendService('client', backend.port), gatewayDoc(), boundRoutes('["*"]', `    - route: [{ destination: { host: client, port: { number: 8080 } } }]`)));
    const cp = await createControlPlane({ config: dir, port: 0, host: '127.0.0.1' });
    const gw = await createGateway({ xds: { server: `127.0.0.1:${cp.port}` }, port: 0, serverPort: 80 });
    try {
      const res = await call(gw, 'shop.example.com', '/');
      assert.equal(res.status, 200);
      assert.equal(res.body, 'client');
    } finally {
      await gw.close();
      await cp.close();
      await backend.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('serves a Kubernetes Gateway and its HTTPRoute over xDS, to the workload labelled with the Gateway\'s name only', async () => {
    const backend = await startServer('client');
    const dir = await mkdtemp(join(tmpdir(), 'meshlet-gw-xds-'));
    await writeFile(join(dir, 'mesh.yaml'), docs(backendService('client', backend.port), `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: shop, namespace: default }
spec:
  gatewayClassName: istio
  listeners: [{ name: http, port: 80, protocol: HTTP }]
`, `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: shop, namespace: default }
spec:
  parentRefs: [{ name: shop }]
  rules: [{ backendRefs: [{ name: client, port: 8080 }] }]
`));
    const cp = await createControlPlane({ config: dir, port: 0, host: '127.0.0.1' });
    const labelled = await createGateway({ xds: { server: `127.0.0.1:${cp.port}` }, port: 0, serverPort: 80,
      workload: { name: 'shop-istio', namespace: 'default', labels: { 'gateway.networking.k8s.io/gateway-name': 'shop' } } });
    const other = await createGateway({ xds: { server: `127.0.0.1:${cp.port}` }, port: 0, serverPort: 80 });
    try {
      const res = await call(labelled, 'shop.example.com', '/');
      assert.equal(res.status, 200);
      assert.equal(res.body, 'client');
      assert.equal((await call(other, 'shop.example.com', '/')).status, 404);
    } finally {
      await labelled.close();
      await other.close();
      await cp.close();
      await backend.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
