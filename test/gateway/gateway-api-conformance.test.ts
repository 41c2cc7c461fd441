/**
 * Core (Gateway-profile) HTTPRoute cases of the Gateway API conformance
 * suite (kubernetes-sigs/gateway-api 4564255ac2c35d582249b3cdf261bdf51c8bca32,
 * conformance/tests/*.yaml copied under test/fixtures/gateway-api/conformance/core/),
 * replayed through a meshlet gateway serving the suite's Gateway
 * `same-namespace` (conformance/base/manifests.yaml) with loopback echo pods
 * for infra-backend-v1/v2/v3: matching, filters, redirects, timeouts,
 * weights, mirrors. The request → expected backend/status pairs are
 * transcribed from the Go file each case names. References and route status:
 * gateway-api-conformance-refs.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EchoPod, EchoReply } from '../helpers/gateway-api.js';
import { call } from './helpers.js';
import { fixture, replay as replayIn, sameNamespaceGateway, startFor, withClass, v, startInfra, type Case, type ReplayOptions } from './conformance-core.js';

describe('Gateway API conformance, core HTTPRoute cases, through the meshlet gateway', () => {
  let pods: EchoPod[];
  let registry: string;
  before(async () => {
    ({ pods, registry } = await startInfra());
  });
  after(async () => {
    await Promise.all(pods.map((p) => p.server.close()));
  });
  const replay = (file: string, cases: readonly Case[], opts: ReplayOptions = {}) => replayIn(registry, file, cases, opts);


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

  it('HTTPRouteHeaderMatching: exact and regex header matches, all of a match required', () => replay('httproute-header-matching.yaml', [
    ...([[{ Version: 'one' }, 1], [{ Version: 'two' }, 2], [{ Version: 'two', Color: 'orange' }, 1], [{ Version: 'two', Color: 'blue' }, 2], [{ Color: 'orange' }, 0], [{ 'Some-Other-Header': 'one' }, 0],
      [{ Color: 'blue' }, 1], [{ Color: 'green' }, 1], [{ Color: 'red' }, 2], [{ Color: 'yellow' }, 2], [{ Color: 'purple' }, 0]] as const)
      .map(([headers, n]) => ({ go: 'httproute-header-matching.go', path: '/', headers, ...(n ? { backend: v(n) } : { status: 404 }) })),
  ]));

  it('HTTPRouteQueryParamMatching', () => replay('httproute-query-param-matching.yaml', [
    ...[['/?animal=whale', 1], ['/?animal=dolphin', 2], ['/?animal=dolphin&color=blue', 3], ['/?ANIMAL=Whale', 3], ['/?animal=whale&otherparam=irrelevant', 1], ['/?animal=dolphin&color=yellow', 2],
      ['/?color=blue', 0], ['/?animal=dog', 0], ['/?animal=whaledolphin', 0], ['/', 0], ['/path1?animal=whale', 1], ['/path3?animal=shark', 1], ['/?animal=shark', 0], ['/path4?animal=kraken', 0], ['/path5?animal=hydra', 1]]
      .map(([path, n]) => ({ go: 'httproute-query-param-matching.go', path: path as string, ...(n ? { backend: v(n as number) } : { status: 404 }) })),
    { go: 'httproute-query-param-matching.go', path: '/?animal=whale', headers: { version: 'one' }, backend: v(2) },
    { go: 'httproute-query-param-matching.go', path: '/path2?animal=whale', headers: { version: 'two' }, backend: v(3) },
    { go: 'httproute-query-param-matching.go', path: '/path4?animal=kraken', headers: { version: 'three' }, backend: v(1) },
    { go: 'httproute-query-param-matching.go', path: '/?animal=hydra', headers: { version: 'four' }, backend: v(3) },
  ]));

  it('HTTPRouteRequestHeaderModifier: set, add, remove (names case-insensitive)', () => replay('httproute-request-header-modifier.yaml', requestHeaderCases(v(1))));

  it('HTTPRouteResponseHeaderModifier: set, add, remove on the backend\'s response', () => replay('httproute-response-header-modifier.yaml', responseHeaderCases(v(1))));

  it('HTTPRouteRewriteHost: URLRewrite hostname, with header filters', () => replay('httproute-rewrite-host.yaml', [
    { go: 'httproute-rewrite-host.go', host: 'rewrite.example', path: '/one', backend: v(1), upstreamPath: '/one', upstreamHost: 'one.example.org' },
    { go: 'httproute-rewrite-host.go', host: 'rewrite.example', path: '/two', backend: v(2), upstreamPath: '/two', upstreamHost: 'example.org' },
    {
      go: 'httproute-rewrite-host.go', host: 'rewrite.example', path: '/rewrite-host-and-modify-headers', backend: v(2), upstreamHost: 'test.example.org',
      headers: { 'X-Header-Remove': 'remove-val', 'X-Header-Add-Append': 'append-val-1' },
      upstreamHeaders: { 'X-Header-Add': 'header-val-1', 'X-Header-Add-Append': 'append-val-1,header-val-2', 'X-Header-Set': 'set-overwrites-values' }, upstreamAbsent: ['X-Header-Remove'],
    },
  ]));

  it('HTTPRouteRewritePath: ReplacePrefixMatch (also "/") and ReplaceFullPath, with header filters', () => replay('httproute-rewrite-path.yaml', rewritePathCases(v(1))));

  it('HTTPRouteRedirectPath, RedirectPort, SchemeRedirect, RedirectHostAndStatus', async () => {
    await replay('httproute-redirect-path.yaml', [
      { go: 'httproute-redirect-path.go', path: '/original-prefix/lemon', redirect: { path: '/replacement-prefix/lemon' } },
      { go: 'httproute-redirect-path.go', path: '/full/path/original', redirect: { path: '/full-path-replacement' } },
      { go: 'httproute-redirect-path.go', path: '/path-and-host', redirect: { host: 'example.org', path: '/replacement-prefix' } },
      { go: 'httproute-redirect-path.go', path: '/path-and-status', status: 301, redirect: { path: '/replacement-prefix' } },
      { go: 'httproute-redirect-path.go', path: '/full-path-and-host', redirect: { host: 'example.org', path: '/replacement-full' } },
      { go: 'httproute-redirect-path.go', path: '/full-path-and-status', status: 301, redirect: { path: '/replacement-full' } },
    ]);
    await replay('httproute-redirect-port.yaml', [
      { go: 'httproute-redirect-port.go', path: '/port', redirect: { port: '8083' } },
      { go: 'httproute-redirect-port.go', path: '/port-and-host', redirect: { host: 'example.org', port: '8083' } },
      { go: 'httproute-redirect-port.go', path: '/port-and-status', status: 301, redirect: { port: '8083' } },
      { go: 'httproute-redirect-port.go', path: '/port-and-host-and-status', redirect: { host: 'example.org', port: '8083' } },
    ]);
    await replay('httproute-redirect-scheme.yaml', [
      { go: 'httproute-redirect-scheme.go', path: '/scheme', redirect: { scheme: 'https' } },
      { go: 'httproute-redirect-scheme.go', path: '/scheme-and-host', redirect: { scheme: 'https', host: 'example.org' } },
      { go: 'httproute-redirect-scheme.go', path: '/scheme-and-status', status: 301, redirect: { scheme: 'https' } },
      { go: 'httproute-redirect-scheme.go', path: '/scheme-and-host-and-status', redirect: { scheme: 'https', host: 'example.org' } },
    ]);
    await replay('httproute-redirect-host-and-status.yaml', [
      { go: 'httproute-redirect-host-and-status.go', path: '/hostname-redirect', redirect: { host: 'example.org' } },
      { go: 'httproute-redirect-host-and-status.go', path: '/host-and-status', status: 301, redirect: { host: 'example.org' } },
    ]);
  });

  it('HTTPRouteRedirectPortAndScheme: the listeners on 80 and 8080 (the HTTPS listener\'s part does not apply: its certificate is a Secret)', async () => {
    const file = 'httproute-redirect-port-and-scheme.yaml';
    const go = 'httproute-redirect-port-and-scheme.go';
    // Without the route for the HTTPS listener; both HTTP Gateways declared (same-namespace comes with its deployment), so both HTTP routes attach.
    const manifest = withClass(fixture(file)).split(/^---$/m).filter((d) => !d.includes('name: http-route-for-listener-on-port-443')).join('---');
    const to = (path: string, scheme: string, port = '') => ({ go, path, redirect: { scheme, host: 'example.org', port } });
    await replay(file, [
      to('/scheme-nil-and-port-nil', 'http'), to('/scheme-nil-and-port-80', 'http'), to('/scheme-nil-and-port-8080', 'http', '8080'),
      to('/scheme-https-and-port-nil', 'https'), to('/scheme-https-and-port-443', 'https'), to('/scheme-https-and-port-8443', 'https', '8443'),
    ], { manifest });
    await replay(file, [to('/scheme-nil-and-port-nil', 'http', '8080'), to('/scheme-nil-and-port-80', 'http'), to('/scheme-https-and-port-nil', 'https')], {
      gateway: 'same-namespace-with-http-listener-on-8080', manifest: `${sameNamespaceGateway()}---\n${manifest}`, serverPort: 8080,
    });
  });

  for (const [code, path, method] of [[303, '/see-other', 'POST'], [307, '/temporary', 'GET'], [308, '/permanent', 'GET']] as const) {
    it(`HTTPRoute${code}Redirect`, () => replay(`httproute-${code}-redirect.yaml`, [{ go: `httproute-${code}-redirect.go`, method, path, status: code, redirect: { path } }]));
  }

  it('HTTPRouteListenerHostnameMatching: routes bound by sectionName follow their listener\'s hostname', () => replay('httproute-listener-hostname-matching.yaml', [
    ...[['bar.com', 1], ['foo.bar.com', 2], ['baz.bar.com', 3], ['boo.bar.com', 3], ['multiple.prefixes.bar.com', 3], ['multiple.prefixes.foo.com', 3], ['foo.com', 0], ['no.matching.host', 0]]
      .map(([host, n]) => ({ go: 'httproute-listener-hostname-matching.go', host: host as string, path: '/', ...(n ? { backend: v(n as number) } : { status: 404 }) })),
  ], { gateway: 'httproute-listener-hostname-matching' }));

  it('HTTPRouteHostnameIntersection: a route serves only the hostnames it shares with the listener', () => replay('httproute-hostname-intersection.yaml', [
    ...[['very.specific.com', '/s1', 1], ['very.specific.com:1234', '/s1', 1], ['non.matching.com', '/s1', 0], ['foo.nonmatchingwildcard.io', '/s1', 0], ['foo.wildcard.io', '/s1', 0], ['very.specific.com', '/non-matching-prefix', 0],
      ['foo.wildcard.io', '/s2', 2], ['bar.wildcard.io', '/s2', 2], ['foo.bar.wildcard.io', '/s2', 2], ['non.matching.com', '/s2', 0], ['wildcard.io', '/s2', 0], ['very.specific.com', '/s2', 0], ['foo.wildcard.io', '/non-matching-prefix', 0],
      ['very.specific.com', '/s3', 3], ['non.matching.com', '/s3', 0], ['foo.specific.com', '/s3', 0], ['foo.wildcard.io', '/s3', 0],
      ['foo.anotherwildcard.io', '/s4', 1], ['bar.anotherwildcard.io', '/s4', 1], ['foo.bar.anotherwildcard.io', '/s4', 1], ['anotherwildcard.io', '/s4', 0], ['foo.wildcard.io', '/s4', 0], ['very.specific.com', '/s4', 0], ['foo.anotherwildcard.io', '/non-matching-prefix', 0],
      ['specific.but.wrong.com', '/s5', 0], ['wildcard.io', '/s5', 0]]
      .map(([host, path, n]) => ({ go: 'httproute-hostname-intersection.go', host: host as string, path: path as string, ...(n ? { backend: v(n as number) } : { status: 404 }) })),
  ], { gateway: 'httproute-hostname-intersection', conditions: { 'no-intersecting-hosts': [['Accepted', 'False', 'NoMatchingListenerHostname']] } }));

  it('HTTPRouteSimpleSameNamespace', () => replay('httproute-simple-same-namespace.yaml', [{ go: 'httproute-simple-same-namespace.go', path: '/', backend: v(1) }]));

  it('HTTPRouteNamedRule: a named rule routes as an unnamed one', () => replay('httproute-named-rule.yaml', [
    { go: 'httproute-named-rule.go', path: '/named', backend: v(1) },
    { go: 'httproute-named-rule.go', path: '/unnamed', backend: v(2) },
  ]));

  it('HTTPRouteRequestHeaderModifierBackendWeights: each weighted backend\'s filter runs only for its own requests (100)', async () => {
    const gw = await startFor(registry, 'httproute-request-header-modifier-backend-weights.yaml');
    try {
      for (let i = 0; i < 100; i++) {
        const res = await call(gw, 'example.com', '/');
        assert.equal(res.status, 200, res.body);
        const reply = JSON.parse(res.body) as EchoReply;
        assert.ok(reply.headers.backend && !reply.headers.backend.includes(',') && reply.pod.startsWith(reply.headers.backend), `${reply.pod}: Backend ${reply.headers.backend}`);
      }
    } finally {
      await gw.close();
    }
  });

  it('HTTPRouteWeight: 70/30/0 within the suite\'s ±5 points over its 500 requests, 10 at a time (seeded)', async () => {
    const gw = await startFor(registry, 'httproute-weight.yaml');
    try {
      const counts: Record<string, number> = {};
      for (let i = 0; i < 500; i += 10) {
        const batch = await Promise.all(Array.from({ length: 10 }, async () => {
          const res = await call(gw, 'example.com', '/');
          assert.equal(res.status, 200, res.body);
          return (JSON.parse(res.body) as EchoReply).pod.replace(/-0$/, '');
        }));
        for (const pod of batch) counts[pod] = (counts[pod] ?? 0) + 1;
      }
      assert.deepEqual(Object.keys(counts).sort(), [v(1), v(2)], JSON.stringify(counts));
      assert.ok(Math.abs(counts[v(1)]! / 500 - 0.7) <= 0.05 && Math.abs(counts[v(2)]! / 500 - 0.3) <= 0.05, JSON.stringify(counts));
    } finally {
      await gw.close();
    }
  });

  it('HTTPRouteRequestTimeout and HTTPRouteBackendRequestTimeout: 504 past 500ms, "0s" disables', () => Promise.all([
    replay('httproute-timeout-request.yaml', [
      { go: 'httproute-timeout-request.go', path: '/request-timeout', backend: v(1) },
      { go: 'httproute-timeout-request.go', path: '/request-timeout?delay=1s', status: 504 },
      { go: 'httproute-timeout-request.go', path: '/disable-request-timeout?delay=1s', backend: v(1) },
    ]),
    replay('httproute-timeout-backend-request.yaml', [
      { go: 'httproute-timeout-backend-request.go', path: '/backend-timeout', backend: v(1) },
      { go: 'httproute-timeout-backend-request.go', path: '/backend-timeout?delay=1s', status: 504 },
      { go: 'httproute-timeout-backend-request.go', path: '/disable-backend-timeout?delay=1s', backend: v(1) },
    ]),
  ]).then(() => undefined));

  it('HTTPRouteRetry: retry.codes and attempts, against the echo pod\'s retry simulation', () => replay('httproute-retry.yaml', ([
    ['/retry/code-500-attempts-3', 500, 2, 200], ['/retry/code-500-attempts-3', 500, 4, 500], ['/retry/code-500-attempts-3', 503, 2, 503],
    ...[500, 502, 503, 504].flatMap((code) => [['/retry/code-all-attempts-2', code, 1, 200], ['/retry/code-all-attempts-2', code, 3, code]]),
  ] as Array<[string, number, number, number]>).map(([path, code, succeedAfter, want], i) => ({
    go: 'httproute-retry.go', path: `${path}?responseCode=${code}&succeedAfter=${succeedAfter}&uuid=retry-${i}`, ...(want === 200 ? { backend: v(3) } : { status: want }),
  }))));

  /** Waits (bounded, generous) until each mirror pod has seen the path. */
  async function mirrored(path: string, mirrors: readonly string[]): Promise<void> {
    for (const m of mirrors) {
      const pod = pods.find((p) => p.name.startsWith(m))!;
      for (let i = 0; i < 500 && !pod.seen.includes(path); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(pod.seen.includes(path), `${m} saw the mirrored ${path}`);
    }
  }

  for (const [name, file, paths, mirrors] of [
    ['HTTPRouteRequestMirror', 'httproute-request-mirror', ['/mirror', '/mirror-and-modify-headers'], [v(2)]],
    ['HTTPRouteRequestMultipleMirrors', 'httproute-request-multiple-mirrors', ['/multi-mirror', '/multi-mirror-and-modify-request-headers'], [v(2), v(3)]],
  ] as const) {
    it(`${name}: the backend answers; ${mirrors.join(' and ')} see a copy`, async () => {
      // The suite adds a unique request-id query parameter to find the copy in the mirror's log.
      const id = (p: string) => `${p}?request-id=${name}-${p.length}`;
      await replay(`${file}.yaml`, [
        { go: `${file}.go`, path: id(paths[0]), backend: v(1), upstreamPath: id(paths[0]) },
        {
          go: `${file}.go`, path: id(paths[1]), backend: v(1), upstreamPath: id(paths[1]), headers: { 'X-Header-Remove': 'remove-val', 'X-Header-Add-Append': 'append-val-1' },
          upstreamHeaders: { 'X-Header-Add': 'header-val-1', 'X-Header-Add-Append': 'append-val-1,header-val-2', 'X-Header-Set': 'set-overwrites-values' }, upstreamAbsent: ['X-Header-Remove'],
        },
      ]);
      for (const p of paths) await mirrored(id(p), mirrors);
    });
  }

  // httproute-request-percentage-mirror.go (provisional, extended): 500 requests a path, 10 at a time; the mirror's
  // count must lie within 3 standard deviations of Binomial(500, p), the suite's own tolerance.
  it('HTTPRouteRequestPercentageMirror: percent 20, fraction 25/50, percent 35 with header changes, within 3σ over 500 requests each', async () => {
    const file = 'httproute-request-percentage-mirror';
    const gw = await startFor(registry, `${file}.yaml`);
    const mirror = pods.find((p) => p.name.startsWith(v(2)))!;
    try {
      for (const [path, percent] of [['/percent-mirror', 20], ['/percent-mirror-fraction', 50], ['/percent-mirror-and-modify-headers', 35]] as const) {
        const total = 500;
        const marker = `${path}?run=${file}`;
        let next = 0;
        const worker = async () => {
          while (next < total) {
            next++;
            const res = await call(gw, 'example.com', marker, { headers: { 'X-Header-Remove': 'remove-val', 'X-Header-Add-Append': 'append-val-1' } });
            assert.equal(res.status, 200, `${path}: ${res.body}`);
            assert.ok((JSON.parse(res.body) as EchoReply).pod.startsWith(v(1)), `${path} is served by ${v(1)}`);
          }
        };
        await Promise.all(Array.from({ length: 10 }, worker));
        // Mirrors are fire-and-forget: wait (bounded) until the mirror's count stops moving.
        const count = () => mirror.seen.filter((u) => u === marker).length;
        for (let stable = 0, last = -1, i = 0; stable < 10 && i < 500; i++) {
          const now = count();
          stable = now === last ? stable + 1 : 0;
          last = now;
          await new Promise((r) => setTimeout(r, 30));
        }
        const p = percent / 100;
        const margin = 3 * Math.sqrt(total * p * (1 - p));
        const got = count();
        assert.ok(Math.abs(got - total * p) <= margin, `${path}: ${got} of ${total} mirrored, expected ${total * p} ± ${margin.toFixed(1)}`);
      }
    } finally {
      await gw.close();
    }
  });

});

/** httproute-request-header-modifier.go (the core file's pairs, as the mesh one's). */
function requestHeaderCases(backend: string): Case[] {
  const go = 'httproute-request-header-modifier.go';
  return [
    { go, path: '/set', headers: { 'Some-Other-Header': 'val' }, backend, upstreamHeaders: { 'Some-Other-Header': 'val', 'X-Header-Set': 'set-overwrites-values' } },
    { go, path: '/set', headers: { 'Some-Other-Header': 'val', 'X-Header-Set': 'some-other-value' }, backend, upstreamHeaders: { 'X-Header-Set': 'set-overwrites-values' } },
    { go, path: '/add', headers: { 'Some-Other-Header': 'val' }, backend, upstreamHeaders: { 'X-Header-Add': 'add-appends-values' } },
    { go, path: '/add', headers: { 'Some-Other-Header': 'val', 'X-Header-Add': 'some-other-value' }, backend, upstreamHeaders: { 'X-Header-Add': 'some-other-value,add-appends-values' } },
    { go, path: '/remove', headers: { 'X-Header-Remove': 'val' }, backend, upstreamAbsent: ['X-Header-Remove'] },
    {
      go, path: '/multiple', headers: { 'X-Header-Set-2': 'set-val-2', 'X-Header-Add-2': 'add-val-2', 'X-Header-Remove-2': 'remove-val-2', 'Another-Header': 'another-header-val' }, backend,
      upstreamHeaders: { 'X-Header-Set-1': 'header-set-1', 'X-Header-Set-2': 'header-set-2', 'X-Header-Add-1': 'header-add-1', 'X-Header-Add-2': 'add-val-2,header-add-2', 'X-Header-Add-3': 'header-add-3', 'Another-Header': 'another-header-val' },
      upstreamAbsent: ['X-Header-Remove-1', 'X-Header-Remove-2'],
    },
    {
      go, path: '/case-insensitivity', headers: { 'x-header-set': 'original-val-set', 'x-header-add': 'original-val-add', 'x-header-remove': 'original-val-remove', 'Another-Header': 'another-header-val' }, backend,
      upstreamHeaders: { 'X-Header-Set': 'header-set', 'X-Header-Add': 'original-val-add,header-add', 'Another-Header': 'another-header-val' }, upstreamAbsent: ['X-Header-Remove'],
    },
  ];
}

/** httproute-response-header-modifier.go: BackendSetResponseHeaders → the response the client sees. */
function responseHeaderCases(backend: string): Case[] {
  const go = 'httproute-response-header-modifier.go';
  return [
    { go, path: '/set', backend, backendSet: { 'Some-Other-Header': 'val' }, responseHeaders: { 'Some-Other-Header': 'val', 'X-Header-Set': 'set-overwrites-values' } },
    { go, path: '/set', backend, backendSet: { 'Some-Other-Header': 'val', 'X-Header-Set': 'some-other-value' }, responseHeaders: { 'Some-Other-Header': 'val', 'X-Header-Set': 'set-overwrites-values' } },
    { go, path: '/add', backend, backendSet: { 'Some-Other-Header': 'val' }, responseHeaders: { 'Some-Other-Header': 'val', 'X-Header-Add': 'add-appends-values' } },
    { go, path: '/add', backend, backendSet: { 'Some-Other-Header': 'val', 'X-Header-Add': 'some-other-value' }, responseHeaders: { 'Some-Other-Header': 'val', 'X-Header-Add': 'some-other-value,add-appends-values' } },
    { go, path: '/remove', backend, backendSet: { 'X-Header-Remove': 'val' }, responseAbsent: ['X-Header-Remove'] },
    {
      go, path: '/multiple', backend, backendSet: { 'X-Header-Set-2': 'set-val-2', 'X-Header-Add-2': 'add-val-2', 'X-Header-Remove-2': 'remove-val-2', 'Another-Header': 'another-header-val', 'X-Header-Remove-1': 'val' },
      responseHeaders: { 'X-Header-Set-1': 'header-set-1', 'X-Header-Set-2': 'header-set-2', 'X-Header-Add-1': 'header-add-1', 'X-Header-Add-2': 'add-val-2,header-add-2', 'X-Header-Add-3': 'header-add-3', 'Another-Header': 'another-header-val' },
      responseAbsent: ['X-Header-Remove-1', 'X-Header-Remove-2'],
    },
    {
      go, path: '/case-insensitivity', backend, backendSet: { 'x-header-set': 'original-val-set', 'x-header-add': 'original-val-add', 'x-header-remove': 'original-val-remove', 'Another-Header': 'another-header-val' },
      responseHeaders: { 'X-Header-Set': 'header-set', 'X-Header-Add': 'original-val-add,header-add', 'X-Lowercase-Add': 'lowercase-add', 'X-Mixedcase-Add-1': 'mixedcase-add-1', 'X-Mixedcase-Add-2': 'mixedcase-add-2', 'X-Uppercase-Add': 'uppercase-add', 'Another-Header': 'another-header-val' },
      responseAbsent: ['X-Header-Remove'],
    },
    {
      go, path: '/response-and-request-header-modifiers', backend, upstreamPath: '/response-and-request-header-modifiers',
      headers: { 'X-Header-Remove': 'remove-val', 'X-Header-Add-Append': 'append-val-1', 'X-Header-Echo': 'echo' },
      backendSet: { 'X-Header-Set-2': 'set-val-2', 'X-Header-Add-2': 'add-val-2', 'X-Header-Remove-2': 'remove-val-2', 'Another-Header': 'another-header-val', 'X-Header-Remove-1': 'remove-val-1', 'X-Header-Echo': 'echo' },
      upstreamHeaders: { 'X-Header-Add': 'header-val-1', 'X-Header-Set': 'set-overwrites-values', 'X-Header-Add-Append': 'append-val-1,header-val-2', 'X-Header-Echo': 'echo' }, upstreamAbsent: ['X-Header-Remove'],
      responseHeaders: { 'X-Header-Set-1': 'header-set-1', 'X-Header-Set-2': 'header-set-2', 'X-Header-Add-1': 'header-add-1', 'X-Header-Add-2': 'add-val-2,header-add-2', 'Another-Header': 'another-header-val', 'X-Header-Echo': 'echo' },
      responseAbsent: ['X-Header-Remove-1', 'X-Header-Remove-2'],
    },
  ];
}

/** httproute-rewrite-path.go. */
function rewritePathCases(backend: string): Case[] {
  const go = 'httproute-rewrite-path.go';
  const modify = {
    headers: { 'X-Header-Remove': 'remove-val', 'X-Header-Add-Append': 'append-val-1', 'X-Header-Set': 'set-val' },
    upstreamHeaders: { 'X-Header-Add': 'header-val-1', 'X-Header-Add-Append': 'append-val-1,header-val-2', 'X-Header-Set': 'set-overwrites-values' }, upstreamAbsent: ['X-Header-Remove'],
  };
  return [
    { go, path: '/prefix/one/two', backend, upstreamPath: '/one/two' },
    { go, path: '/strip-prefix/three', backend, upstreamPath: '/three' },
    { go, path: '/strip-prefix', backend, upstreamPath: '/' },
    { go, path: '/full/one/two', backend, upstreamPath: '/one' },
    { go, path: '/full/rewrite-path-and-modify-headers/test', backend, upstreamPath: '/test', ...modify },
    { go, path: '/prefix/rewrite-path-and-modify-headers/one', backend, upstreamPath: '/prefix/one', ...modify },
  ];
}
