// RequestAuthentication → jwt_authn filter config, as istiod's convertToEnvoyJwtConfig builds it
// (pilot/pkg/security/authn/policy_applier.go and its TestConvertToEnvoyJwtConfig, istio/istio 86c9f01f),
// validation as pkg/config/validation's validateJwtRule, and the compiled filter's requirement semantics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import { MeshConfigError } from '../../src/errors.js';
import { type RequestAuthenticationInput, translateJwtAuthn, translateRequestAuthentication } from '../../src/security/jwt-policy.js';
import { compileJwtAuthn, JWT_AUTHN_FILTER } from '../../src/core/jwt-authn.js';
import type { InboundRequestView } from '../../src/core/inbound-policy.js';
import { DEMO_JWT, ISTIO_ISSUER, ISTIO_JWKS, freshKey, nowS, signIstio } from './jwt-helpers.js';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';

const docs = (text: string): RequestAuthenticationInput[] => parseAllDocuments(text).map((d) => d.toJS() as RequestAuthenticationInput).filter(Boolean);
const workload = { namespace: 'foo', labels: { app: 'httpbin' } };

test('two policies, three rules: one provider each, sorted by issuer, istiod\'s requirement tree', () => {
  const filter = translateJwtAuthn(docs(`
kind: RequestAuthentication
metadata: { name: a, namespace: foo }
spec: { jwtRules: [ { issuer: "https://secret.foo.com", jwksUri: "https://secret.foo.com/certs" } ] }
---
kind: RequestAuthentication
metadata: { name: b, namespace: istio-system }
spec:
  jwtRules:
  - { issuer: "https://secret.bar.com", jwks: '${ISTIO_JWKS}', spaceDelimitedClaims: [roles] }
  - { issuer: "https://secret.baz.com", jwksUri: "http://jwks.baz:8080/keys", timeout: 2s }
---
kind: RequestAuthentication
metadata: { name: other, namespace: foo }
spec: { selector: { matchLabels: { app: other } }, jwtRules: [ { issuer: "x", jwksUri: "https://x/keys" } ] }
`), workload)!;
  assert.equal(filter.name, JWT_AUTHN_FILTER);
  const cfg = filter.typed_config;
  assert.equal(cfg.bypass_cors_preflight, true);
  assert.deepEqual(Object.fromEntries(Object.entries(cfg.providers!).map(([k, p]) => [k, p.issuer])), {
    'origins-0': 'https://secret.bar.com', 'origins-1': 'https://secret.baz.com', 'origins-2': 'https://secret.foo.com',
  });
  const bar = cfg.providers!['origins-0']!;
  assert.deepEqual(bar.local_jwks, { inline_string: ISTIO_JWKS });
  assert.equal(bar.payload_in_metadata, 'payload');
  assert.deepEqual(bar.normalize_payload_in_metadata, { space_delimited_claims: ['permission', 'roles', 'scope'] });
  assert.equal(bar.forward, undefined, 'forwardOriginalToken defaults to false');
  assert.deepEqual(cfg.providers!['origins-1']!.remote_jwks, {
    http_uri: { uri: 'http://jwks.baz:8080/keys', cluster: 'outbound|8080||jwks.baz', timeout: { seconds: 2, nanos: 0 } },
    cache_duration: { seconds: 300, nanos: 0 },
  });
  const allowMissing = (n: string) => ({ requires_any: { requirements: [{ provider_name: n }, { allow_missing: {} }] } });
  assert.deepEqual(cfg.rules, [{
    match: { prefix: '/' },
    requires: { requires_any: { requirements: [
      { provider_name: 'origins-0' }, { provider_name: 'origins-1' }, { provider_name: 'origins-2' },
      { requires_all: { requirements: [allowMissing('origins-0'), allowMissing('origins-1'), allowMissing('origins-2')] } },
    ] } },
  }]);
  assert.equal(translateJwtAuthn(docs('kind: RequestAuthentication\nmetadata: { name: a, namespace: foo }\nspec: {}\n'), workload), undefined);
});

test('rules istiod rejects are MeshConfigErrors naming the field', () => {
  const bad: Array<[string, string, RegExp]> = [
    ['{ jwtRules: [ { audiences: [a] } ] }', 'spec.jwtRules[0].issuer', /issuer or jwksUri/],
    ['{ jwtRules: [ { issuer: i, audiences: [""] , jwksUri: "https://x/k" } ] }', 'spec.jwtRules[0].audiences[0]', /non-empty/],
    ['{ jwtRules: [ { issuer: i, jwksUri: "ftp://x/k" } ] }', 'spec.jwtRules[0].jwksUri', /http/],
    ['{ jwtRules: [ { issuer: i, jwks: "{" } ] }', 'spec.jwtRules[0].jwks', /jwks parse error/],
    ['{ jwtRules: [ { issuer: i, jwks: "{}" } ] }', 'spec.jwtRules[0].jwks', /keys/],
    ['{ jwtRules: [ { issuer: "https://i", fromHeaders: [ { name: "" } ] } ] }', 'spec.jwtRules[0].fromHeaders[0].name', /non-empty/],
    ['{ jwtRules: [ { issuer: "https://i", fromParams: [""] } ] }', 'spec.jwtRules[0].fromParams[0]', /non-empty/],
    ['{ jwtRules: [ { issuer: "https://i", fromCookies: [""] } ] }', 'spec.jwtRules[0].fromCookies[0]', /non-empty/],
    ['{ jwtRules: [ { issuer: "https://i", outputClaimToHeaders: [ { header: "x y", claim: c } ] } ] }', 'spec.jwtRules[0].outputClaimToHeaders[0].header', /header name/],
    ['{ jwtRules: [ { issuer: "https://i", outputClaimToHeaders: [ { header: x } ] } ] }', 'spec.jwtRules[0].outputClaimToHeaders[0]', /non-empty/],
    ['{ jwtRules: [ { issuer: "https://i", timeout: soon } ] }', 'spec.jwtRules[0].timeout', /duration/],
    ['{ jwtRules: [ { issuer: "https://i", jwksUrl: "https://i/k" } ] }', 'spec.jwtRules[0].jwksUrl', /unknown field/],
    ['{ targetRef: { kind: Gateway, name: gw }, jwtRules: [] }', 'spec.targetRef', /selector/],
  ];
  for (const [spec, path, reason] of bad) {
    const [doc] = docs(`kind: RequestAuthentication\nmetadata: { name: bad, namespace: foo }\nspec: ${spec}\n`);
    assert.throws(() => translateRequestAuthentication(doc!), (err: unknown) => {
      assert.ok(err instanceof MeshConfigError, spec);
      assert.equal(err.kind, 'RequestAuthentication');
      assert.equal(err.resource, 'foo/bad');
      assert.equal(err.path, path, spec);
      assert.match(err.reason, reason, spec);
      return true;
    });
  }
});

/** A request view over plain headers (core unit level; the adapters are tested with real servers). */
function view(headers: Record<string, string>, path = '/'): InboundRequestView & { meta: Record<string, unknown> } {
  const meta: Record<string, unknown> = {};
  return {
    method: 'GET', path, sourcePrincipal: undefined, sourceIp: '127.0.0.1', meta,
    header: (n) => headers[n],
    setRequestHeader: (n, v) => { headers[n] = v; },
    removeRequestHeader: (n) => { delete headers[n]; },
    addResponseHeader: () => undefined,
    metadata: (f) => meta[f] as Record<string, unknown> | undefined,
    setMetadata: (f, v) => { meta[f] = v; },
  };
}

test('several providers: a token valid for any one passes, a token of an unknown issuer fails, payload lands in metadata', async () => {
  const { privateKey, jwks } = await freshKey('ec');
  const filterConfig = translateJwtAuthn(docs(`
kind: RequestAuthentication
metadata: { name: two, namespace: foo }
spec:
  jwtRules:
  - { issuer: "${ISTIO_ISSUER}", jwks: '${ISTIO_JWKS}' }
  - { issuer: "https://ec.example", jwks: '${JSON.stringify(jwks)}' }
`), workload)!;
  const filter = compileJwtAuthn(filterConfig.typed_config as never, 'test', JWT_AUTHN_FILTER)!;
  const ec = await new SignJWT({ iss: 'https://ec.example', sub: 'e', exp: nowS() + 60 }).setProtectedHeader({ alg: 'ES256', kid: 'ec' }).sign(privateKey);
  for (const token of [DEMO_JWT, ec]) {
    const v = view({ authorization: `Bearer ${token}` });
    assert.equal(filter.decodeHeaders(v), undefined);
    const payload = (v.meta[JWT_AUTHN_FILTER] as { payload: { iss: string } }).payload;
    assert.ok(payload.iss === ISTIO_ISSUER || payload.iss === 'https://ec.example');
    assert.equal(v.header('authorization'), undefined);
  }
  const stranger = await new SignJWT({ iss: 'https://nobody', sub: 'e' }).setProtectedHeader({ alg: 'ES256', kid: 'ec' }).sign(privateKey);
  assert.equal(filter.decodeHeaders(view({ authorization: `Bearer ${stranger}` }))?.body, 'Jwt issuer is not configured');
  assert.equal(filter.decodeHeaders(view({})), undefined, 'no token: allowed, no principal');
  // CORS preflights bypass (bypass_cors_preflight, as istiod sets it).
  const preflight = view({ authorization: 'Bearer x.y.z', origin: 'https://a', 'access-control-request-method': 'GET' });
  assert.equal(filter.decodeHeaders({ ...preflight, method: 'OPTIONS' }), undefined);
});

test('algorithms: RS256 (Istio\'s key), ES256, PS256, EdDSA, HS256 verify; alg none and a key of the wrong type do not', async () => {
  const keys: object[] = [];
  const tokens: Array<[string, string]> = [];
  for (const alg of ['ES256', 'PS256', 'EdDSA'] as const) {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    keys.push({ ...(await exportJWK(publicKey)), kid: alg });
    tokens.push([alg, await new SignJWT({ iss: 'https://i', sub: alg }).setProtectedHeader({ alg, kid: alg }).sign(privateKey)]);
  }
  keys.push(...(JSON.parse(ISTIO_JWKS) as { keys: object[] }).keys);
  tokens.push(['RS256', await signIstio({ iss: 'https://i', sub: 'r' })]);
  const secret = Buffer.from('a-shared-secret-of-32-bytes-long');
  keys.push({ kty: 'oct', k: secret.toString('base64url'), kid: 'HS256' });
  tokens.push(['HS256', await new SignJWT({ iss: 'https://i', sub: 'h' }).setProtectedHeader({ alg: 'HS256', kid: 'HS256' }).sign(secret)]);
  const filter = compileJwtAuthn({
    '@type': 'x', providers: { p: { issuer: 'https://i', local_jwks: { inline_string: JSON.stringify({ keys }) } } }, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'p' } }],
  } as never, 'test', JWT_AUTHN_FILTER)!;
  for (const [alg, token] of tokens) assert.equal(filter.decodeHeaders(view({ authorization: `Bearer ${token}` }))?.body, undefined, alg);
  const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"iss":"https://i"}').toString('base64url')}.`;
  assert.equal(filter.decodeHeaders(view({ authorization: `Bearer ${none}` }))?.body, 'Jwt header [alg] is not supported');
  // An RS256 token whose kid names the ES256 key: no key fits kid and alg.
  const relabeled = await signIstio({ iss: 'https://i', sub: 'r' }, { kid: 'ES256' });
  assert.equal(filter.decodeHeaders(view({ authorization: `Bearer ${relabeled}` }))?.body, "Jwks doesn't have key to match kid or alg from Jwt");
  assert.equal(filter.decodeHeaders(view({}))?.body, 'Jwt is missing', 'provider_name alone requires a token');
  assert.equal(filter.decodeHeaders(view({}))?.headers[0]?.[1], 'Bearer realm="http:///"', 'no error="invalid_token" for a missing token');
});

test('requestPrincipals, notRequestPrincipals and request.auth.* translate exactly as istiod\'s golden output', async () => {
  const { readFileSync } = await import('node:fs');
  const { parse } = await import('yaml');
  const { translateAuthorizationPolicy } = await import('../../src/config/translate-rbac.js');
  const dir = new URL('../fixtures/istio-authz/', import.meta.url);
  const input = parse(readFileSync(new URL('allow-full-rule-in.yaml', dir), 'utf8')) as { spec: { rules: Array<{ from: Array<{ source: Record<string, unknown> }>; to?: unknown; when: Array<{ key: string }> }> } };
  // Keep the JWT fields only: the rest of Istio's "full rule" uses fields meshlet refuses.
  const rule = input.spec.rules[1]!;
  const source = rule.from[0]!.source;
  rule.from = [{ source: { requestPrincipals: source.requestPrincipals, notRequestPrincipals: source.notRequestPrincipals } }];
  delete rule.to;
  rule.when = rule.when.filter((w) => w.key.startsWith('request.auth.'));
  input.spec.rules = [rule];
  const ours = translateAuthorizationPolicy(input as never).policies['ns[foo]-policy[httpbin-1]-rule[0]']!;
  const golden = parse(readFileSync(new URL('extended-allow-full-rule-out.yaml', dir), 'utf8')) as { typedConfig: { rules: { policies: Record<string, { principals: Array<{ andIds: { ids: unknown[] } }> }> } } };
  const snake = (v: unknown): unknown => Array.isArray(v) ? v.map(snake)
    : typeof v === 'object' && v !== null ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), snake(x)])) : v;
  const jwtOnly = (ids: unknown[]): unknown[] => ids.filter((id) => JSON.stringify(id).includes('envoy.filters.http.jwt_authn'));
  const expected = jwtOnly(golden.typedConfig.rules.policies['ns[foo]-policy[httpbin-1]-rule[1]']!.principals[0]!.andIds.ids).map(snake);
  const actual = jwtOnly((ours.principals[0] as { and_ids: { ids: unknown[] } }).and_ids.ids);
  assert.equal(expected.length, 12, 'requestPrincipals, notRequestPrincipals, values and notValues of five request.auth keys');
  assert.deepEqual(actual, expected);
});

test('presence: REQUIRED drops allow_missing for its rule: no token is 401 "Jwt is missing"', () => {
  const make = (presence: string) => compileJwtAuthn(translateJwtAuthn(docs(`
kind: RequestAuthentication
metadata: { name: req, namespace: foo }
spec: { jwtRules: [ { issuer: "${ISTIO_ISSUER}", jwks: '${ISTIO_JWKS}', presence: ${presence} } ] }
`), workload)!.typed_config as never, 'test', JWT_AUTHN_FILTER)!;
  const missing = make('REQUIRED').decodeHeaders(view({}));
  assert.deepEqual([missing?.status, missing?.body], [401, 'Jwt is missing']);
  assert.equal(make('REQUIRED').decodeHeaders(view({ authorization: `Bearer ${DEMO_JWT}` })), undefined);
  assert.equal(make('OPTIONAL').decodeHeaders(view({})), undefined);
});
