/**
 * Bad Gateway API documents are refused with a MeshConfigError naming the
 * kind, namespace/name and field path (as the CRDs' schema and CEL rules and
 * istiod's conversion refuse them); kinds meshlet does not implement are
 * rejected with MESHLET_UNSUPPORTED_KIND, never skipped silently.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admitResources } from '../../../src/config/admission.js';
import { parseYaml } from '../../../src/config/load.js';
import { parseResources } from '../../../src/config/resources.js';
import { MeshConfigError } from '../../../src/errors.js';

const route = (rules: string, kind = 'HTTPRoute', version = 'v1') => `apiVersion: gateway.networking.k8s.io/${version}
kind: ${kind}
metadata: { name: r, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: reviews }]
  rules:
${rules}`;

function refused(yaml: string): MeshConfigError {
  try {
    parseResources(parseYaml(yaml, 'x.yaml'));
  } catch (err) {
    assert.ok(err instanceof MeshConfigError, String(err));
    return err;
  }
  assert.fail('expected a MeshConfigError');
}

test('every Gateway API spelling Istio accepts validates (v1, v1beta1, v1alpha2)', () => {
  for (const version of ['v1', 'v1beta1', 'v1alpha2']) {
    const [r] = parseResources(parseYaml(route('  - backendRefs: [{ name: reviews-v1, port: 9080 }]', 'HTTPRoute', version), 'x.yaml'));
    assert.equal(r?.kind, 'HTTPRoute');
  }
});

test('bad HTTPRoutes name kind, name and field path', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['  - backendRefs: [{ name: reviews-v1 }]', 'spec.rules[0].backendRefs[0].port', /required/],
    ['  - backendRefs: [{ name: reviews-v1.shop.svc.cluster.local, port: 80 }]', 'spec.rules[0].backendRefs[0].name', /not the hostname/],
    ['  - backendRefs: [{ name: reviews-v1, port: 80, weight: 1000001 }]', 'spec.rules[0].backendRefs[0].weight', /≤ 1000000/],
    ['  - matches: [{ path: { type: Exact, value: relative } }]', 'spec.rules[0].matches[0].path.value', /absolute path/],
    ['  - matches: [{ path: { type: RegularExpression, value: "(a" } }]', 'spec.rules[0].matches[0].path.value', /.+/],
    ['  - matches: [{ path: { type: Glob, value: / } }]', 'spec.rules[0].matches[0].path.type', /must be one of/],
    ['  - filters: [{ type: RequestHeaderModifier }]', 'spec.rules[0].filters[0].requestHeaderModifier', /required for filter type/],
    ['  - filters: [{ type: URLRewrite, requestRedirect: { hostname: x } }]', 'spec.rules[0].filters[0].requestRedirect', /must not be set/],
    ['  - filters: [{ type: CORS, cors: {} }]', 'spec.rules[0].filters[0].type', /not supported by meshlet/],
    ['  - filters: [{ type: RequestRedirect, requestRedirect: {} }]\n    backendRefs: [{ name: a, port: 80 }]', 'spec.rules[0].backendRefs', /RequestRedirect/],
    ['  - timeouts: { request: 1s, backendRequest: 2s }', 'spec.rules[0].timeouts.backendRequest', /no greater than/],
    ['  - timeouts: { request: soon }', 'spec.rules[0].timeouts.request', /duration/],
    ['  - retry: { codes: [200] }', 'spec.rules[0].retry.codes[0]', /≥ 400/],
    ['  - backendRefs: [{ name: a, port: 80, filters: [{ type: URLRewrite, urlRewrite: {} }] }]', 'spec.rules[0].backendRefs[0].filters[0].type', /backendRef/],
    ['  - matchs: []', 'spec.rules[0].matchs', /unknown field/],
  ];
  for (const [rules, path, reason] of cases) {
    const err = refused(route(rules));
    assert.equal(err.kind, 'HTTPRoute', rules);
    assert.equal(err.resource, 'shop/r', rules);
    assert.equal(err.path, path, rules);
    assert.match(err.reason, reason, rules);
  }
});

test('bad GRPCRoutes: a method match names service or method; RequestRedirect is not a gRPC filter', () => {
  assert.equal(refused(route('  - matches: [{ method: { type: Exact } }]', 'GRPCRoute')).path, 'spec.rules[0].matches[0].method');
  assert.equal(refused(route('  - filters: [{ type: RequestRedirect, requestRedirect: {} }]', 'GRPCRoute')).path, 'spec.rules[0].filters[0].type');
});

test('a parentRef of a kind meshlet does not attach to is refused', () => {
  const err = refused(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: r }
spec: { parentRefs: [{ group: networking.istio.io, kind: ServiceEntry, name: x }] }
`);
  assert.equal(err.path, 'spec.parentRefs[0]');
});

test('Gateway API kinds meshlet does not know are rejected as such, not skipped; L4 routes are accepted with a warning', () => {
  const { statuses } = admitResources(parseYaml(`apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: { name: t }
spec: { rules: [{ backendRefs: [{ name: tcp-echo, port: 9000 }] }] }
---
apiVersion: gateway.networking.k8s.io/v1alpha3
kind: BackendTLSPolicy
metadata: { name: b }
spec: {}
`, 'x.yaml'), 'analyze');
  assert.deepEqual(statuses.map((s) => [s.kind, s.status, s.warnings[0]?.code]), [
    ['TCPRoute', 'partial', 'MESHLET_UNSUPPORTED_FIELD'],
    ['BackendTLSPolicy', 'rejected', 'MESHLET_UNSUPPORTED_KIND'],
  ]);
});

test('sessionPersistence is accepted with a warning (not applied)', () => {
  const { statuses } = admitResources(parseYaml(route('  - sessionPersistence: { sessionName: s }\n    backendRefs: [{ name: a, port: 80 }]'), 'x.yaml'), 'analyze');
  assert.deepEqual(statuses[0]?.warnings.filter((w) => w.code === 'MESHLET_UNSUPPORTED_FIELD').map((w) => w.path), ['spec.rules[0].sessionPersistence']);
});
