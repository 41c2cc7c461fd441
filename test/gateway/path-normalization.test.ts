/**
 * The ingress gateway against the path-normalization attack table (issue
 * #21): AuthorizationPolicies selecting the gateway see the normalized path,
 * VirtualService routes match it, and the upstream receives it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../helpers/http-servers.js';
import { OPTIONS, checkTable, rawHttp1 } from '../helpers/hostile-paths.js';
import { backendService, boundRoutes, docs, gatewayDoc, startGateway } from './helpers.js';

const LABELS = '{ istio: ingressgateway }';

describe('gateway path normalization', () => {
  let echo: TestServer;
  let admin: TestServer;
  let base: string;

  before(async () => {
    // The upstream answers with the URL it received: what the gateway forwarded.
    echo = await startServer('echo', (req, res) => res.end(req.url));
    admin = await startServer('admin', (req, res) => res.end(`admin ${req.url}`));
    base = docs(gatewayDoc(), backendService('echo', echo.port), backendService('admin', admin.port), boundRoutes('["*"]', `
    - match: [{ uri: { prefix: /admin-api } }]
      route: [{ destination: { host: admin } }]
    - route: [{ destination: { host: echo } }]`));
  });
  after(async () => {
    await Promise.all([echo.close(), admin.close()]);
  });

  for (const option of OPTIONS) {
    it(`${option}: hostile paths get the sidecar's answer and the upstream gets the sidecar's path`, async () => {
      const gw = await startGateway(base, { meshConfig: { pathNormalization: { normalization: option } } });
      try {
        const n = await checkTable(option, { apply: (c) => gw.mesh.apply(c), send: (p) => rawHttp1(gw.port, p), appCalls: () => echo.hits }, LABELS, base);
        assert.ok(n > 25);
      } finally {
        await gw.close();
      }
    });
  }

  it('VirtualService routes match the normalized path (BASE): /public/../admin-api/x goes to the admin route', async () => {
    const gw = await startGateway(base);
    try {
      const routed = await rawHttp1(gw.port, '/public/../admin-api/x?q=1');
      assert.deepEqual({ status: routed.status, body: routed.body }, { status: 200, body: 'admin /admin-api/x?q=1' });
      const decoded = await rawHttp1(gw.port, '/%61dmin-api');
      assert.equal(decoded.body, 'admin /admin-api');
      const bad = await rawHttp1(gw.port, '/admin-api%00');
      assert.deepEqual({ status: bad.status, flag: bad.headers['x-meshlet-flags'] }, { status: 400, flag: 'DPE' });
    } finally {
      await gw.close();
    }
  });
});
