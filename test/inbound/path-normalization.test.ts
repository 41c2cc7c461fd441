/**
 * mesh.express() and mesh.fastify against the path-normalization attack
 * table (issue #21). Express gets the option Istio's way (the `istio`
 * ConfigMap in `istio-system`), Fastify through `createMesh({ meshConfig })`
 * and routes on the normalized path through `Fastify({ rewriteUrl })`.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import express from 'express';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { createMesh, type Mesh } from '../../src/mesh.js';
import { OPTIONS, checkTable, meshConfigMap, rawHttp1, type Option } from '../helpers/hostile-paths.js';
import { listen, listenFastify } from './setup.js';

const LABELS = '{ app: calculate }';
const workload = { name: 'calculate', namespace: 'default', labels: { app: 'calculate' } };

async function expressApp(mesh: Mesh): Promise<{ port: number; calls: { n: number; originalUrl?: string }; close(): Promise<void> }> {
  const calls: { n: number; originalUrl?: string } = { n: 0 };
  const app = express();
  app.use(mesh.express());
  app.use((req, res) => {
    calls.n++;
    calls.originalUrl = req.originalUrl;
    res.type('text/plain').send(req.url);
  });
  const server = await listen(app);
  return { port: server.port, calls, close: server.close };
}

for (const option of OPTIONS) {
  test(`mesh.express(), ${option} from the istio ConfigMap: hostile paths get the sidecar's answer, the app the sidecar's path`, async () => {
    const mesh = await createMesh({ workload, config: [] });
    const app = await expressApp(mesh);
    try {
      const n = await checkTable(option, { apply: (c) => mesh.apply(c), send: (p) => rawHttp1(app.port, p), appCalls: () => app.calls.n }, LABELS, meshConfigMap(option));
      assert.ok(n > 25);
    } finally {
      await app.close();
      await mesh.close();
    }
  });
}

for (const option of OPTIONS) {
  test(`mesh.fastify with Fastify({ rewriteUrl: mesh.fastify.rewriteUrl }), ${option}: the same table`, async () => {
    const mesh = await createMesh({ workload, config: [], meshConfig: { pathNormalization: { normalization: option } } });
    const calls = { n: 0 };
    const app = Fastify({ rewriteUrl: mesh.fastify.rewriteUrl });
    await app.register(mesh.fastify);
    app.all('/*', async (request, reply) => {
      calls.n++;
      return reply.type('text/plain').send(request.url);
    });
    const server = await listenFastify(app);
    try {
      const n = await checkTable(option, { apply: (c) => mesh.apply(c), send: (p) => rawHttp1(server.port, p), appCalls: () => calls.n }, LABELS);
      assert.ok(n > 25);
    } finally {
      await server.close();
      await mesh.close();
    }
  });
}

test('Express: req.originalUrl is the normalized URL too (the app never sees the raw one)', async () => {
  const mesh = await createMesh({ workload, config: [] });
  const app = await expressApp(mesh);
  try {
    const res = await rawHttp1(app.port, '/public/%2e%2e/%61pi?x=/../y');
    assert.deepEqual({ status: res.status, body: res.body, originalUrl: app.calls.originalUrl }, { status: 200, body: '/api?x=/../y', originalUrl: '/api?x=/../y' });
  } finally {
    await app.close();
    await mesh.close();
  }
});

test('Fastify: rewriteUrl routes on the normalized path; without it the route is picked from the raw path but policy and request.url use the normalized one', async () => {
  const routes = (app: FastifyInstance, calls: string[]) => {
    app.get('/admin', async () => { calls.push('admin route'); return 'admin'; });
    app.get('/public/*', async (request: FastifyRequest) => { calls.push(`public route ${request.url}`); return 'public'; });
  };
  const deny = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-admin, namespace: default }
spec: { selector: { matchLabels: ${LABELS} }, action: DENY, rules: [{ to: [{ operation: { paths: ["/admin"] } }] }] }
`;
  for (const rewrite of [true, false]) {
    const mesh = await createMesh({ workload, config: [] });
    const calls: string[] = [];
    const app = Fastify(rewrite ? { rewriteUrl: mesh.fastify.rewriteUrl } : {});
    await app.register(mesh.fastify);
    routes(app, calls);
    const server = await listenFastify(app);
    try {
      const open = await rawHttp1(server.port, '/public/%2e%2e/admin');
      assert.equal(open.status, 200);
      assert.deepEqual(calls, [rewrite ? 'admin route' : 'public route /admin'], `rewriteUrl ${rewrite}`);
      await mesh.apply(deny);
      assert.equal((await rawHttp1(server.port, '/public/%2e%2e/admin')).status, 403, `rewriteUrl ${rewrite}: denied on the normalized path`);
      assert.equal(calls.length, 1);
      const bad = await rawHttp1(server.port, '/public/x%00');
      assert.deepEqual({ status: bad.status, flag: bad.headers['x-meshlet-flags'] }, { status: 400, flag: 'DPE' });
      assert.equal(calls.length, 1);
    } finally {
      await server.close();
      await mesh.close();
    }
  }
});

test('a bad meshConfig is a MeshConfigError naming the field (option and ConfigMap)', async () => {
  await assert.rejects(createMesh({ workload, config: [], meshConfig: { pathNormalization: { normalization: 'STRICT' as Option } } }), (err: Error & { path?: string }) => {
    assert.equal(err.path, 'meshConfig.pathNormalization.normalization');
    return true;
  });
  const mesh = await createMesh({ workload, config: [] });
  try {
    await assert.rejects(mesh.apply(meshConfigMap('FAST' as Option)), (err: Error & { kind?: string; resource?: string; path?: string }) => {
      assert.deepEqual([err.kind, err.resource, err.path], ['ConfigMap', 'istio-system/istio', 'data.mesh.pathNormalization.normalization']);
      return true;
    });
  } finally {
    await mesh.close();
  }
});
