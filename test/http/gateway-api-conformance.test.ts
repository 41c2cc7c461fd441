/**
 * The Gateway API conformance suite's mesh profile, replayed against loopback
 * echo pods: each manifest of kubernetes-sigs/gateway-api
 * conformance/tests/mesh/*.yaml (commit 4564255ac2c35d582249b3cdf261bdf51c8bca32,
 * copied under test/fixtures/gateway-api/conformance/) is loaded as it is, and
 * the request → expected backend / request / response pairs are transcribed
 * from the matching Go file (named in each case). The suite's Services
 * (conformance/mesh/manifests.yaml: echo, echo-v1, echo-v2, ports 80 and
 * 8080) are ServiceEntries selecting the echo pods' WorkloadEntries by label.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createMesh, seededRandom, type Mesh } from '../../src/index.js';
import { registryYaml, startEchoPod, type EchoPod, type EchoReply, type ServiceSpec } from '../helpers/gateway-api.js';

const NS = 'gateway-conformance-mesh';
const CONSUMER_NS = 'gateway-conformance-mesh-consumer';
const manifest = (f: string) => readFileSync(new URL(`../fixtures/gateway-api/conformance/${f}`, import.meta.url), 'utf8');

interface Case {
  /** the Go file the case is transcribed from */
  readonly go: string;
  readonly host?: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  /** expected: the pod (name prefix) that answered */
  readonly backend?: string;
  readonly status?: number;
  /** expected: the path the backend saw */
  readonly upstreamPath?: string;
  readonly upstreamHeaders?: Record<string, string>;
  readonly upstreamAbsent?: readonly string[];
  readonly responseHeaders?: Record<string, string>;
  readonly responseAbsent?: readonly string[];
  /** expected redirect: the Location's parts (omitted parts are not checked) */
  readonly redirect?: { scheme?: string; host?: string; port?: string; path?: string };
}

const ports = [{ name: 'http', port: 80 }, { name: 'http-alt', port: 8080 }];
const services: ServiceSpec[] = [
  { name: 'echo', namespace: NS, ports, selector: { app: 'echo' } },
  { name: 'echo-v1', namespace: NS, ports, selector: { app: 'echo', version: 'v1' } },
  { name: 'echo-v2', namespace: NS, ports, selector: { app: 'echo', version: 'v2' } },
];

describe('Gateway API conformance, mesh profile, replayed against loopback echo pods', () => {
  let pods: EchoPod[];
  let registry: string;
  before(async () => {
    pods = [await startEchoPod('echo-v1-0', NS, { app: 'echo', version: 'v1' }), await startEchoPod('echo-v2-0', NS, { app: 'echo', version: 'v2' })];
    registry = registryYaml(services, pods);
  });
  after(async () => {
    await Promise.all(pods.map((p) => p.server.close()));
  });

  async function withMesh(file: string, fn: (mesh: Mesh) => Promise<void>, namespace = NS): Promise<void> {
    const mesh = await createMesh({ workload: { name: 'echo-v1-client', namespace, labels: { app: 'client' } }, config: `${registry}---\n${manifest(file)}`, random: seededRandom(18) });
    try {
      const status = mesh.configStatus().filter((s) => s.kind === 'HTTPRoute');
      assert.ok(status.length > 0 && status.every((s) => s.status === 'applied'), JSON.stringify(status));
      await fn(mesh);
    } finally {
      await mesh.close();
    }
  }

  async function check(mesh: Mesh, c: Case): Promise<void> {
    const url = `http://${c.host ?? 'echo'}${c.path}`;
    const res = await mesh.request(url, { headers: c.headers ?? {} });
    const text = await res.body.text();
    const what = `${c.go}: ${url}`;
    assert.equal(res.statusCode, c.status ?? (c.redirect ? 302 : 200), `${what}: status (${text})`);
    if (c.redirect) {
      const location = new URL(String(res.headers.location));
      if (c.redirect.scheme) assert.equal(location.protocol, `${c.redirect.scheme}:`, `${what}: scheme`);
      if (c.redirect.host) assert.equal(location.hostname, c.redirect.host, `${what}: host`);
      if (c.redirect.port) assert.equal(location.port, c.redirect.port, `${what}: port`);
      if (c.redirect.path) assert.equal(location.pathname, c.redirect.path, `${what}: path`);
    }
    for (const [k, v] of Object.entries(c.responseHeaders ?? {})) assert.equal(res.headers[k.toLowerCase()], v, `${what}: response header ${k}`);
    for (const k of c.responseAbsent ?? []) assert.equal(res.headers[k.toLowerCase()], undefined, `${what}: response header ${k} absent`);
    if (!c.backend) return;
    const reply = JSON.parse(text) as EchoReply;
    assert.ok(reply.pod.startsWith(c.backend), `${what}: backend ${reply.pod}, expected ${c.backend}`);
    if (c.upstreamPath) assert.equal(reply.path, c.upstreamPath, `${what}: upstream path`);
    for (const [k, v] of Object.entries(c.upstreamHeaders ?? {})) assert.equal(reply.headers[k.toLowerCase()], v, `${what}: upstream header ${k}`);
    for (const k of c.upstreamAbsent ?? []) assert.equal(reply.headers[k.toLowerCase()], undefined, `${what}: upstream header ${k} absent`);
  }

  const replay = (file: string, cases: readonly Case[]) => withMesh(file, async (mesh) => {
    for (const c of cases) await check(mesh, c);
  });

  it('MeshHTTPRouteMatching: path segment prefixes and header matches, most specific first', () => replay('httproute-matching.yaml', [
    ...[['/', 'echo-v1'], ['/example', 'echo-v1'], ['/v2', 'echo-v2'], ['/v2/example', 'echo-v2'], ['/v2/', 'echo-v2'],
      ['/v2example', 'echo-v1'], ['/foo/v2/example', 'echo-v1']].map(([path, backend]) => ({ go: 'httproute-matching.go', path: path!, backend: backend! })),
    { go: 'httproute-matching.go', path: '/', headers: { Version: 'one' }, backend: 'echo-v1' },
    { go: 'httproute-matching.go', path: '/', headers: { Version: 'two' }, backend: 'echo-v2' },
  ]));

  it('MeshHTTPRouteQueryParamMatching: exact and regex query matches, 404 when none matches', () => replay('httproute-query-param-matching.yaml', [
    { go: 'httproute-query-param-matching.go', path: '/?animal=whale', backend: 'echo-v1' },
    { go: 'httproute-query-param-matching.go', path: '/?animal=dolphin', backend: 'echo-v2' },
    { go: 'httproute-query-param-matching.go', path: '/?animal=whale&otherparam=irrelevant', backend: 'echo-v1' },
    { go: 'httproute-query-param-matching.go', path: '/?animal=dolphin&color=yellow', backend: 'echo-v2' },
    ...['/?color=blue', '/?animal=dog', '/?animal=whaledolphin', '/', '/?animal=shark', '/path4?animal=kraken'].map((path) => ({ go: 'httproute-query-param-matching.go', path, status: 404 })),
    { go: 'httproute-query-param-matching.go', path: '/path1?animal=whale', backend: 'echo-v1' },
    { go: 'httproute-query-param-matching.go', path: '/?animal=whale', headers: { version: 'one' }, backend: 'echo-v2' },
    { go: 'httproute-query-param-matching.go', path: '/path3?animal=shark', backend: 'echo-v1' },
    { go: 'httproute-query-param-matching.go', path: '/path4?animal=kraken', headers: { version: 'three' }, backend: 'echo-v1' },
    { go: 'httproute-query-param-matching.go', path: '/path5?animal=hydra', backend: 'echo-v1' },
  ]));

  it('MeshHTTPRouteRequestHeaderModifier: set, add, remove (names case-insensitive)', () => replay('httproute-request-header-modifier.yaml', headerModifierCases('httproute-request-header-modifier.go')));

  it('MeshHTTPRouteRequestHeaderModifier on backendRefs: the same, as backend filters', () => replay('httproute-request-header-modifier-backend.yaml', headerModifierCases('httproute-request-header-modifier.go (backend manifest)')));

  it('MeshHTTPRouteRewritePath: ReplacePrefixMatch (also "/") and ReplaceFullPath, with header filters', () => replay('httproute-rewrite-path.yaml', [
    { go: 'httproute-rewrite-path.go', path: '/prefix/one/two', backend: 'echo-v1', upstreamPath: '/one/two' },
    { go: 'httproute-rewrite-path.go', path: '/strip-prefix/three', backend: 'echo-v1', upstreamPath: '/three' },
    { go: 'httproute-rewrite-path.go', path: '/strip-prefix', backend: 'echo-v1', upstreamPath: '/' },
    { go: 'httproute-rewrite-path.go', path: '/full/one/two', backend: 'echo-v1', upstreamPath: '/one' },
    {
      go: 'httproute-rewrite-path.go', path: '/full/rewrite-path-and-modify-headers/test', backend: 'echo-v1', upstreamPath: '/test',
      headers: { 'X-Header-Remove': 'remove-val', 'X-Header-Add-Append': 'append-val-1', 'X-Header-Set': 'set-val' },
      upstreamHeaders: { 'X-Header-Add': 'header-val-1', 'X-Header-Add-Append': 'append-val-1,header-val-2', 'X-Header-Set': 'set-overwrites-values' }, upstreamAbsent: ['X-Header-Remove'],
    },
    {
      go: 'httproute-rewrite-path.go', path: '/prefix/rewrite-path-and-modify-headers/one', backend: 'echo-v1', upstreamPath: '/prefix/one',
      headers: { 'X-Header-Remove': 'remove-val', 'X-Header-Add-Append': 'append-val-1', 'X-Header-Set': 'set-val' },
      upstreamHeaders: { 'X-Header-Add': 'header-val-1', 'X-Header-Add-Append': 'append-val-1,header-val-2', 'X-Header-Set': 'set-overwrites-values' }, upstreamAbsent: ['X-Header-Remove'],
    },
  ]));

  it('MeshHTTPRouteRedirectPath: prefix and full-path redirects, with host and status', () => replay('httproute-redirect-path.yaml', [
    { go: 'httproute-redirect-path.go', path: '/original-prefix/lemon', redirect: { path: '/replacement-prefix/lemon' } },
    { go: 'httproute-redirect-path.go', path: '/full/path/original', redirect: { path: '/full-path-replacement' } },
    { go: 'httproute-redirect-path.go', path: '/path-and-host', redirect: { host: 'example.org', path: '/replacement-prefix' } },
    { go: 'httproute-redirect-path.go', path: '/path-and-status', status: 301, redirect: { path: '/replacement-prefix' } },
    { go: 'httproute-redirect-path.go', path: '/full-path-and-host', redirect: { host: 'example.org', path: '/replacement-full' } },
    { go: 'httproute-redirect-path.go', path: '/full-path-and-status', status: 301, redirect: { path: '/replacement-full' } },
  ]));

  it('MeshHTTPRouteRedirectPort: port, with host and status', () => replay('httproute-redirect-port.yaml', [
    { go: 'httproute-redirect-port.go', path: '/port', redirect: { port: '8083' } },
    { go: 'httproute-redirect-port.go', path: '/port-and-host', redirect: { host: 'example.org', port: '8083' } },
    { go: 'httproute-redirect-port.go', path: '/port-and-status', status: 301, redirect: { port: '8083' } },
    { go: 'httproute-redirect-port.go', path: '/port-and-host-and-status', redirect: { host: 'example.org', port: '8083' } },
  ]));

  it('MeshHTTPRouteSchemeRedirect: scheme, with host and status', () => replay('httproute-redirect-scheme.yaml', [
    { go: 'httproute-redirect-scheme.go', path: '/scheme', redirect: { scheme: 'https' } },
    { go: 'httproute-redirect-scheme.go', path: '/scheme-and-host', redirect: { scheme: 'https', host: 'example.org' } },
    { go: 'httproute-redirect-scheme.go', path: '/scheme-and-status', status: 301, redirect: { scheme: 'https' } },
    { go: 'httproute-redirect-scheme.go', path: '/scheme-and-host-and-status', redirect: { scheme: 'https', host: 'example.org' } },
  ]));

  it('MeshHTTPRouteRedirectHostAndStatus', () => replay('httproute-redirect-host-and-status.yaml', redirectHostCases()));

  for (const [code, path] of [[303, '/redirect'], [307, '/temporary'], [308, '/permanent']] as const) {
    it(`MeshHTTPRoute${code}Redirect`, () => replay(`httproute-${code}-redirect.yaml`, [
      { go: `httproute-${code}-redirect.go`, path, status: code, redirect: { path } },
    ]));
  }

  it('MeshHTTPRouteSimpleSameNamespace', () => replay('httproute-simple-same-namespace.yaml', [
    { go: 'httproute-simple-same-namespace.go', path: '/', backend: 'echo-v1' },
  ]));

  it('MeshHTTPRouteNamedRule: a named rule routes as an unnamed one, and names the Envoy route', () => withMesh('httproute-named-rule.yaml', async (mesh) => {
    await check(mesh, { go: 'httproute-named-rule.go', path: '/named', backend: 'echo-v1', upstreamPath: '/named' });
    // The Go file expects path "/named" for the request to /unnamed (a copy-paste slip upstream); the backend is what it checks.
    await check(mesh, { go: 'httproute-named-rule.go', path: '/unnamed', backend: 'echo-v2' });
    const names = mesh.configDump().routes.find((r) => r.name === `echo.${NS}.svc.cluster.local:80`)!.virtual_hosts[0]!.routes.map((r) => r.name);
    assert.ok(names.includes('named-rule') && names.includes(`${NS}.mesh-http-named-rules.1`), names.join(','));
  }));

  it('MeshHTTPRouteWeight: 70/30 within ±3 points over 2,000 requests (seeded)', () => withMesh('httproute-weight.yaml', async (mesh) => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 2000; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, async () => {
        const res = await mesh.request('http://echo/');
        assert.equal(res.statusCode, 200);
        return (JSON.parse(await res.body.text()) as EchoReply).pod;
      }));
      for (const pod of batch) counts[pod] = (counts[pod] ?? 0) + 1;
    }
    assert.equal((counts['echo-v1-0'] ?? 0) + (counts['echo-v2-0'] ?? 0), 2000);
    const share = (counts['echo-v1-0'] ?? 0) / 2000;
    assert.ok(Math.abs(share - 0.7) <= 0.03, `echo-v1 share ${share}`);
  }));

  it('MeshBasic: with no route a Service answers from all its pods', () => withMesh('httproute-simple-same-namespace.yaml', async (mesh) => {
    await check(mesh, { go: 'mesh-basic.go', host: 'echo-v2', path: '/', backend: 'echo-v2' });
  }));

  it('MeshFrontendHostname: the route follows the Service called, not the Host header', () => withMesh('mesh-frontend.yaml', async (mesh) => {
    await check(mesh, { go: 'mesh-frontend-hostname.go', host: 'echo-v2', headers: { Host: 'echo-v1' }, path: '/', backend: 'echo-v2', responseHeaders: { 'X-Header-Set': 'set' } });
    await check(mesh, { go: 'mesh-frontend-hostname.go', host: 'echo-v1', headers: { Host: 'echo-v2' }, path: '/', backend: 'echo-v1', responseAbsent: ['X-Header-Set'] });
  }));

  it('MeshSplit: Exact matches to two versioned Services', () => replay('mesh-split.yaml', [
    { go: 'mesh-split.go', path: '/v1', backend: 'echo-v1' },
    { go: 'mesh-split.go', path: '/v2', backend: 'echo-v2' },
  ]));

  it('MeshPorts: a parentRef port limits the route to that port; none means all ports', () => replay('mesh-ports.yaml', [
    { go: 'mesh-ports.go', host: 'echo-v1', path: '/', backend: 'echo-v1', responseHeaders: { 'X-Header-Set': 'v1' } },
    { go: 'mesh-ports.go', host: 'echo-v1:8080', path: '/', backend: 'echo-v1', responseAbsent: ['X-Header-Set'] },
    { go: 'mesh-ports.go', host: 'echo-v2', path: '/', backend: 'echo-v2', responseHeaders: { 'X-Header-Set': 'v2' } },
    { go: 'mesh-ports.go', host: 'echo-v2:8080', path: '/', backend: 'echo-v2', responseHeaders: { 'X-Header-Set': 'v2' } },
  ]));

  it('MeshFrontend: the route applies to the Service, not to a pod called by address', () => withMesh('mesh-frontend.yaml', async (mesh) => {
    await check(mesh, { go: 'mesh-frontend.go', host: 'echo-v2', path: '/', backend: 'echo-v2', responseHeaders: { 'X-Header-Set': 'set' } });
    await check(mesh, { go: 'mesh-frontend.go', host: `127.0.0.1:${pods[1]!.server.port}`, path: '/', backend: 'echo-v2', responseAbsent: ['X-Header-Set'] });
  }));

  it('MeshConsumerRoute: a route in the caller\'s namespace for another namespace\'s Service applies to that caller only', async () => {
    const consumer = { go: 'mesh-consumer-route.go', host: `echo-v1.${NS}`, path: '/', backend: 'echo-v1' };
    await withMesh('mesh-consumer-route.yaml', (mesh) => check(mesh, { ...consumer, responseHeaders: { 'X-Header-Set': 'set' } }), CONSUMER_NS);
    await withMesh('mesh-consumer-route.yaml', (mesh) => check(mesh, { ...consumer, responseAbsent: ['X-Header-Set'] }), NS);
  });
});

function headerModifierCases(go: string): Case[] {
  return [
    { go, path: '/set', headers: { 'Some-Other-Header': 'val' }, backend: 'echo-v1', upstreamHeaders: { 'Some-Other-Header': 'val', 'X-Header-Set': 'set-overwrites-values' } },
    { go, path: '/set', headers: { 'Some-Other-Header': 'val', 'X-Header-Set': 'some-other-value' }, backend: 'echo-v1', upstreamHeaders: { 'X-Header-Set': 'set-overwrites-values' } },
    { go, path: '/add', headers: { 'Some-Other-Header': 'val' }, backend: 'echo-v1', upstreamHeaders: { 'X-Header-Add': 'add-appends-values' } },
    { go, path: '/add', headers: { 'Some-Other-Header': 'val', 'X-Header-Add': 'some-other-value' }, backend: 'echo-v1', upstreamHeaders: { 'X-Header-Add': 'some-other-value,add-appends-values' } },
    { go, path: '/remove', headers: { 'X-Header-Remove': 'val' }, backend: 'echo-v1', upstreamAbsent: ['X-Header-Remove'] },
    {
      go, path: '/multiple', headers: { 'X-Header-Set-2': 'set-val-2', 'X-Header-Add-2': 'add-val-2', 'X-Header-Remove-2': 'remove-val-2', 'Another-Header': 'another-header-val' }, backend: 'echo-v1',
      upstreamHeaders: { 'X-Header-Set-1': 'header-set-1', 'X-Header-Set-2': 'header-set-2', 'X-Header-Add-1': 'header-add-1', 'X-Header-Add-2': 'add-val-2,header-add-2', 'X-Header-Add-3': 'header-add-3', 'Another-Header': 'another-header-val' },
      upstreamAbsent: ['X-Header-Remove-1', 'X-Header-Remove-2'],
    },
    {
      go, path: '/case-insensitivity', headers: { 'x-header-set': 'original-val-set', 'x-header-add': 'original-val-add', 'x-header-remove': 'original-val-remove', 'Another-Header': 'another-header-val' }, backend: 'echo-v1',
      upstreamHeaders: { 'X-Header-Set': 'header-set', 'X-Header-Add': 'original-val-add,header-add', 'Another-Header': 'another-header-val' }, upstreamAbsent: ['X-Header-Remove'],
    },
  ];
}

function redirectHostCases(): Case[] {
  const go = 'httproute-redirect-host-and-status.go';
  return [
    { go, path: '/hostname-redirect', redirect: { host: 'example.org' } },
    { go, path: '/host-and-status', status: 301, redirect: { host: 'example.org' } },
  ];
}
