/**
 * mesh.configStatus() (DESIGN.md §3): one entry per Istio resource, applied /
 * partial / rejected, with warnings naming the field meshlet does not apply;
 * each new warning logged once; mesh.apply stays atomic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh } from '../../src/index.js';
import { MeshConfigError } from '../../src/errors.js';
import { admitResources } from '../../src/config/admission.js';
import { parseYaml } from '../../src/config/load.js';
import { translateIsolated } from '../../src/config/translate-isolated.js';

const vs = (extra = '') => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
    - route: [{ destination: { host: reviews } }]
${extra}`;

const se = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec: { hosts: [reviews], resolution: DNS, ports: [{ number: 80, name: http }, { number: 3306, name: mysql, protocol: MYSQL }], exportTo: ["."] }
`;

test('configStatus: applied, partial with the unsupported field named, each warning logged once', async (t) => {
  const warn = t.mock.method(console, 'warn', () => {});
  const config = `${vs('      retries: { attempts: 2, retryRemoteLocalities: true }\n')}---\n${se}`;
  const mesh = await createMesh({ workload: { name: 'app', namespace: 'shop' }, config });
  t.after(() => mesh.close());
  const status = mesh.configStatus();
  assert.deepEqual(status.map((s) => [s.kind, s.namespace, s.name, s.status]), [
    ['VirtualService', 'shop', 'reviews', 'partial'],
    ['ServiceEntry', 'shop', 'reviews', 'partial'],
  ]);
  assert.deepEqual(status[0]!.warnings.map((w) => [w.path, w.code]), [['spec.http[0].retries.retryRemoteLocalities', 'MESHLET_UNSUPPORTED_FIELD']]);
  assert.match(status[0]!.warnings[0]!.message, /locality/);
  assert.deepEqual(status[0]!.source, { file: '<string>', document: 0 });
  assert.deepEqual(status[1]!.warnings.map((w) => [w.path, w.code]), [['spec.ports[1].protocol', 'MESHLET_UNSUPPORTED_VALUE']]);
  assert.equal(warn.mock.callCount(), 2);
  assert.match(String(warn.mock.calls[0]!.arguments[0]), /^meshlet: partial VirtualService shop\/reviews: spec\.http\[0\]\.retries\.retryRemoteLocalities: MESHLET_UNSUPPORTED_FIELD: .*\(<string>, document 0\)$/);

  // The same config again logs nothing new; a config without the field is applied.
  await mesh.apply(config);
  assert.equal(warn.mock.callCount(), 2);
  await mesh.apply(vs());
  assert.deepEqual(mesh.configStatus().map((s) => s.status), ['applied']);
  assert.equal(warn.mock.callCount(), 2);
});

test('mesh.apply stays atomic: one bad document throws MeshConfigError, the old config and its status stay', async (t) => {
  t.mock.method(console, 'warn', () => {});
  const mesh = await createMesh({ workload: { name: 'app', namespace: 'shop' }, config: vs() });
  t.after(() => mesh.close());
  const before = mesh.configDump().version;
  await assert.rejects(mesh.apply(`${se}---\n${vs().replace('hosts: [reviews]', 'hosts: [reviews]\n  tcp: []\n  htp: []')}`), (err: unknown) => {
    assert.ok(err instanceof MeshConfigError);
    assert.equal(err.path, 'spec.htp');
    assert.deepEqual(err.source, { file: '<string>', document: 1 });
    return true;
  });
  assert.equal(mesh.configDump().version, before);
  assert.deepEqual(mesh.configStatus().map((s) => [s.kind, s.status]), [['VirtualService', 'applied']]);
});

test('admission reports each document alone: rejected with its code, neighbours admitted', () => {
  const docs = parseYaml(`${se}---
apiVersion: networking.istio.io/v1beta1
kind: ProxyConfig
metadata: { name: default, namespace: shop }
spec: { concurrency: 2 }
---
${se}---
${vs().replace('{ host: reviews } }', '{ host: reviews }, weight: -1 }')}---
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: { name: g, namespace: shop }
spec: { template: { serviceAccount: g } }
`, 'mesh.yaml');
  const { resources, statuses, errors } = admitResources(docs, 'embedded');
  assert.deepEqual(resources.map((r) => r.kind), ['ServiceEntry', 'ProxyConfig', 'WorkloadGroup']);
  assert.equal(errors.length, 2);
  assert.deepEqual(statuses.map((s) => [s.kind, s.name, s.status, s.warnings.map((w) => w.code).join(), s.source?.document]), [
    ['ServiceEntry', 'reviews', 'partial', 'MESHLET_UNSUPPORTED_VALUE', 0],
    ['ProxyConfig', 'default', 'partial', 'MESHLET_UNSUPPORTED_FIELD', 1],
    ['ServiceEntry', 'reviews', 'rejected', 'MESHLET_DUPLICATE', 2],
    ['VirtualService', 'reviews', 'rejected', 'MESHLET_INVALID', 3],
    ['WorkloadGroup', 'g', 'partial', 'MESHLET_NO_EFFECT', 4],
  ]);
  assert.equal(statuses[3]!.warnings[0]!.path, 'spec.http[0].route[0].weight');
});

test('an AuthorizationPolicy the compiler refuses is rejected at admission, not later in every workload', () => {
  const docs = parseYaml(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: jwt, namespace: shop }
spec: { rules: [{ when: [{ key: request.auth.claims, values: ["x"] }] }] }
`, 'authz.yaml');
  const { statuses } = admitResources(docs, 'control-plane');
  assert.equal(statuses[0]!.status, 'rejected');
  assert.equal(statuses[0]!.warnings[0]!.path, 'spec.rules[0].when[0].key');
});

test('a RequestAuthentication istiod would reject is rejected at admission with the field path', () => {
  const docs = parseYaml(`apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: shop }
spec: { jwtRules: [{ issuer: "https://example.com", jwks: "not json" }] }
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: ok, namespace: shop }
spec: { jwtRules: [{ issuer: "https://example.com", jwksUri: "https://example.com/jwks.json" }] }
`, 'authn.yaml');
  const { statuses } = admitResources(docs, 'control-plane');
  assert.equal(statuses[0]!.status, 'rejected');
  assert.equal(statuses[0]!.warnings[0]!.path, 'spec.jwtRules[0].jwks');
  assert.equal(statuses[1]!.status, 'applied');
});

test('translateIsolated leaves out the one resource that fails to translate and keeps the rest', () => {
  const docs = parseYaml(`${se}---
apiVersion: meshlet.dev/v1alpha1
kind: RateLimit
metadata: { name: too-fast, namespace: shop }
spec: { host: reviews, local: { tokenBucket: { maxTokens: 5, fillInterval: 10ms } } }
`, 'mesh.yaml');
  const { resources } = admitResources(docs, 'control-plane');
  const { envoy, dropped } = translateIsolated(resources, { name: 'p', namespace: 'shop', labels: {} });
  assert.deepEqual(dropped.map((d) => [d.resource.kind, d.resource.metadata.name, (d.error as MeshConfigError).path]), [['RateLimit', 'too-fast', 'spec.local.tokenBucket.fillInterval']]);
  assert.ok(envoy.routes.some((r) => r.name === 'reviews.shop.svc.cluster.local:80'));
});
