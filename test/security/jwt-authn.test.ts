// RequestAuthentication end to end: YAML → jwt_authn + RBAC filters on the inbound listener → enforced by an
// Express app (mesh.express()) and mesh.createServer on 127.0.0.1, with Istio's sample tokens and JWKS
// (test/fixtures/istio-jwt) and tokens signed here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import express from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createMesh, type Mesh } from '../../src/index.js';
import { listen } from '../inbound/setup.js';
import { DEMO_JWT, GROUPS_SCOPE_JWT, ISTIO_ISSUER, ISTIO_JWKS, nowS, signIstio, tamper } from './jwt-helpers.js';

const workload = { name: 'httpbin', namespace: 'foo', labels: { app: 'httpbin' } };

const requestAuthentication = (extra = ''): string => `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt-example, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  jwtRules:
  - issuer: "${ISTIO_ISSUER}"
    jwks: '${ISTIO_JWKS}'
${extra}`;

const requireJwt = `
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: require-jwt, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  action: ALLOW
  rules:
  - from: [ { source: { requestPrincipals: ["*"] } } ]
`;

/** What the app saw: its headers echoed back. */
function echo(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ headers: req.headers, url: req.url }));
}

async function expressServer(mesh: Mesh) {
  const app = express();
  app.use(mesh.express());
  app.get('/{*any}', (req, res) => echo(req, res));
  return listen(app);
}

async function call(port: number, token?: string, init: { headers?: Record<string, string>; path?: string } = {}) {
  const headers: Record<string, string> = { ...init.headers };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`http://127.0.0.1:${port}${init.path ?? '/headers'}`, { headers });
  const text = await res.text();
  return { status: res.status, text, headers: res.headers, json: () => JSON.parse(text) as { headers: Record<string, string>; url: string } };
}

async function withMesh(config: string, run: (port: number, mesh: Mesh) => Promise<void>): Promise<void> {
  const mesh = await createMesh({ workload, config });
  const server = await expressServer(mesh);
  try {
    await run(server.port, mesh);
  } finally {
    await server.close();
    await mesh.close();
  }
}

test('RequestAuthentication alone: no token passes, a valid token passes (stripped), an invalid token gets 401', async () => {
  await withMesh(requestAuthentication(), async (port) => {
    const none = await call(port);
    assert.equal(none.status, 200);

    const valid = await call(port, DEMO_JWT);
    assert.equal(valid.status, 200);
    assert.equal(valid.json().headers.authorization, undefined, 'forwardOriginalToken false: the app never sees the token');

    // Must fail before (RequestAuthentication was refused as an unsupported kind) and pass after.
    const invalid = await call(port, tamper(DEMO_JWT));
    assert.equal(invalid.status, 401);
    assert.equal(invalid.text, 'Jwt verification fails');
    assert.equal(invalid.headers.get('www-authenticate'), `Bearer realm="http://127.0.0.1:${port}/headers", error="invalid_token"`);
    assert.equal(invalid.headers.get('x-meshlet-flags'), 'JWT');

    const garbage = await call(port, 'not-a-jwt');
    assert.equal(garbage.status, 401);
    assert.match(garbage.text, /^Jwt /);
  });
});

test('wrong issuer, expired, not yet valid and wrong audience are refused as Envoy refuses them', async () => {
  const config = requestAuthentication().replace(`issuer: "${ISTIO_ISSUER}"`, `issuer: "${ISTIO_ISSUER}"\n    audiences: ["httpbin.foo"]`);
  await withMesh(config, async (port) => {
    const base = { iss: ISTIO_ISSUER, sub: 'alice', aud: 'httpbin.foo' };
    const ok = await call(port, await signIstio({ ...base, exp: nowS() + 3600 }));
    assert.equal(ok.status, 200);

    const otherIssuer = await call(port, await signIstio({ ...base, iss: 'someone@else.example', exp: nowS() + 3600 }));
    assert.deepEqual([otherIssuer.status, otherIssuer.text], [401, 'Jwt issuer is not configured']);

    // Envoy allows 60 s of clock skew: an hour ago is expired whatever the skew.
    const expired = await call(port, await signIstio({ ...base, exp: nowS() - 3600 }));
    assert.deepEqual([expired.status, expired.text], [401, 'Jwt is expired']);

    const early = await call(port, await signIstio({ ...base, nbf: nowS() + 3600, exp: nowS() + 7200 }));
    assert.deepEqual([early.status, early.text], [401, 'Jwt not yet valid']);

    // jwt_authn answers a disallowed audience with 403 (filter.cc: JwtAudienceNotAllowed → Forbidden).
    const audience = await call(port, await signIstio({ ...base, aud: 'other', exp: nowS() + 3600 }));
    assert.deepEqual([audience.status, audience.text], [403, 'Audiences in Jwt are not allowed']);

    // Istio's demo.jwt has no aud claim: with audiences configured it is refused.
    assert.equal((await call(port, DEMO_JWT)).status, 403);
  });
});

test('requestPrincipals ["*"]: no token → 403 RBAC, a valid token → 200; notRequestPrincipals and iss/sub forms', async () => {
  await withMesh(requestAuthentication() + requireJwt, async (port) => {
    // Must fail before (requestPrincipals were refused) and pass after.
    const none = await call(port);
    assert.deepEqual([none.status, none.text], [403, 'RBAC: access denied']);
    assert.equal((await call(port, DEMO_JWT)).status, 200);
    assert.equal((await call(port, tamper(DEMO_JWT))).status, 401, 'authentication runs before authorization');
  });
  const exact = `${requestAuthentication()}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: only-alice, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  rules:
  - from: [ { source: { requestPrincipals: ["${ISTIO_ISSUER}/alice", "*/bob"], notRequestPrincipals: ["*/mallory"] } } ]
`;
  await withMesh(exact, async (port) => {
    const exp = nowS() + 3600;
    assert.equal((await call(port, await signIstio({ iss: ISTIO_ISSUER, sub: 'alice', exp }))).status, 200);
    assert.equal((await call(port, await signIstio({ iss: ISTIO_ISSUER, sub: 'bob', exp }))).status, 200);
    assert.equal((await call(port, await signIstio({ iss: ISTIO_ISSUER, sub: 'carol', exp }))).status, 403);
    assert.equal((await call(port, DEMO_JWT)).status, 403, 'demo.jwt is testing@secure.istio.io/testing@secure.istio.io');
  });
});

test('request.auth.claims (lists, nested), audiences, presenter and principal conditions', async () => {
  const config = `${requestAuthentication()}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: claims, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  rules:
  - to: [ { operation: { paths: ["/groups"] } } ]
    when: [ { key: "request.auth.claims[groups]", values: ["group1"] } ]
  - to: [ { operation: { paths: ["/scope"] } } ]
    when: [ { key: "request.auth.claims[scope]", values: ["scope2"] }, { key: request.auth.principal, values: ["${ISTIO_ISSUER}/*"] } ]
  - to: [ { operation: { paths: ["/nested"] } } ]
    when: [ { key: "request.auth.claims[realm][role]", values: ["admin"] }, { key: request.auth.audiences, values: ["web"] },
            { key: request.auth.presenter, notValues: ["evil"] } ]
  - to: [ { operation: { paths: ["/foo"] } } ]
    when: [ { key: "request.auth.claims[foo]", values: ["b*"] } ]
`;
  await withMesh(config, async (port) => {
    assert.equal((await call(port, GROUPS_SCOPE_JWT, { path: '/groups' })).status, 200);
    assert.equal((await call(port, DEMO_JWT, { path: '/groups' })).status, 403);
    assert.equal((await call(port, GROUPS_SCOPE_JWT, { path: '/scope' })).status, 200);
    assert.equal((await call(port, DEMO_JWT, { path: '/foo' })).status, 200);
    assert.equal((await call(port, undefined, { path: '/foo' })).status, 403);
    const exp = nowS() + 3600;
    const nested = await signIstio({ iss: ISTIO_ISSUER, sub: 'x', exp, aud: ['web', 'api'], azp: 'spa', realm: { role: 'admin' } });
    assert.equal((await call(port, nested, { path: '/nested' })).status, 200);
    const evil = await signIstio({ iss: ISTIO_ISSUER, sub: 'x', exp, aud: 'web', azp: 'evil', realm: { role: 'admin' } });
    assert.equal((await call(port, evil, { path: '/nested' })).status, 403);
    // A space-delimited scope string is matched as a list (normalize_payload_in_metadata, istiod's default).
    const spaced = await signIstio({ iss: ISTIO_ISSUER, sub: 'x', exp, scope: 'scope1 scope2' });
    assert.equal((await call(port, spaced, { path: '/scope' })).status, 200);
  });
});

test('fromHeaders with a prefix, fromParams, fromCookies, forwardOriginalToken, outputPayloadToHeader, outputClaimToHeaders', async () => {
  const config = `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt-locations, namespace: foo }
spec:
  jwtRules:
  - issuer: "${ISTIO_ISSUER}"
    jwks: '${ISTIO_JWKS}'
    fromHeaders: [ { name: x-jwt-assertion, prefix: "Token " } ]
    fromParams: [ my_token ]
    fromCookies: [ session ]
    forwardOriginalToken: true
    outputPayloadToHeader: x-jwt-payload
    outputClaimToHeaders: [ { header: x-jwt-foo, claim: foo }, { header: x-jwt-sub, claim: sub } ]
`;
  await withMesh(config, async (port) => {
    const byHeader = await call(port, undefined, { headers: { 'x-jwt-assertion': `Token ${DEMO_JWT}` } });
    assert.equal(byHeader.status, 200);
    const seen = byHeader.json().headers;
    assert.equal(seen['x-jwt-assertion'], `Token ${DEMO_JWT}`, 'forwardOriginalToken: true keeps it');
    assert.equal(seen['x-jwt-payload'], DEMO_JWT.split('.')[1]);
    assert.deepEqual(JSON.parse(Buffer.from(seen['x-jwt-payload']!, 'base64url').toString()).foo, 'bar');
    assert.equal(seen['x-jwt-foo'], 'bar');
    assert.equal(seen['x-jwt-sub'], ISTIO_ISSUER);

    assert.equal((await call(port, undefined, { path: `/q?my_token=${DEMO_JWT}` })).status, 200);
    assert.equal((await call(port, undefined, { path: `/q?my_token=${tamper(DEMO_JWT)}` })).status, 401);
    assert.equal((await call(port, undefined, { headers: { cookie: `a=1; session=${tamper(DEMO_JWT)}` } })).status, 401);
    assert.equal((await call(port, undefined, { headers: { cookie: `session=${DEMO_JWT}` } })).json().headers['x-jwt-foo'], 'bar');
    // Only a verified token sets the output headers: a client's own are removed (Envoy's headers_to_sanitize_).
    const spoofed = (await call(port, undefined, { headers: { 'x-jwt-payload': 'e30', 'x-jwt-sub': 'admin' } })).json().headers;
    assert.equal(spoofed['x-jwt-payload'], undefined);
    assert.equal(spoofed['x-jwt-sub'], undefined);
    // Locations are replaced, not added to: the default Authorization header is no longer read.
    assert.equal((await call(port, tamper(DEMO_JWT))).status, 200);
  });
});

test('mesh.createServer enforces the same chain', async () => {
  const mesh = await createMesh({ workload, config: requestAuthentication() + requireJwt });
  const server = mesh.createServer(echo);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  try {
    assert.equal((await call(port)).status, 403);
    assert.equal((await call(port, tamper(DEMO_JWT))).status, 401);
    const ok = await call(port, DEMO_JWT);
    assert.equal(ok.status, 200);
    assert.equal(ok.json().headers.authorization, undefined);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections?.();
    await mesh.close();
  }
});

test('a RequestAuthentication in another namespace or selecting other labels does not apply', async () => {
  const other = requestAuthentication().replace('namespace: foo', 'namespace: bar');
  await withMesh(other, async (port) => {
    assert.equal((await call(port, tamper(DEMO_JWT))).status, 200);
  });
  const root = requestAuthentication().replace('namespace: foo', 'namespace: istio-system');
  await withMesh(root, async (port) => {
    assert.equal((await call(port, tamper(DEMO_JWT))).status, 401, 'the root namespace applies mesh-wide');
  });
});
