/**
 * VirtualService corsPolicy over real loopback servers, where Envoy applies
 * it: on the route, i.e. the caller's side (mesh.request) and the ingress
 * gateway. A preflight from an allowed origin is answered by the mesh and
 * never reaches the app; a simple request's response carries the CORS
 * headers; an unmatched preflight is forwarded (FORWARD, the default) or
 * answered without CORS headers (IGNORE).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { createMesh, MeshConfigError, type Mesh } from '../../src/index.js';
import { startServer, type TestServer } from '../helpers/http-servers.js';
import { docs, meshService } from '../helpers/mesh-config.js';
import { backendService, boundRoutes, gatewayDoc, startGateway } from '../gateway/helpers.js';

const URL_ = 'http://shop.default.svc.cluster.local:8000/api';

const cors = (extra = '') => `
      corsPolicy:
        allowOrigins: [{ exact: https://shop.example }, { regex: "https://[a-z]+\\\\.preview\\\\.example" }]
        allowMethods: [GET, POST]
        allowHeaders: [x-token]
        exposeHeaders: [x-trace]
        maxAge: 24h
        allowCredentials: true${extra}`;

function vs(extra = ''): string {
  return `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop]
  http:
    - route: [{ destination: { host: shop } }]${cors(extra)}
`;
}

describe('corsPolicy over real servers', () => {
  let app: TestServer;
  let service: string;

  before(async () => {
    app = await startServer('app', (_req, res, s) => {
      res.setHeader('x-trace', 't1');
      res.end(s.name);
    });
    service = meshService('shop', [{ port: app.port, version: 'v1' }], 8000, 'HTTP');
  });
  after(() => app.close());

  async function send(mesh: Mesh, method: 'GET' | 'OPTIONS', headers: Record<string, string>) {
    const res = await mesh.request(URL_, { method, headers });
    return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
  }

  it('answers a preflight from an allowed origin in the mesh; the app never sees it', async () => {
    const mesh = await createMesh({ config: docs(service, vs()) });
    try {
      const hitsBefore = app.hits;
      const res = await send(mesh, 'OPTIONS', { origin: 'https://pr.preview.example', 'access-control-request-method': 'POST' });
      assert.equal(res.status, 200);
      assert.equal(res.headers['access-control-allow-origin'], 'https://pr.preview.example');
      assert.equal(res.headers['access-control-allow-methods'], 'GET,POST');
      assert.equal(res.headers['access-control-allow-headers'], 'x-token');
      assert.equal(res.headers['access-control-max-age'], '86400');
      assert.equal(res.headers['access-control-allow-credentials'], 'true');
      assert.equal(res.headers['x-meshlet-flags'], undefined);
      assert.equal(app.hits, hitsBefore);
    } finally {
      await mesh.close();
    }
  });

  it('adds the CORS headers to the app\'s response to an allowed origin, none to another origin', async () => {
    const mesh = await createMesh({ config: docs(service, vs()), localReplies: 'throw' });
    try {
      const ok = await send(mesh, 'GET', { origin: 'https://shop.example' });
      assert.equal(ok.body, 'app');
      assert.equal(ok.headers['access-control-allow-origin'], 'https://shop.example');
      assert.equal(ok.headers['access-control-allow-credentials'], 'true');
      assert.equal(ok.headers['access-control-expose-headers'], 'x-trace');
      const other = await send(mesh, 'GET', { origin: 'https://evil.example' });
      assert.equal(other.body, 'app');
      assert.equal(other.headers['access-control-allow-origin'], undefined);
      // A preflight answer is a response, not a local-reply error, even with localReplies: 'throw'.
      const pre = await send(mesh, 'OPTIONS', { origin: 'https://shop.example', 'access-control-request-method': 'GET' });
      assert.equal(pre.status, 200);
    } finally {
      await mesh.close();
    }
  });

  it('unmatchedPreflights: FORWARD sends an unmatched preflight to the app; IGNORE answers it without CORS headers', async () => {
    const forward = await createMesh({ config: docs(service, vs()) });
    try {
      const hitsBefore = app.hits;
      const res = await send(forward, 'OPTIONS', { origin: 'https://evil.example', 'access-control-request-method': 'GET' });
      assert.equal(res.body, 'app');
      assert.equal(app.hits, hitsBefore + 1);
    } finally {
      await forward.close();
    }
    const ignore = await createMesh({ config: docs(service, vs('\n        unmatchedPreflights: IGNORE')) });
    try {
      const hitsBefore = app.hits;
      const res = await send(ignore, 'OPTIONS', { origin: 'https://evil.example', 'access-control-request-method': 'GET' });
      assert.equal(res.status, 200);
      assert.equal(res.headers['access-control-allow-origin'], undefined);
      assert.equal(res.headers['access-control-allow-methods'], 'GET,POST');
      assert.equal(app.hits, hitsBefore);
    } finally {
      await ignore.close();
    }
  });

  it('the ingress gateway answers browsers\' preflights for a VirtualService bound to it', async () => {
    const config = docs(gatewayDoc(), backendService('web', app.port), boundRoutes('["shop.example"]', `    - route: [{ destination: { host: web.default.svc.cluster.local, port: { number: 8080 } } }]${cors()}`));
    const gw = await startGateway(config);
    try {
      const hitsBefore = app.hits;
      const pre = await request(`http://127.0.0.1:${gw.port}/api`, { method: 'OPTIONS', headers: { host: 'shop.example', origin: 'https://shop.example', 'access-control-request-method': 'POST' } });
      await pre.body.text();
      assert.equal(pre.statusCode, 200);
      assert.equal(pre.headers['access-control-allow-origin'], 'https://shop.example');
      assert.equal(app.hits, hitsBefore);
      const get = await request(`http://127.0.0.1:${gw.port}/api`, { headers: { host: 'shop.example', origin: 'https://shop.example' } });
      assert.equal(await get.body.text(), 'app');
      assert.equal(get.headers['access-control-allow-origin'], 'https://shop.example');
    } finally {
      await gw.close();
    }
  });

  it('refuses what istiod refuses: an unknown method, a bad header name, a sub-second maxAge', async () => {
    for (const [bad, path] of [
      ['allowMethods: [FETCH]', 'corsPolicy.allowMethods[0]'],
      ['allowHeaders: ["x token"]', 'corsPolicy.allowHeaders[0]'],
      ['maxAge: 1500ms', 'corsPolicy.maxAge'],
    ] as const) {
      const doc = vs().replace('        allowMethods: [GET, POST]', `        ${bad.startsWith('allowMethods') ? bad : 'allowMethods: [GET, POST]'}`).replace('        allowHeaders: [x-token]', `        ${bad.startsWith('allowHeaders') ? bad : 'allowHeaders: [x-token]'}`).replace('        maxAge: 24h', `        ${bad.startsWith('maxAge') ? bad : 'maxAge: 24h'}`);
      await assert.rejects(createMesh({ config: docs(service, doc) }), (err: unknown) => err instanceof MeshConfigError && err.kind === 'VirtualService' && err.path === `spec.http[0].${path}`, bad);
    }
  });
});
