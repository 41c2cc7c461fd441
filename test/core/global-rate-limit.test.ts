/**
 * Global rate limit descriptors as Envoy's rate_limits actions produce them
 * (source/common/router/router_ratelimit.cc: each action fills one entry; an
 * action that returns false drops the whole descriptor), and the ratelimit
 * filter config (envoy.extensions.filters.http.ratelimit.v3.RateLimit).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Any } from '../../src/config/envoy.js';
import { compileGlobalLimit, compileRouteGlobalLimit, descriptorsFor, type GlobalLimitPolicy } from '../../src/core/global-rate-limit.js';

const filter = (extra: Record<string, unknown> = {}): Any => ({
  '@type': 'type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit',
  domain: 'shop',
  rate_limit_service: { grpc_service: { envoy_grpc: { cluster_name: 'outbound|8081||ratelimit' } } },
  ...extra,
});

const policy = (...rateLimits: Array<Array<Record<string, unknown>>>): GlobalLimitPolicy =>
  compileGlobalLimit(filter(), rateLimits.map((actions) => ({ actions })))!;

const describeFor = (p: GlobalLimitPolicy, headers: Record<string, string>, remote?: string) =>
  descriptorsFor(p, (n) => headers[n], () => remote).map((d) => d.entries.map((e) => [e.key, e.value]));

describe('compileGlobalLimit', () => {
  it('the filter config: domain, service cluster, failure_mode_deny (default false) and timeout (default 20 ms)', () => {
    const p = policy([{ generic_key: { descriptor_value: 'x' } }]);
    assert.equal(p.domain, 'shop');
    assert.equal(p.cluster, 'outbound|8081||ratelimit');
    assert.equal(p.failureModeDeny, false);
    assert.equal(p.timeoutMs, 20, 'RateLimit.timeout: "defaults to 20ms"');
    const q = compileGlobalLimit(filter({ failure_mode_deny: true, timeout: { seconds: 1 } }), [{ actions: [] }])!;
    assert.equal(q.failureModeDeny, true);
    assert.equal(q.timeoutMs, 1000);
  });

  it('no filter, no rate_limits, no domain or no service cluster: no global limit', () => {
    const rl = [{ actions: [{ generic_key: { descriptor_value: 'x' } }] }];
    assert.equal(compileGlobalLimit(undefined, rl), undefined);
    assert.equal(compileGlobalLimit(filter(), undefined), undefined);
    assert.equal(compileGlobalLimit(filter(), []), undefined);
    assert.equal(compileGlobalLimit(filter({ domain: '' }), rl), undefined);
    assert.equal(compileGlobalLimit(filter({ rate_limit_service: {} }), rl), undefined);
  });

  it('a bad header regex in header_value_match names its path', () => {
    assert.throws(
      () => policy([{ header_value_match: { descriptor_value: 'v', headers: [{ name: 'x', string_match: { safe_regex: { regex: '(' } } }] } }]),
      /^Error: rate_limits\[0\]\.actions\[0\]\.header_value_match\.headers\[0\]\.string_match\.safe_regex\.regex: /,
    );
  });
});

describe('descriptorsFor', () => {
  it('generic_key: a static entry, key "generic_key" unless descriptor_key is set', () => {
    assert.deepEqual(describeFor(policy([{ generic_key: { descriptor_value: 'all' } }], [{ generic_key: { descriptor_key: 'k', descriptor_value: 'v' } }]), {}), [
      [['generic_key', 'all']],
      [['k', 'v']],
    ]);
  });

  it('request_headers: the header value under descriptor_key; pseudo-headers too', () => {
    const p = policy([{ request_headers: { header_name: 'X-User', descriptor_key: 'user' } }, { request_headers: { header_name: ':path', descriptor_key: 'path' } }]);
    assert.deepEqual(describeFor(p, { 'x-user': 'cat', ':path': '/add' }), [[['user', 'cat'], ['path', '/add']]]);
  });

  it('request_headers with the header absent drops the whole descriptor', () => {
    const p = policy([{ generic_key: { descriptor_value: 'g' } }, { request_headers: { header_name: 'x-user', descriptor_key: 'user' } }], [{ generic_key: { descriptor_value: 'other' } }]);
    assert.deepEqual(describeFor(p, {}), [[['generic_key', 'other']]]);
  });

  it('skip_if_absent drops only that entry and keeps the descriptor (RequestHeadersAction returns skip_if_absent_)', () => {
    const p = policy([{ generic_key: { descriptor_value: 'g' } }, { request_headers: { header_name: 'x-user', descriptor_key: 'user', skip_if_absent: true } }]);
    assert.deepEqual(describeFor(p, {}), [[['generic_key', 'g']]]);
    assert.deepEqual(describeFor(p, { 'x-user': 'cat' }), [[['generic_key', 'g'], ['user', 'cat']]]);
  });

  it('remote_address: the caller address under "remote_address"; unknown caller drops the descriptor', () => {
    const p = policy([{ remote_address: {} }]);
    assert.deepEqual(describeFor(p, {}, '10.1.2.3'), [[['remote_address', '10.1.2.3']]]);
    assert.deepEqual(describeFor(p, {}, undefined), []);
  });

  it('header_value_match: the entry when the headers match (expect_match defaults true), key "header_match"', () => {
    const hv = (extra: Record<string, unknown>) => policy([{ header_value_match: { descriptor_value: 'post', headers: [{ name: ':method', string_match: { exact: 'POST' } }], ...extra } }]);
    assert.deepEqual(describeFor(hv({}), { ':method': 'POST' }), [[['header_match', 'post']]]);
    assert.deepEqual(describeFor(hv({}), { ':method': 'GET' }), []);
    assert.deepEqual(describeFor(hv({ descriptor_key: 'm' }), { ':method': 'POST' }), [[['m', 'post']]]);
  });

  it('header_value_match with expect_match false: the entry when the headers do not match (bool or BoolValue)', () => {
    for (const expect_match of [false, { value: false }]) {
      const p = policy([{ header_value_match: { descriptor_value: 'not-post', expect_match, headers: [{ name: ':method', string_match: { exact: 'POST' } }] } }]);
      assert.deepEqual(describeFor(p, { ':method': 'GET' }), [[['header_match', 'not-post']]]);
      assert.deepEqual(describeFor(p, { ':method': 'POST' }), []);
    }
  });

  it('each rate_limits entry is its own descriptor, in order', () => {
    const p = policy([{ generic_key: { descriptor_value: 'a' } }], [{ remote_address: {} }], [{ generic_key: { descriptor_value: 'c' } }]);
    assert.deepEqual(describeFor(p, {}, '10.0.0.1'), [[['generic_key', 'a']], [['remote_address', '10.0.0.1']], [['generic_key', 'c']]]);
  });
});

describe('actions Envoy has that meshlet added, and the ones it refuses', () => {
  it('destination_cluster: the route\'s picked cluster under "destination_cluster" (DestinationClusterAction)', () => {
    const p = policy([{ destination_cluster: {} }]);
    const entries = descriptorsFor(p, () => undefined, () => undefined, () => 'outbound|9080||reviews.default.svc.cluster.local').map((d) => d.entries.map((e) => [e.key, e.value]));
    assert.deepEqual(entries, [[['destination_cluster', 'outbound|9080||reviews.default.svc.cluster.local']]]);
  });

  it('an unknown action, two actions in one entry, or an unread entry field is refused with its path, never skipped', () => {
    assert.throws(() => policy([{ generic_key: { descriptor_value: 'a' } }, { metadata: { descriptor_key: 'k' } }]), /^Error: rate_limits\[0\]\.actions\[1\]: unknown action "metadata"/);
    assert.throws(() => policy([{ generic_key: { descriptor_value: 'a' }, remote_address: {} }]), /^Error: rate_limits\[0\]\.actions\[0\]: one action per entry/);
    assert.throws(() => compileGlobalLimit(filter(), [{ actions: [], limit: { dynamic_metadata: {} } }]), /^Error: rate_limits\[0\]\.limit: not supported/);
    assert.throws(() => policy([{ request_headers: { header_name: ':path' } }]), /request_headers: header_name and descriptor_key are required/);
  });

  it('stage: only rate_limits entries of the filter\'s stage apply (both default 0)', () => {
    const rl = [{ stage: 1, actions: [{ generic_key: { descriptor_value: 'one' } }] }, { actions: [{ generic_key: { descriptor_value: 'zero' } }] }];
    const at = (p: GlobalLimitPolicy) => descriptorsFor(p, () => undefined, () => undefined).map((d) => d.entries[0]!.value);
    assert.deepEqual(at(compileGlobalLimit(filter(), rl)!), ['zero']);
    assert.deepEqual(at(compileGlobalLimit(filter({ stage: 1 }), rl)!), ['one']);
  });

  it('status_on_error: the failure_mode_deny status, default 500; a number or the StatusCode name', () => {
    const rl = [{ actions: [{ generic_key: { descriptor_value: 'x' } }] }];
    assert.equal(compileGlobalLimit(filter(), rl)!.statusOnError, 500);
    assert.equal(compileGlobalLimit(filter({ status_on_error: { code: 503 } }), rl)!.statusOnError, 503);
    assert.equal(compileGlobalLimit(filter({ status_on_error: { code: 'ServiceUnavailable' } }), rl)!.statusOnError, 503);
  });
});

describe('compileRouteGlobalLimit (RouteAction.rate_limits)', () => {
  const vh = policy([{ generic_key: { descriptor_value: 'vhost' } }]);
  const own = [{ actions: [{ generic_key: { descriptor_value: 'route' } }] }];
  const values = (p: GlobalLimitPolicy | undefined) => descriptorsFor(p!, () => undefined, () => undefined).map((d) => d.entries[0]!.value);

  it('the route\'s entries replace the virtual host\'s (VhRateLimitOptions OVERRIDE)', () => {
    assert.deepEqual(values(compileRouteGlobalLimit(filter(), own, false, vh, 'r')), ['route']);
  });

  it('include_vh_rate_limits: the route\'s entries, then the virtual host\'s', () => {
    assert.deepEqual(values(compileRouteGlobalLimit(filter(), own, true, vh, 'r')), ['route', 'vhost']);
  });

  it('a route with rate_limits where the virtual host has none still gets the filter config', () => {
    const p = compileRouteGlobalLimit(filter(), own, false, undefined, 'r')!;
    assert.equal(p.domain, 'shop');
    assert.deepEqual(values(p), ['route']);
  });

  it('no route rate_limits, or no filter: undefined (the virtual host decides)', () => {
    assert.equal(compileRouteGlobalLimit(filter(), [], false, vh, 'r'), undefined);
    assert.equal(compileRouteGlobalLimit(undefined, own, false, undefined, 'r'), undefined);
  });
});
