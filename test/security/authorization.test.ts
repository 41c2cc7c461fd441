import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import { type AuthorizationPolicyResource, type RequestAttributes, compileAuthorizationPolicies } from '../../src/security/authorization.js';
import { MeshConfigError } from '../../src/errors.js';

const docs = (text: string): AuthorizationPolicyResource[] => parseAllDocuments(text).map((d) => d.toJS() as AuthorizationPolicyResource).filter(Boolean);

const sleep = 'spiffe://cluster.local/ns/default/sa/sleep';
const curl = 'spiffe://cluster.local/ns/default/sa/curl';
const devSa = 'spiffe://cluster.local/ns/dev/sa/app';
const fooSa = 'spiffe://cluster.local/ns/foo/sa/app';
const httpbin = { namespace: 'foo', labels: { app: 'httpbin', version: 'v1' } };

function req(over: Partial<RequestAttributes> & { headers?: Record<string, string> } = {}): RequestAttributes {
  const { headers, ...rest } = over;
  return { method: 'GET', path: '/', host: 'httpbin.foo.svc.cluster.local', port: 8000, sourceIp: '10.1.2.3', header: (n) => headers?.[n], ...rest };
}

// From Istio's AuthorizationPolicy reference (httpbin example), with the JWT condition replaced by a header.
const referenceExample = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: httpbin, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin, version: v1 } }
  action: ALLOW
  rules:
  - from:
    - source: { principals: ["cluster.local/ns/default/sa/curl"] }
    - source: { namespaces: ["test"] }
    to:
    - operation: { methods: ["GET"], paths: ["/info*"] }
    - operation: { methods: ["POST"], paths: ["/data"] }
    when:
    - key: request.headers[x-issuer]
      values: ["https://accounts.google.com"]
`;

const allowNothing = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-nothing, namespace: foo }
spec: {}
`;
const allowAll = `
kind: AuthorizationPolicy
metadata: { name: allow-all, namespace: foo }
spec: { rules: [ {} ] }
`;
const denyAll = `
kind: AuthorizationPolicy
metadata: { name: deny-all, namespace: foo }
spec: { action: DENY, rules: [ {} ] }
`;
const denyDevPost = `
kind: AuthorizationPolicy
metadata: { name: deny-dev-post, namespace: foo }
spec:
  action: DENY
  rules:
  - from: [ { source: { namespaces: ["dev"] } } ]
    to: [ { operation: { methods: ["POST"] } } ]
`;
const denyNotFoo = `
kind: AuthorizationPolicy
metadata: { name: deny-not-foo, namespace: foo }
spec:
  action: DENY
  rules:
  - from: [ { source: { notNamespaces: ["foo"] } } ]
`;
const allowGet = `
kind: AuthorizationPolicy
metadata: { name: allow-get, namespace: foo }
spec:
  action: ALLOW
  rules: [ { to: [ { operation: { methods: ["GET"] } } ] } ]
`;
const denyAdmin = `
kind: AuthorizationPolicy
metadata: { name: deny-admin, namespace: foo }
spec:
  action: DENY
  rules: [ { to: [ { operation: { paths: ["/admin", "/admin/*"] } } ] } ]
`;
const ipAllow = `
kind: AuthorizationPolicy
metadata: { name: ingress-ip, namespace: foo }
spec:
  action: ALLOW
  rules: [ { from: [ { source: { ipBlocks: ["1.2.3.4", "5.6.7.0/24"] } } ] } ]
`;
const headerVersion = `
kind: AuthorizationPolicy
metadata: { name: header-version, namespace: foo }
spec:
  rules:
  - to: [ { operation: { methods: ["GET"] } } ]
    when: [ { key: "request.headers[version]", values: ["v1", "v2"] } ]
`;
const notPaths = `
kind: AuthorizationPolicy
metadata: { name: not-private, namespace: foo }
spec:
  rules: [ { to: [ { operation: { methods: ["GET"], notPaths: ["/private/*"] } } ] } ]
`;
const portsHosts = `
kind: AuthorizationPolicy
metadata: { name: ports-hosts, namespace: foo }
spec:
  rules: [ { to: [ { operation: { hosts: ["Bookinfo.com", "*.example.com"], ports: ["8000"] } } ] } ]
`;
const rootDeny = `
kind: AuthorizationPolicy
metadata: { name: global-deny-delete, namespace: istio-system }
spec:
  action: DENY
  rules: [ { to: [ { operation: { methods: ["DELETE"] } } ] } ]
`;
const otherSelector = `
kind: AuthorizationPolicy
metadata: { name: only-reviews, namespace: foo }
spec:
  selector: { matchLabels: { app: reviews } }
  rules: [ { from: [ { source: { principals: ["cluster.local/ns/default/sa/nobody"] } } ] } ]
`;
const requireMtls = `
kind: AuthorizationPolicy
metadata: { name: require-mtls, namespace: foo }
spec:
  action: DENY
  rules: [ { from: [ { source: { notPrincipals: ["*"] } } ] } ]
`;
const suffixPath = `
kind: AuthorizationPolicy
metadata: { name: health, namespace: foo }
spec:
  rules: [ { to: [ { operation: { paths: ["*/healthz"] } } ] } ]
`;
const audit = `
kind: AuthorizationPolicy
metadata: { name: audit-data, namespace: foo }
spec:
  action: AUDIT
  rules: [ { to: [ { operation: { paths: ["/data"] } } ] } ]
`;
const whenPrincipal = `
kind: AuthorizationPolicy
metadata: { name: when-principal, namespace: foo }
spec:
  rules: [ { when: [ { key: source.principal, values: ["cluster.local/ns/default/sa/sleep"] }, { key: "request.headers[x-token]", notValues: ["bad"] } ] } ]
`;
const otherNamespace = `
kind: AuthorizationPolicy
metadata: { name: bar-nothing, namespace: bar }
spec: {}
`;

interface Case {
  name: string;
  policies: string;
  request: RequestAttributes;
  allowed: boolean;
  policy?: string;
  audit?: string[];
  workload?: { namespace: string; labels?: Record<string, string> };
}

const cases: Case[] = [
  { name: 'no policy: allow', policies: '', request: req(), allowed: true },
  { name: 'allow-nothing (spec: {}) denies everything', policies: allowNothing, request: req({ sourcePrincipal: curl }), allowed: false },
  { name: 'allow-all (rules: [{}]) allows', policies: allowAll, request: req({ method: 'DELETE' }), allowed: true, policy: 'foo/allow-all' },
  { name: 'deny-all denies even with allow-all present', policies: allowAll + '---' + denyAll, request: req(), allowed: false, policy: 'foo/deny-all' },
  { name: 'reference: curl GET /info allowed', policies: referenceExample, request: req({ sourcePrincipal: curl, path: '/info/x', headers: { 'x-issuer': 'https://accounts.google.com' } }), allowed: true, policy: 'foo/httpbin' },
  { name: 'reference: namespace test POST /data allowed', policies: referenceExample, request: req({ sourcePrincipal: 'spiffe://cluster.local/ns/test/sa/x', method: 'POST', path: '/data', headers: { 'x-issuer': 'https://accounts.google.com' } }), allowed: true },
  { name: 'reference: GET /data (wrong method/path pair) denied', policies: referenceExample, request: req({ sourcePrincipal: curl, path: '/data', headers: { 'x-issuer': 'https://accounts.google.com' } }), allowed: false },
  { name: 'reference: missing when-header denied', policies: referenceExample, request: req({ sourcePrincipal: curl, path: '/info' }), allowed: false },
  { name: 'reference: other principal denied', policies: referenceExample, request: req({ sourcePrincipal: sleep, path: '/info', headers: { 'x-issuer': 'https://accounts.google.com' } }), allowed: false },
  { name: 'reference: selector does not match v2, no policy applies', policies: referenceExample, request: req(), allowed: true, workload: { namespace: 'foo', labels: { app: 'httpbin', version: 'v2' } } },
  { name: 'DENY dev POST: dev POST denied', policies: denyDevPost, request: req({ sourcePrincipal: devSa, method: 'POST' }), allowed: false, policy: 'foo/deny-dev-post' },
  { name: 'DENY dev POST: dev GET allowed', policies: denyDevPost, request: req({ sourcePrincipal: devSa }), allowed: true },
  { name: 'DENY notNamespaces foo: caller from foo allowed', policies: denyNotFoo, request: req({ sourcePrincipal: fooSa }), allowed: true },
  { name: 'DENY notNamespaces foo: plaintext caller denied', policies: denyNotFoo, request: req(), allowed: false },
  { name: 'DENY before ALLOW: GET /admin denied', policies: allowGet + '---' + denyAdmin, request: req({ path: '/admin/users' }), allowed: false, policy: 'foo/deny-admin' },
  { name: 'DENY before ALLOW: GET /home allowed', policies: allowGet + '---' + denyAdmin, request: req({ path: '/home' }), allowed: true, policy: 'foo/allow-get' },
  { name: 'ALLOW present, none match: POST denied', policies: allowGet, request: req({ method: 'POST' }), allowed: false },
  { name: 'ipBlocks: exact IP allowed', policies: ipAllow, request: req({ sourceIp: '1.2.3.4' }), allowed: true },
  { name: 'ipBlocks: CIDR, IPv4-mapped allowed', policies: ipAllow, request: req({ sourceIp: '::ffff:5.6.7.99' }), allowed: true },
  { name: 'ipBlocks: outside denied', policies: ipAllow, request: req({ sourceIp: '5.6.8.1' }), allowed: false },
  { name: 'when header values: v2 allowed', policies: headerVersion, request: req({ headers: { version: 'v2' } }), allowed: true },
  { name: 'when header values: v3 denied', policies: headerVersion, request: req({ headers: { version: 'v3' } }), allowed: false },
  { name: 'notPaths: /private/x denied', policies: notPaths, request: req({ path: '/private/x' }), allowed: false },
  { name: 'notPaths: /public?q=/private/ allowed (query ignored)', policies: notPaths, request: req({ path: '/public?q=/private/x' }), allowed: true },
  { name: 'hosts case-insensitive with port, ports match', policies: portsHosts, request: req({ host: 'bookinfo.COM:8000' }), allowed: true },
  { name: 'hosts suffix wildcard', policies: portsHosts, request: req({ host: 'api.example.com' }), allowed: true },
  { name: 'ports mismatch denied', policies: portsHosts, request: req({ host: 'bookinfo.com', port: 9000 }), allowed: false },
  { name: 'root-namespace DENY applies to every namespace', policies: rootDeny + '---' + allowAll, request: req({ method: 'DELETE' }), allowed: false, policy: 'istio-system/global-deny-delete' },
  { name: 'policy in another namespace does not apply', policies: otherNamespace, request: req(), allowed: true },
  { name: 'selector for another app does not apply', policies: otherSelector, request: req(), allowed: true },
  { name: 'notPrincipals ["*"] denies plaintext', policies: requireMtls, request: req(), allowed: false, policy: 'foo/require-mtls' },
  { name: 'notPrincipals ["*"] allows mTLS peers', policies: requireMtls, request: req({ sourcePrincipal: sleep }), allowed: true },
  { name: 'suffix path */healthz', policies: suffixPath, request: req({ path: '/v1/healthz' }), allowed: true },
  { name: 'AUDIT reported, decision unchanged', policies: audit, request: req({ path: '/data' }), allowed: true, audit: ['foo/audit-data'] },
  { name: 'when source.principal + header notValues: allowed', policies: whenPrincipal, request: req({ sourcePrincipal: sleep, headers: { 'x-token': 'ok' } }), allowed: true },
  { name: 'when header notValues: bad token denied', policies: whenPrincipal, request: req({ sourcePrincipal: sleep, headers: { 'x-token': 'bad' } }), allowed: false },
];

test('Istio AuthorizationPolicy semantics (table)', () => {
  assert.ok(cases.length >= 20);
  for (const c of cases) {
    const evaluator = compileAuthorizationPolicies(docs(c.policies)).forWorkload(c.workload ?? httpbin);
    const d = evaluator.evaluate(c.request);
    assert.equal(d.allowed, c.allowed, `${c.name}: ${d.reason}`);
    if (c.policy) assert.equal(d.policy, c.policy, c.name);
    if (c.audit) assert.deepEqual(d.audit, c.audit, c.name);
    assert.ok(d.reason.length > 0);
  }
});

test('decisions are shared objects: evaluation does not allocate per request', () => {
  const e = compileAuthorizationPolicies(docs(allowGet + '---' + denyAdmin)).forWorkload(httpbin);
  assert.equal(e.evaluate(req({ path: '/a' })), e.evaluate(req({ path: '/b' })));
  assert.equal(compileAuthorizationPolicies([]).forWorkload(httpbin).empty, true);
});

test('invalid policies fail with the resource and field path', () => {
  const bad: Array<[string, string, RegExp]> = [
    ['spec: { action: CUSTOM, provider: { name: x } }', 'spec.provider', /CUSTOM/],
    ['spec: { action: MAYBE }', 'spec.action', /not supported/],
    ['spec: { rules: [ { to: [ { operation: { paths: ["/a*b"] } } ] } ] }', 'spec.rules[0].to[0].operation.paths[0]', /wildcard/],
    ['spec: { rules: [ { to: [ { operation: { ports: ["http"] } } ] } ] }', 'spec.rules[0].to[0].operation.ports[0]', /port/],
    ['spec: { rules: [ { from: [ { source: { ipBlocks: ["10.0.0.0/40"] } } ] } ] }', 'spec.rules[0].from[0].source.ipBlocks[0]', /prefix/],
    ['spec: { rules: [ { from: [ {} ] } ] }', 'spec.rules[0].from[0].source', /must be set/],
    ['spec: { rules: [ { when: [ { key: "request.auth.claims", values: [x] } ] } ] }', 'spec.rules[0].when[0].key', /claim in brackets/],
    ['spec: { rules: [ { when: [ { key: "request.auth.issuer", values: [x] } ] } ] }', 'spec.rules[0].when[0].key', /not a supported condition/],
    ['spec: { rules: [ { when: [ { key: source.ip } ] } ] }', 'spec.rules[0].when[0]', /values or notValues/],
    ['spec: { rules: [ { from: [ { source: { principal: [x] } } ] } ] }', 'spec.rules[0].from[0].source.principal', /unknown field/],
  ];
  for (const [spec, path, reason] of bad) {
    const resource = docs(`kind: AuthorizationPolicy\nmetadata: { name: bad, namespace: foo }\n${spec}\n`);
    assert.throws(() => compileAuthorizationPolicies(resource), (err: unknown) => {
      assert.ok(err instanceof MeshConfigError, spec);
      assert.equal(err.kind, 'AuthorizationPolicy');
      assert.equal(err.resource, 'foo/bad');
      assert.equal(err.path, path, spec);
      assert.match(err.reason, reason, spec);
      return true;
    });
  }
});
