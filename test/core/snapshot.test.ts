/**
 * Snapshot compile: virtual host domain search as Envoy's (route_components.proto
 * VirtualHost.domains, config_impl.cc RouteMatcher::findVirtualHost), live state
 * carried across pushes, and bad resources refused with their field path.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Any, VirtualHost } from '../../src/config/envoy.js';
import { retireCluster } from '../../src/core/cluster.js';
import { compileSnapshot, emptySnapshot, type Snapshot } from '../../src/core/snapshot.js';
import { MeshConfigError } from '../../src/errors.js';
import { assignment, edsCluster, endpoint, prefixRoute, resources } from '../helpers/envoy-resources.js';

const vh = (name: string, domains: string[]): VirtualHost => ({ name, domains, routes: [prefixRoute('/', name)] });
const pick = (s: Snapshot, host: string, port = 80) => s.virtualHost(host, port)?.name;

describe('virtual host domain search', () => {
  const s = compileSnapshot(resources([
    vh('catch-all', ['*']),
    vh('prefix', ['foo.*']),
    vh('suffix', ['*.foo.com']),
    vh('longer-suffix', ['*-bar.foo.com']),
    vh('exact', ['www.foo.com']),
    vh('with-port', ['api.foo.com:8080']),
  ]), 'v1');

  it('exact, then suffix wildcards, then prefix wildcards, then * (Envoy domain search order)', () => {
    assert.equal(pick(s, 'www.foo.com'), 'exact');
    assert.equal(pick(s, 'a.foo.com'), 'suffix');
    assert.equal(pick(s, 'foo.org'), 'prefix');
    assert.equal(pick(s, 'bar.org'), 'catch-all');
  });

  it('the longest wildcard wins: baz-bar.foo.com takes *-bar.foo.com over *.foo.com (VirtualHost.domains doc)', () => {
    assert.equal(pick(s, 'baz-bar.foo.com'), 'longer-suffix');
  });

  it('a wildcard does not match the empty string: *-bar.foo.com misses -bar.foo.com, *.foo.com misses .foo.com', () => {
    assert.equal(pick(s, '-bar.foo.com'), 'suffix');
    assert.equal(pick(s, '.foo.com'), 'catch-all');
    assert.equal(pick(s, 'foo.'), 'catch-all', 'foo.* needs something after the dot');
  });

  it('a suffix wildcard beats a prefix wildcard that also matches', () => {
    assert.equal(pick(s, 'foo.foo.com'), 'suffix');
  });

  it('host:port domains match that port only, before the bare host', () => {
    assert.equal(pick(s, 'api.foo.com', 8080), 'with-port');
    assert.equal(pick(s, 'api.foo.com', 9090), 'suffix');
  });

  it('domains are case-insensitive', () => {
    const t = compileSnapshot(resources([vh('x', ['Calculate.Default'])]), 'v1');
    assert.equal(pick(t, 'calculate.default'), 'x');
  });

  it('no domain and no * gives undefined', () => {
    assert.equal(pick(compileSnapshot(resources([vh('x', ['a'])]), 'v1'), 'b'), undefined);
    assert.equal(pick(emptySnapshot, 'a'), undefined);
  });
});

it('a route configuration behind a bound listener is a named table, not an outbound route', () => {
  const r = resources([vh('gw', ['*'])]);
  r.listeners.push({ name: 'gw-8080', address: { socket_address: { address: '127.0.0.1', port_value: 8080 } }, api_listener: { api_listener: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', rds: { route_config_name: 'rc' }, http_filters: [] } } });
  const s = compileSnapshot(r, 'v1');
  assert.equal(pick(s, 'anything'), undefined);
  assert.equal(s.routeTable('rc')!.virtualHost('anything', 80)?.name, 'gw');
});

describe('live state across pushes', () => {
  const od = { consecutive_5xx: { value: 1 }, max_ejection_percent: { value: 100 } };
  const push = (version: string, previous: Snapshot | undefined, hosts: string[], extra: object = {}) =>
    compileSnapshot(resources([vh('h', ['h'])], [edsCluster('c', { outlier_detection: od, ...extra })], [assignment('c', hosts.map((a) => endpoint(a, 80)))]), version, { previous });

  it('hosts keep their identity and counters, the outlier detector keeps its ejections', () => {
    const v1 = push('v1', undefined, ['10.0.0.1', '10.0.0.2']);
    const c1 = v1.clusters.get('c')!;
    c1.hosts[0]!.active = 3;
    c1.outlier!.putHttpStatus('10.0.0.1:80', 503);
    assert.equal(c1.outlier!.isEjected('10.0.0.1:80'), true);

    const v2 = push('v2', v1, ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    const c2 = v2.clusters.get('c')!;
    assert.equal(c2.hosts[0], c1.hosts[0], 'same Host object');
    assert.equal(c2.hosts[0]!.active, 3);
    assert.equal(c2.outlier, c1.outlier, 'same detector');
    assert.deepEqual(c2.healthyHosts().map((h) => h.id), ['10.0.0.2:80', '10.0.0.3:80'], 'still ejected after the push');
    retireCluster(c1, c2);
    retireCluster(c2, undefined);
  });

  it('a changed outlier policy starts a new detector', () => {
    const v1 = push('v1', undefined, ['10.0.0.1']);
    const v2 = push('v2', v1, ['10.0.0.1'], { outlier_detection: { ...od, consecutive_5xx: { value: 2 } } });
    assert.notEqual(v2.clusters.get('c')!.outlier, v1.clusters.get('c')!.outlier);
    retireCluster(v1.clusters.get('c')!, v2.clusters.get('c'));
    retireCluster(v2.clusters.get('c')!, undefined);
  });

  it("a virtual host's local rate limiter survives an unchanged policy", () => {
    const limit: Any = { '@type': 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit', stat_prefix: 'rl', token_bucket: { max_tokens: 2, tokens_per_fill: { value: 1 }, fill_interval: { seconds: 60 } }, filter_enabled: { default_value: { numerator: 100 } }, filter_enforced: { default_value: { numerator: 100 } } };
    const r = () => resources([{ ...vh('h', ['h']), typed_per_filter_config: { 'envoy.filters.http.local_ratelimit': limit } }]);
    const v1 = compileSnapshot(r(), 'v1');
    const v2 = compileSnapshot(r(), 'v2', { previous: v1 });
    assert.ok(v1.virtualHost('h', 80)!.localLimiter);
    assert.equal(v2.virtualHost('h', 80)!.localLimiter, v1.virtualHost('h', 80)!.localLimiter);
  });

  it('EDS endpoints are found under eds_cluster_config.service_name', () => {
    const s = compileSnapshot(resources([], [edsCluster('outbound|80||a', { eds_cluster_config: { service_name: 'a-eds' } })], [assignment('a-eds', [endpoint('10.0.0.9', 80)])]), 'v1');
    assert.deepEqual(s.clusters.get('outbound|80||a')!.hosts.map((h) => h.id), ['10.0.0.9:80']);
  });
});

describe('bad resources are refused with a path', () => {
  function refuses(fn: () => unknown, kind: string, name: string, path: string, reason: RegExp): void {
    assert.throws(fn, (err: unknown) => {
      assert.ok(err instanceof MeshConfigError, String(err));
      assert.equal(err.kind, kind);
      assert.equal(err.resource, name);
      assert.equal(err.path, path);
      assert.match(err.reason, reason);
      return true;
    });
  }

  it('a bad route regex names the route configuration, virtual host and route', () => {
    const bad = { name: 'h', domains: ['h'], routes: [prefixRoute('/', 'c'), { match: { safe_regex: { regex: '(' } }, route: { cluster: 'c' } }] };
    refuses(() => compileSnapshot(resources([vh('ok', ['ok']), bad]), 'v1'), 'RouteConfiguration', 'rc', 'virtual_hosts[1].routes[1].match.safe_regex.regex', /missing/);
  });

  it('weights that total 0', () => {
    const bad = { name: 'h', domains: ['h'], routes: [{ match: {}, route: { weighted_clusters: { clusters: [{ name: 'a', weight: { value: 0 } }] } } }] };
    refuses(() => compileSnapshot(resources([bad]), 'v1'), 'RouteConfiguration', 'rc', 'virtual_hosts[0].routes[0].route.weighted_clusters', /weights total 0/);
  });

  it('a duplicate cluster name', () => {
    refuses(() => compileSnapshot(resources([], [edsCluster('c'), edsCluster('c')]), 'v1'), 'Cluster', 'c', 'name', /duplicate/);
  });

  it('a bad outlier_detection', () => {
    refuses(() => compileSnapshot(resources([], [edsCluster('c', { outlier_detection: { interval: { seconds: 0 } } })]), 'v1'), 'envoy.config.cluster.v3.Cluster', 'c', 'outlier_detection.interval', /greater than 0/);
  });
});
