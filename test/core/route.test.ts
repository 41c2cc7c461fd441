/**
 * Compiled routes: weighted cluster picks, rewrites and the route's compiled
 * fields, against Envoy's RouteAction (route_components.proto and
 * source/common/router/config_impl.cc).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Route, WeightedCluster } from '../../src/config/envoy.js';
import { seededRandom } from '../../src/core/random.js';
import { compileRoute, MAX_TOTAL_WEIGHT, pickClusterIndex, rewritePath, type CompiledRoute } from '../../src/core/route.js';
import { selectRoute, type CompiledVirtualHost } from '../../src/core/snapshot.js';
import { view } from '../helpers/envoy-resources.js';

const weighted = (...weights: number[]): Route => ({
  match: { prefix: '/' },
  route: { weighted_clusters: { clusters: weights.map((w, i): WeightedCluster => ({ name: `c${i}`, weight: { value: w } })) } },
});

/** Share of `draws` seeded picks that land on each cluster. */
function split(route: CompiledRoute, draws: number, seed: number): number[] {
  const random = seededRandom(seed);
  const counts = route.clusters.map(() => 0);
  for (let i = 0; i < draws; i++) counts[pickClusterIndex(route, random)]!++;
  return counts.map((c) => c / draws);
}

const vhost = (routes: Route[]): CompiledVirtualHost => ({ name: 'h', routes: routes.map(compileRoute), routeConfig: 'rc', localLimiter: undefined, globalLimit: undefined, includeAttemptCount: false });

describe('route order', () => {
  it('the first route whose match accepts the request wins, even when a later one is more specific (Envoy: first match)', () => {
    const h = vhost([
      { name: 'api', match: { prefix: '/api' }, route: { cluster: 'a' } },
      { name: 'api-users', match: { path: '/api/users' }, route: { cluster: 'b' } },
      { name: 'rest', match: { prefix: '/' }, route: { cluster: 'c' } },
    ]);
    assert.equal(selectRoute(h, view('/api/users'))!.name, 'api');
    assert.equal(selectRoute(h, view('/other'))!.name, 'rest');
  });

  it('no matching route gives undefined (Envoy answers 404 NR)', () => {
    assert.equal(selectRoute(vhost([{ match: { path: '/a' }, route: { cluster: 'a' } }]), view('/b')), undefined);
  });
});

describe('compileRoute', () => {
  it('a single cluster, the default name and no timeout', () => {
    const r = compileRoute({ match: { prefix: '/' }, route: { cluster: 'outbound|80||a' } }, 4);
    assert.equal(r.name, 'route-4');
    assert.equal(r.kind, 'route');
    assert.deepEqual(r.clusters, ['outbound|80||a']);
    assert.equal(r.timeoutMs, 0);
  });

  it('timeout converts from the proto Duration', () => {
    assert.equal(compileRoute({ match: {}, route: { cluster: 'a', timeout: { seconds: 1, nanos: 500_000_000 } } }, 0).timeoutMs, 1500);
  });

  it('header mutations: names lower-cased, OVERWRITE_IF_EXISTS_OR_ADD overwrites, the default appends', () => {
    const r = compileRoute({
      match: {}, route: { cluster: 'a' },
      request_headers_to_add: [{ header: { key: 'X-A', value: '1' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }, { header: { key: 'x-b', value: '2' } }],
      response_headers_to_remove: ['X-Internal'],
    }, 0);
    assert.deepEqual(r.requestHeaders.add, [['x-a', '1', true], ['x-b', '2', false]]);
    assert.deepEqual(r.responseHeaders.remove, ['x-internal']);
  });

  it('direct_response carries its status and inline body', () => {
    const r = compileRoute({ match: {}, direct_response: { status: 418, body: { inline_string: 'teapot' } } }, 0);
    assert.equal(r.kind, 'direct');
    assert.equal(r.directStatus, 418);
    assert.equal(r.directBody, 'teapot');
  });

  it('refuses a route action with no cluster, weights totalling 0, or a total past uint32 (Envoy config validation)', () => {
    assert.throws(() => compileRoute({ match: {}, route: {} }, 2), /^Error: routes\[2\]\.route: no cluster/);
    assert.throws(() => compileRoute(weighted(0, 0), 1), /^Error: routes\[1\]\.route\.weighted_clusters: weights total 0/);
    assert.throws(() => compileRoute(weighted(MAX_TOTAL_WEIGHT, 1), 0), /more than 4294967295/);
  });
});

describe('pickClusterIndex (Envoy pickWeightedCluster: random % total over cumulative intervals)', () => {
  const draws = 20_000;
  // Binomial sd at p=0.5 over 20,000 draws is 0.0035; 0.02 is more than 5 sd.
  const tolerance = 0.02;

  it('a 20/80 split lands within 2% of its weights over 20,000 seeded draws', () => {
    const [a, b] = split(compileRoute(weighted(20, 80), 0), draws, 42);
    assert.ok(Math.abs(a! - 0.2) < tolerance, `c0 ${a}`);
    assert.ok(Math.abs(b! - 0.8) < tolerance, `c1 ${b}`);
  });

  it('weights are proportions of any total (1:2:7 is 10/20/70%)', () => {
    const shares = split(compileRoute(weighted(1, 2, 7), 0), draws, 7);
    [0.1, 0.2, 0.7].forEach((want, i) => assert.ok(Math.abs(shares[i]! - want) < tolerance, `c${i} ${shares[i]}`));
  });

  it('a zero-weight cluster is never picked', () => {
    const shares = split(compileRoute(weighted(1, 0, 1), 0), draws, 3);
    assert.equal(shares[1], 0);
    assert.ok(Math.abs(shares[0]! - 0.5) < tolerance);
  });

  it('the same seed picks the same sequence; a single cluster takes no draw', () => {
    assert.deepEqual(split(compileRoute(weighted(1, 1), 0), 1000, 9), split(compileRoute(weighted(1, 1), 0), 1000, 9));
    let calls = 0;
    assert.equal(pickClusterIndex(compileRoute({ match: {}, route: { cluster: 'a' } }, 0), () => (calls++, 0.9)), 0);
    assert.equal(calls, 0);
  });

  it('the interval edges: r just below a boundary picks the lower cluster', () => {
    const r = compileRoute(weighted(1, 3), 0);
    assert.equal(pickClusterIndex(r, () => 0), 0);
    assert.equal(pickClusterIndex(r, () => 0.2499), 0);
    assert.equal(pickClusterIndex(r, () => 0.25), 1);
    assert.equal(pickClusterIndex(r, () => 0.9999), 1);
  });
});

describe('rewritePath', () => {
  const rw = (match: Route['match'], action: Partial<NonNullable<Route['route']>>, path: string) =>
    rewritePath(compileRoute({ match, route: { cluster: 'a', ...action } }, 0), path);

  it('prefix_rewrite swaps the matched prefix', () => {
    assert.equal(rw({ prefix: '/api/' }, { prefix_rewrite: '/v2/' }, '/api/users'), '/v2/users');
    assert.equal(rw({ prefix: '/API', case_sensitive: { value: false } }, { prefix_rewrite: '/v2' }, '/api/x'), '/v2/x');
  });

  it('trailing slashes matter: /prefix rewritten to / turns /prefix/etc into //etc (prefix_rewrite doc)', () => {
    assert.equal(rw({ prefix: '/prefix' }, { prefix_rewrite: '/' }, '/prefix/etc'), '//etc');
    assert.equal(rw({ prefix: '/prefix/' }, { prefix_rewrite: '/' }, '/prefix/etc'), '/etc');
  });

  it('with a path or safe_regex match the matched part is the whole path, so prefix_rewrite replaces it', () => {
    assert.equal(rw({ path: '/old' }, { prefix_rewrite: '/new' }, '/old'), '/new');
    // config_impl.cc RegexRouteEntryImpl::currentUrlPathAfterRewrite passes the whole path as matched.
    assert.equal(rw({ safe_regex: { regex: '/old/[0-9]+' } }, { prefix_rewrite: '/new' }, '/old/42'), '/new');
  });

  it('an empty prefix_rewrite is no rewrite (Envoy checks rewrite.empty())', () => {
    assert.equal(rw({ prefix: '/api' }, { prefix_rewrite: '' }, '/api/users'), '/api/users');
  });

  it('regex_rewrite substitutes every match with RE2 groups (RegexMatchAndSubstitute doc examples)', () => {
    assert.equal(rw({ prefix: '/' }, { regex_rewrite: { pattern: { regex: '^/service/([^/]+)(/.*)$' }, substitution: '\\2/instance/\\1' } }, '/service/foo/v1/api'), '/v1/api/instance/foo');
    assert.equal(rw({ prefix: '/' }, { regex_rewrite: { pattern: { regex: 'one' }, substitution: 'two' } }, '/xxx/one/yyy/one/zzz'), '/xxx/two/yyy/two/zzz');
  });

  it('no rewrite leaves the path', () => {
    assert.equal(rw({ prefix: '/' }, {}, '/a/b'), '/a/b');
  });
});
