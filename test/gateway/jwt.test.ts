// RequestAuthentication at the ingress gateway: jwt_authn runs before routing (as istiod's gateway
// chain), so an invalid token is 401 before any upstream sees it, the token is stripped before the
// upstream, and VirtualService `@request.auth.claims` header matches route on the verified payload.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../helpers/http-servers.js';
import { backendService, boundRoutes, call, docs, gatewayDoc, startGateway } from './helpers.js';
import { DEMO_JWT, GROUPS_SCOPE_JWT, ISTIO_ISSUER, ISTIO_JWKS, tamper } from '../security/jwt-helpers.js';
import { admitResources } from '../../src/config/admission.js';
import { parseYaml } from '../../src/config/load.js';

const authn = `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: ingress-jwt, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  jwtRules: [ { issuer: "${ISTIO_ISSUER}", jwks: '${ISTIO_JWKS}' } ]
`;

describe('JWT at the ingress gateway', () => {
  let v1: TestServer;
  let v2: TestServer;
  let services: string;

  before(async () => {
    v1 = await startServer('v1');
    v2 = await startServer('v2');
    services = docs(backendService('v1', v1.port), backendService('v2', v2.port));
  });
  after(async () => {
    await Promise.all([v1.close(), v2.close()]);
  });

  // Istio's "JWT claim based routing" task: group1 members go to v2, everyone else to v1.
  const routes = boundRoutes('["*"]', `
    - match: [{ headers: { "@request.auth.claims.groups": { exact: group1 } } }]
      route: [{ destination: { host: v2 } }]
    - match: [{ headers: { "@request.auth.claims[foo]": { prefix: ba } } }]
      route: [{ destination: { host: v2 } }]
      headers: { request: { set: { x-route: foo } } }
    - route: [{ destination: { host: v1 } }]`);

  it('401 for an invalid token before routing; a valid token is stripped before the upstream', async () => {
    const gw = await startGateway(docs(services, gatewayDoc(), routes, authn));
    try {
      const bad = await call(gw, 'shop.example.com', '/', { headers: { authorization: `Bearer ${tamper(DEMO_JWT)}` } });
      assert.deepEqual([bad.status, bad.body], [401, 'Jwt verification fails']);
      assert.match(String(bad.headers['www-authenticate']), /^Bearer realm="http:\/\/shop\.example\.com\/", error="invalid_token"$/);
      const none = await call(gw, 'shop.example.com', '/');
      assert.deepEqual([none.status, none.body], [200, 'v1']);
      const ok = await call(gw, 'shop.example.com', '/', { headers: { authorization: `Bearer ${DEMO_JWT}` } });
      assert.equal(ok.status, 200);
      assert.equal(v2.lastHeaders?.authorization, undefined);
      assert.equal(ok.body, 'v2', 'demo.jwt has foo: bar');
      assert.equal(v2.lastHeaders?.['x-route'], 'foo');
    } finally {
      await gw.close();
    }
  });

  it('routes on JWT claims: a list claim (groups) matches; a plain header of the claim\'s name does not', async () => {
    const gw = await startGateway(docs(services, gatewayDoc(), routes, authn));
    try {
      const member = await call(gw, 'shop.example.com', '/', { headers: { authorization: `Bearer ${GROUPS_SCOPE_JWT}` } });
      assert.equal(member.body, 'v2');
      // The claim comes from the verified token only (`@` is not a header-name character, nothing can spoof it).
      assert.equal((await call(gw, 'shop.example.com', '/', { headers: { groups: 'group1' } })).body, 'v1');
    } finally {
      await gw.close();
    }
  });

  it('a sidecar VirtualService with a claim match is accepted with a warning (Istio matches claims at gateways only)', () => {
    const { statuses } = admitResources(parseYaml(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - match: [{ headers: { "@request.auth.claims.groups": { exact: group1 } } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
  - route: [{ destination: { host: reviews } }]
`, 'vs.yaml'), 'embedded');
    assert.equal(statuses[0]!.status, 'partial');
    assert.equal(statuses[0]!.warnings[0]!.path, 'spec.http[0].match[0].headers.@request.auth.claims.groups');
    assert.equal(statuses[0]!.warnings[0]!.code, 'MESHLET_UNSUPPORTED_VALUE');
  });
});
