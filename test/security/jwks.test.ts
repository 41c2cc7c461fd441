// RequestAuthentication with jwksUri: a loopback JWKS server, caching, refetch on an unknown kid (bounded),
// a failed or hanging fetch (fail closed, createMesh bounded), OpenID discovery; and the other inbound
// surfaces: Fastify (mesh.fastify) and the gRPC server interceptor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { credentials, Metadata, Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { createMesh } from '../../src/index.js';
import { JwksCache } from '../../src/security/jwks.js';
import { calculate, CalculateClient, CalculateService, type Operands, type Result } from '../../examples/grpc/proto.js';
import { listen, listenFastify } from '../inbound/setup.js';
import { DEMO_JWT, ISTIO_ISSUER, ISTIO_JWKS, freshKey, nowS, tamper } from './jwt-helpers.js';
import { SignJWT } from 'jose';

const workload = { name: 'httpbin', namespace: 'foo', labels: { app: 'httpbin' } };

const byUri = (issuer: string, uri: string, extra = ''): string => `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: foo }
spec:
  jwtRules:
  - issuer: "${issuer}"
    jwksUri: "${uri}"
${extra}`;

/** A JWKS server on 127.0.0.1 whose document a test can change; counts fetches; `hang` never answers. */
async function jwksServer(initial: string, options: { hang?: boolean } = {}) {
  const state = { body: initial, fetches: 0, status: 200 };
  const server = await listen((req, res) => {
    state.fetches++;
    if (options.hang) return; // never answers: the client's timeout must end it
    if (req.url === '/.well-known/openid-configuration') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ issuer: `http://127.0.0.1:${server.port}`, jwks_uri: `http://127.0.0.1:${server.port}/keys` }));
      return;
    }
    res.statusCode = state.status;
    res.setHeader('content-type', 'application/json');
    res.end(state.body);
  });
  return Object.assign(state, { port: server.port, close: server.close });
}

async function get(port: number, token?: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, text: await res.text() };
}

async function appFor(mesh: Awaited<ReturnType<typeof createMesh>>) {
  const app = Fastify();
  await app.register(mesh.fastify);
  app.get('/', async (req) => ({ authorization: req.headers.authorization ?? null }));
  return listenFastify(app);
}

test('jwksUri: keys fetched from a loopback server before createMesh resolves, cached, enforced by Fastify', async () => {
  const jwks = await jwksServer(ISTIO_JWKS);
  const mesh = await createMesh({ workload, config: byUri(ISTIO_ISSUER, `http://127.0.0.1:${jwks.port}/jwks.json`) });
  const app = await appFor(mesh);
  try {
    assert.equal(jwks.fetches, 1, 'fetched while the config was applied');
    const ok = await fetch(`http://127.0.0.1:${app.port}/`, { headers: { authorization: `Bearer ${DEMO_JWT}` } });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { authorization: null }, 'the token is removed before the app');
    assert.equal((await get(app.port, tamper(DEMO_JWT))).status, 401);
    assert.equal((await get(app.port)).status, 200);
    for (let i = 0; i < 5; i++) assert.equal((await get(app.port, DEMO_JWT)).status, 200);
    assert.equal(jwks.fetches, 1, 'served from the cache');
  } finally {
    await app.close();
    await mesh.close();
    await jwks.close();
  }
});

test('a failed JWKS fetch fails closed: every token gets 401, requests without one still pass', async () => {
  const jwks = await jwksServer('{}');
  jwks.status = 500;
  const mesh = await createMesh({ workload, config: byUri(ISTIO_ISSUER, `http://127.0.0.1:${jwks.port}/jwks.json`) });
  const app = await appFor(mesh);
  try {
    const res = await get(app.port, DEMO_JWT);
    assert.deepEqual(res, { status: 401, text: 'Jwks remote fetch is failed' });
    assert.equal((await get(app.port)).status, 200);
  } finally {
    await app.close();
    await mesh.close();
    await jwks.close();
  }
});

test('a JWKS server that never answers does not make createMesh hang: the rule timeout bounds it', async () => {
  const jwks = await jwksServer('', { hang: true });
  const mesh = await createMesh({ workload, config: byUri(ISTIO_ISSUER, `http://127.0.0.1:${jwks.port}/jwks.json`, '    timeout: 200ms') });
  const app = await appFor(mesh);
  try {
    assert.equal(jwks.fetches, 1);
    assert.equal((await get(app.port, DEMO_JWT)).status, 401);
  } finally {
    await app.close();
    await mesh.close();
    await jwks.close();
  }
});

test('an issuer without jwks or jwksUri: its OpenID discovery document names the JWKS (one hop)', async () => {
  const { privateKey, jwks: doc } = await freshKey('k1');
  const jwks = await jwksServer(JSON.stringify(doc));
  const issuer = `http://127.0.0.1:${jwks.port}`;
  const config = `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: oidc, namespace: foo }
spec: { jwtRules: [ { issuer: "${issuer}" } ] }
`;
  const mesh = await createMesh({ workload, config });
  const app = await appFor(mesh);
  try {
    const token = await new SignJWT({ iss: issuer, sub: 'u', exp: nowS() + 600 }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(privateKey);
    assert.equal((await get(app.port, token)).status, 200);
    assert.equal(jwks.fetches, 2, 'discovery document, then the keys');
  } finally {
    await app.close();
    await mesh.close();
    await jwks.close();
  }
});

test('JwksCache: an unknown kid refetches (bounded per URI), a rotated key is then accepted; a failed refresh keeps old keys', async () => {
  const k1 = await freshKey('k1');
  const k2 = await freshKey('k2');
  const server = await jwksServer(JSON.stringify(k1.jwks));
  let clock = 1_000_000;
  const cache = new JwksCache({ now: () => clock, minRefetchMs: 10_000 });
  const uri = `http://127.0.0.1:${server.port}/jwks.json`;
  const options = { timeoutMs: 5000, cacheMs: 300_000 };
  try {
    assert.equal(cache.keys(uri, options), 'pending');
    await cache.ready([uri]);
    assert.equal((cache.keys(uri, options) as unknown[]).length, 1);
    server.body = JSON.stringify(k2.jwks);
    // Forged kids in a loop: at most one refetch per minRefetchMs.
    for (let i = 0; i < 50; i++) cache.unknownKid(uri);
    assert.equal(server.fetches, 1, 'too soon after the first load');
    clock += 10_000;
    for (let i = 0; i < 50; i++) cache.unknownKid(uri);
    await cache.ready([uri]);
    assert.equal(server.fetches, 2);
    const keys = cache.keys(uri, options) as ReadonlyArray<{ kid?: string }>;
    assert.deepEqual(keys.map((k) => k.kid), ['k2']);
    // Past cache_duration the next lookup refreshes; a failure keeps serving the last good keys.
    server.status = 503;
    clock += 300_000;
    cache.keys(uri, options);
    await cache.ready([uri]);
    assert.equal(server.fetches, 3);
    assert.deepEqual((cache.keys(uri, options) as ReadonlyArray<{ kid?: string }>).map((k) => k.kid), ['k2']);
    assert.match(cache.status(uri)!.error!, /HTTP 503/);
  } finally {
    cache.close();
    await server.close();
  }
});

test('a token naming an unknown kid gets 401; forged kids do not turn into a fetch per request', async () => {
  const k1 = await freshKey('k1');
  const k2 = await freshKey('k2');
  const jwks = await jwksServer(JSON.stringify(k1.jwks));
  const issuer = 'https://issuer.example';
  const mesh = await createMesh({ workload, config: byUri(issuer, `http://127.0.0.1:${jwks.port}/jwks.json`) });
  const app = await appFor(mesh);
  try {
    const sign = (key: typeof k1, kid: string) => new SignJWT({ iss: issuer, sub: 'u', exp: nowS() + 600 }).setProtectedHeader({ alg: 'ES256', kid }).sign(key.privateKey);
    assert.equal((await get(app.port, await sign(k1, 'k1'))).status, 200);
    const unknown = await sign(k2, 'k2');
    assert.deepEqual(await get(app.port, unknown), { status: 401, text: "Jwks doesn't have key to match kid or alg from Jwt" });
    for (let i = 0; i < 20; i++) assert.equal((await get(app.port, unknown)).status, 401);
    // The first load was moments ago: within minRefetchMs (10 s) no refetch starts (the JwksCache test covers the refetch).
    assert.equal(jwks.fetches, 1);
    // A token signed by another key under a known kid is a bad signature, not an unknown key.
    assert.deepEqual(await get(app.port, await sign(k2, 'k1')), { status: 401, text: 'Jwt verification fails' });
  } finally {
    await app.close();
    await mesh.close();
    await jwks.close();
  }
});

test('gRPC server interceptor: an invalid token is UNAUTHENTICATED, no token with requestPrincipals is PERMISSION_DENIED', async () => {
  const config = `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: default }
spec: { jwtRules: [ { issuer: "${ISTIO_ISSUER}", jwks: '${ISTIO_JWKS}' } ] }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: require-jwt, namespace: default }
spec: { rules: [ { from: [ { source: { requestPrincipals: ["${ISTIO_ISSUER}/*"] } } ] } ] }
`;
  const mesh = await createMesh({ workload: { name: 'calculate', namespace: 'default', labels: { app: 'calculate' } }, config });
  let handled = 0;
  const server = new Server({ interceptors: [mesh.grpc.serverInterceptor] });
  server.addService(CalculateService, {
    Calculate: (call: ServerUnaryCall<Operands, Result>, cb: sendUnaryData<Result>) => {
      handled++;
      cb(null, { value: call.request.x + call.request.y, version: 'v1' } as Result);
    },
    Series: () => undefined, Fold: () => undefined, Pipe: () => undefined,
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const client = new CalculateClient(`127.0.0.1:${port}`, credentials.createInsecure());
  const withToken = (token: string): Metadata => {
    const m = new Metadata();
    m.set('authorization', `Bearer ${token}`);
    return m;
  };
  try {
    await assert.rejects(calculate(client, { x: 1, y: 2 } as Operands, withToken(tamper(DEMO_JWT))), (err: { code?: number; details?: string }) => {
      assert.equal(err.code, status.UNAUTHENTICATED);
      assert.equal(err.details, 'Jwt verification fails');
      return true;
    });
    await assert.rejects(calculate(client, { x: 1, y: 2 } as Operands), (err: { code?: number; details?: string }) => {
      assert.equal(err.code, status.PERMISSION_DENIED);
      assert.equal(err.details, 'RBAC: access denied');
      return true;
    });
    assert.equal(handled, 0);
    assert.equal((await calculate(client, { x: 1, y: 2 } as Operands, withToken(DEMO_JWT))).value, 3);
    assert.equal(handled, 1);
  } finally {
    client.close();
    server.forceShutdown();
    await mesh.close();
  }
});
