/**
 * Core (Gateway-profile) HTTPRoute cases of the Gateway API conformance
 * suite (kubernetes-sigs/gateway-api 4564255ac2c35d582249b3cdf261bdf51c8bca32,
 * conformance/tests/*.yaml copied under test/fixtures/gateway-api/conformance/core/),
 * replayed through a meshlet gateway serving the suite's Gateway
 * `same-namespace` (conformance/base/manifests.yaml) with loopback echo pods
 * for infra-backend-v1/v2/v3. The request → expected backend/status pairs are
 * transcribed from the Go file each case names.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import type { Gateway } from '../../src/gateway/index.js';
import { registryYaml, startEchoPod, type EchoPod, type EchoReply } from '../helpers/gateway-api.js';
import { call, startGateway } from './helpers.js';

const NS = 'gateway-conformance-infra';
const fixture = (f: string) => readFileSync(new URL(`../fixtures/gateway-api/conformance/core/${f}`, import.meta.url), 'utf8');

/** The suite's Gateway `same-namespace` from base/manifests.yaml, of class istio. */
function sameNamespaceGateway(): string {
  const docs = parseAllDocuments(fixture('base-manifests.yaml')).map((d) => d.toJS() as { kind?: string; metadata?: { name?: string } }).filter(Boolean);
  const gw = docs.find((d) => d.kind === 'Gateway' && d.metadata?.name === 'same-namespace')!;
  return stringify(gw).replace('{GATEWAY_CLASS_NAME}', 'istio');
}

interface Case { go: string; path: string; host?: string; method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD'; headers?: Record<string, string>; backend?: string; status?: number }

describe('Gateway API conformance, core HTTPRoute cases, through the meshlet gateway', () => {
  let pods: EchoPod[];
  let registry: string;
  before(async () => {
    pods = [];
    for (const v of ['v1', 'v2', 'v3']) pods.push(await startEchoPod(`infra-backend-${v}-0`, NS, { app: `infra-backend-${v}` }));
    registry = registryYaml(['v1', 'v2', 'v3'].map((v) => ({ name: `infra-backend-${v}`, namespace: NS, ports: [{ name: 'http', port: 8080 }], selector: { app: `infra-backend-${v}` } })), pods);
  });
  after(async () => {
    await Promise.all(pods.map((p) => p.server.close()));
  });

  async function replay(file: string, cases: readonly Case[]): Promise<void> {
    const gw: Gateway = await startGateway(`${registry}---\n${sameNamespaceGateway()}---\n${fixture(file)}`, {
      workload: { name: 'same-namespace-istio', namespace: NS, labels: { 'gateway.networking.k8s.io/gateway-name': 'same-namespace' } },
    });
    try {
      const routes = gw.mesh.configStatus().filter((s) => s.kind === 'HTTPRoute');
      assert.ok(routes.length > 0 && routes.every((s) => s.conditions?.some((c) => c.type === 'Accepted' && c.status === 'True')), JSON.stringify(routes));
      for (const c of cases) {
        const res = await call(gw, c.host ?? 'example.com', c.path, { method: (c.method ?? 'GET') as 'GET', ...(c.headers && { headers: c.headers }) });
        const what = `${c.go}: ${c.method ?? 'GET'} ${c.host ?? ''}${c.path}`;
        assert.equal(res.status, c.status ?? 200, `${what}: ${res.body}`);
        if (c.backend) assert.ok((JSON.parse(res.body) as EchoReply).pod.startsWith(c.backend), `${what}: ${res.body.slice(0, 60)}`);
      }
    } finally {
      await gw.close();
    }
  }

  const v = (n: number) => `infra-backend-v${n}`;

  it('HTTPRouteExactPathMatching', () => replay('httproute-exact-path-matching.yaml', [
    { go: 'httproute-exact-path-matching.go', path: '/one', backend: v(1) },
    { go: 'httproute-exact-path-matching.go', path: '/two', backend: v(2) },
    ...['/', '/one/example', '/two/', '/Two'].map((path) => ({ go: 'httproute-exact-path-matching.go', path, status: 404 })),
  ]));

  it('HTTPRouteMethodMatching', () => replay('httproute-method-matching.yaml', [
    { go: 'httproute-method-matching.go', method: 'POST', path: '/', backend: v(1) },
    { go: 'httproute-method-matching.go', method: 'GET', path: '/', backend: v(2) },
    { go: 'httproute-method-matching.go', method: 'HEAD', path: '/', status: 404 },
    { go: 'httproute-method-matching.go', method: 'GET', path: '/path1', backend: v(1) },
    { go: 'httproute-method-matching.go', method: 'PUT', path: '/', headers: { version: 'one' }, backend: v(2) },
    { go: 'httproute-method-matching.go', method: 'POST', path: '/path2', headers: { version: 'two' }, backend: v(3) },
    { go: 'httproute-method-matching.go', method: 'PATCH', path: '/path3', backend: v(1) },
    { go: 'httproute-method-matching.go', method: 'DELETE', path: '/path4', headers: { version: 'three' }, backend: v(1) },
    { go: 'httproute-method-matching.go', method: 'PUT', path: '/', status: 404 },
    { go: 'httproute-method-matching.go', method: 'DELETE', path: '/path4', status: 404 },
    { go: 'httproute-method-matching.go', method: 'PATCH', path: '/path5', backend: v(1) },
    { go: 'httproute-method-matching.go', method: 'PATCH', path: '/', headers: { version: 'four' }, backend: v(2) },
  ]));

  it('HTTPRoutePathMatchOrder', () => replay('httproute-path-match-order.yaml', [
    ['/match/exact/one', 3], ['/match/exact', 2], ['/match', 1], ['/match/prefix/one/any', 2], ['/match/prefix/any', 1], ['/match/any', 3],
  ].map(([path, n]) => ({ go: 'httproute-path-match-order.go', path: path as string, backend: v(n as number) }))));

  it('HTTPRouteMatching', () => replay('httproute-matching.yaml', [
    ...[['/', 1], ['/example', 1], ['/v2', 2], ['/v2/example', 2], ['/v2/', 2], ['/v2example', 1], ['/foo/v2/example', 1]]
      .map(([path, n]) => ({ go: 'httproute-matching.go', path: path as string, backend: v(n as number) })),
    { go: 'httproute-matching.go', path: '/', headers: { Version: 'one' }, backend: v(1) },
    { go: 'httproute-matching.go', path: '/', headers: { Version: 'two' }, backend: v(2) },
  ]));

  it('HTTPRouteMatchingAcrossRoutes: matches of two routes on one host merge in precedence order', () => replay('httproute-matching-across-routes.yaml', [
    { go: 'httproute-matching-across-routes.go', host: 'example.com', path: '/', backend: v(1) },
    { go: 'httproute-matching-across-routes.go', host: 'example.com', path: '/example', backend: v(1) },
    { go: 'httproute-matching-across-routes.go', host: 'example.net', path: '/example', backend: v(1) },
    { go: 'httproute-matching-across-routes.go', host: 'example.com', path: '/example', headers: { Version: 'one' }, backend: v(1) },
    { go: 'httproute-matching-across-routes.go', host: 'example.com', path: '/v2', backend: v(2) },
    { go: 'httproute-matching-across-routes.go', host: 'example.net', path: '/v2', backend: v(1) },
    { go: 'httproute-matching-across-routes.go', host: 'example.com', path: '/v2/example', backend: v(2) },
    { go: 'httproute-matching-across-routes.go', host: 'example.com', path: '/', headers: { Version: 'two' }, backend: v(2) },
  ]));

  it('HTTPRouteInvalidNonExistentBackendRef: 500', async () => {
    const gw = await startGateway(`${registry}---\n${sameNamespaceGateway()}---\n${fixture('httproute-invalid-nonexistent-backendref.yaml')}`, {
      workload: { name: 'same-namespace-istio', namespace: NS, labels: { 'gateway.networking.k8s.io/gateway-name': 'same-namespace' } },
    });
    try {
      assert.equal((await call(gw, 'example.com', '/')).status, 500);
      const route = gw.mesh.configStatus().find((s) => s.kind === 'HTTPRoute')!;
      assert.deepEqual(route.conditions?.filter((c) => c.type === 'ResolvedRefs').map((c) => [c.status, c.reason]), [['False', 'BackendNotFound']]);
    } finally {
      await gw.close();
    }
  });
});
