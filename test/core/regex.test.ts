/**
 * Regexes are RE2, as in Envoy (safe_regex) and Istio (pkg/config/validation/validation.go
 * validateStringRegexp compiles with Go's RE2-syntax regexp; istio/istio
 * 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RE2JS } from 're2js';
import type { EnvoyResources, Route } from '../../src/config/envoy.js';
import { parseYaml } from '../../src/config/load.js';
import { parseResources } from '../../src/config/resources.js';
import { compileFullMatch, compileRegexRewrite, re2Problem } from '../../src/core/regex.js';
import { compileRoute, rewritePath } from '../../src/core/route.js';
import { compileSnapshot, selectRoute } from '../../src/core/snapshot.js';
import { MeshConfigError } from '../../src/errors.js';

const view = (path: string, headers: Record<string, string> = {}, query = '') => ({ method: 'GET', path, query, header: (n: string) => headers[n] });

/** One virtual host `h` whose routes are given; enough for the snapshot compiler. */
function resources(routes: Route[]): EnvoyResources {
  return { listeners: [], routes: [{ name: 'rc', virtual_hosts: [{ name: 'h', domains: ['h'], routes }] }], clusters: [], endpoints: [] };
}

const vs = (match: string, extra = '') => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: calculate, namespace: shop }
spec:
  hosts: [calculate]
  http:
    - match: [${match}]
${extra}      route: [{ destination: { host: calculate } }]
`;
const parse = (yaml: string) => parseResources(parseYaml(yaml, 'test'));
function refuses(yaml: string, path: string, reason: RegExp): void {
  assert.throws(() => parse(yaml), (err: unknown) => {
    assert.ok(err instanceof MeshConfigError, String(err));
    assert.equal(err.kind, 'VirtualService');
    assert.equal(err.path, path);
    assert.match(err.reason, reason);
    return true;
  });
}

describe('RE2 syntax in Istio config', () => {
  it('accepts (?i) and matches case-insensitively', () => {
    parse(vs(`{ uri: { regex: '(?i)/API/v[0-9]+' } }`));
    const test = compileFullMatch('(?i)/API/v[0-9]+');
    assert.equal(test('/api/v2'), true);
    assert.equal(test('/Api/V2'), true);
    assert.equal(test('/api/vx'), false);
  });

  it('refuses lookahead, lookbehind and backreferences with the field path and RE2\'s reason', () => {
    refuses(vs(`{ uri: { regex: '/a(?=b)' } }`), 'spec.http[0].match[0].uri.regex', /invalid RE2 regex.*`\(\?=`.*lookahead and lookbehind are not RE2 syntax/);
    refuses(vs(`{ headers: { x-user: { regex: '(?<!admin)x' } } }`), 'spec.http[0].match[0].headers.x-user.regex', /lookahead and lookbehind/);
    refuses(vs(`{ queryParams: { id: { regex: '(a)\\1' } } }`), 'spec.http[0].match[0].queryParams.id.regex', /backreferences are not RE2 syntax/);
    refuses(vs(`{ authority: { regex: 'a++' } }`), 'spec.http[0].match[0].authority.regex', /invalid nested repetition/);
    refuses(vs(`{ withoutHeaders: { x: { regex: 'a{1001}' } } }`), 'spec.http[0].match[0].withoutHeaders.x.regex', /invalid repeat count/);
  });

  it('refuses an empty regex and one past 1024 characters, as Istio', () => {
    refuses(vs(`{ uri: { regex: '' } }`), 'spec.http[0].match[0].uri.regex', /should not be empty/);
    refuses(vs(`{ uri: { regex: '${'a'.repeat(1025)}' } }`), 'spec.http[0].match[0].uri.regex', /max length allowed is 1024/);
  });

  it('checks uriRegexRewrite: both fields (Istio validateURIRegexRewrite), RE2 pattern, groups the substitution names', () => {
    const rewrite = (r: string) => vs(`{ uri: { prefix: /v1 } }`, `      rewrite: { uriRegexRewrite: ${r} }\n`);
    parse(rewrite(`{ match: '^/v1/(\\w+)', rewrite: '/v2/\\1' }`));
    refuses(rewrite(`{ match: '^/v1/(\\w+)' }`), 'spec.http[0].rewrite.uriRegexRewrite', /requires both rewrite and match/);
    refuses(rewrite(`{ match: '^/v1/(?=x)', rewrite: '/v2' }`), 'spec.http[0].rewrite.uriRegexRewrite.match', /lookahead/);
    refuses(rewrite(`{ match: '^/v1/(\\w+)', rewrite: '/v2/\\2' }`), 'spec.http[0].rewrite.uriRegexRewrite.rewrite', /names group \\2, but the pattern has 1/);
  });
});

describe('RE2 matching, compiled once into the snapshot', () => {
  it('safe_regex matches the whole value (Envoy: full match)', () => {
    const test = compileFullMatch('/api/[a-z]+');
    assert.equal(test('/api/users'), true);
    assert.equal(test('/api/users/1'), false);
    assert.equal(test('x/api/users'), false);
    const alternation = compileFullMatch('dog|cat');
    assert.equal(alternation('dog'), true);
    assert.equal(alternation('dogcat'), false);
  });

  it('a nested-quantifier regex over a 100 kB path completes (backtracking RegExp would not return)', () => {
    // Old code: new RegExp('^(?:/(a+)+$)$').test(path) backtracks 2^100000 ways and hangs this test.
    const snap = compileSnapshot(resources([
      { match: { safe_regex: { regex: '/(a+)+$' } }, route: { cluster: 'evil' } },
      { match: { prefix: '/' }, route: { cluster: 'fallback' } },
    ]), 'v');
    const vhost = snap.virtualHost('h', 80)!;
    const path = `/${'a'.repeat(100_000)}b`;
    assert.equal(selectRoute(vhost, view(path))?.clusters[0], 'fallback');
    assert.equal(selectRoute(vhost, view(`/${'a'.repeat(100_000)}`))?.clusters[0], 'evil');
    // The same pattern as a header regex.
    const header = compileSnapshot(resources([
      { match: { prefix: '/', headers: [{ name: 'x', string_match: { safe_regex: { regex: '(a|aa)+' } } }] }, route: { cluster: 'evil' } },
    ]), 'v').virtualHost('h', 80)!;
    assert.equal(selectRoute(header, view('/', { x: `${'a'.repeat(100_000)}!` })), undefined);
  });

  it('case_sensitive does not apply to safe_regex (Envoy route_components.proto); (?i) does', () => {
    const vhost = compileSnapshot(resources([
      { match: { safe_regex: { regex: '/Pets/[0-9]+' }, case_sensitive: { value: false } }, route: { cluster: 'exact-case' } },
      { match: { safe_regex: { regex: '(?i)/pets/[0-9]+' } }, route: { cluster: 'any-case' } },
    ]), 'v').virtualHost('h', 80)!;
    assert.equal(selectRoute(vhost, view('/Pets/1'))?.clusters[0], 'exact-case');
    assert.equal(selectRoute(vhost, view('/PETS/1'))?.clusters[0], 'any-case');
  });

  it('header, query and rate-limit header_value_match regexes are RE2 too', () => {
    const vhost = compileSnapshot(resources([
      { match: { prefix: '/', headers: [{ name: 'x-user', string_match: { safe_regex: { regex: '(?i)ADMIN-[0-9]+' } } }] }, route: { cluster: 'admin' } },
      { match: { prefix: '/', query_parameters: [{ name: 'id', string_match: { safe_regex: { regex: '[0-9]{3}' } } }] }, route: { cluster: 'id' } },
    ]), 'v').virtualHost('h', 80)!;
    assert.equal(selectRoute(vhost, view('/', { 'x-user': 'admin-42' }))?.clusters[0], 'admin');
    assert.equal(selectRoute(vhost, view('/', {}, 'id=123'))?.clusters[0], 'id');
    assert.equal(selectRoute(vhost, view('/', {}, 'id=1234')), undefined);
  });

  it('refuses what RE2 refuses from xDS with the resource and field path (the ADS client NACKs with it)', () => {
    const bad = (routes: Route[], rateLimits?: Array<Record<string, unknown>>) => {
      const r = resources(routes);
      if (rateLimits) {
        r.routes[0]!.virtual_hosts[0]!.rate_limits = rateLimits;
        r.routes[0]!.virtual_hosts[0]!.typed_per_filter_config = { 'envoy.filters.http.ratelimit': { '@type': 'rl', domain: 'd', rate_limit_service: { grpc_service: { envoy_grpc: { cluster_name: 'rls' } } } } };
      }
      return () => compileSnapshot(r, 'v');
    };
    const at = (path: string, reason: RegExp) => (err: unknown) => {
      assert.ok(err instanceof MeshConfigError, String(err));
      assert.equal(err.kind, 'RouteConfiguration');
      assert.equal(err.resource, 'rc');
      assert.equal(err.path, path);
      assert.match(err.reason, reason);
      return true;
    };
    assert.throws(bad([{ match: { safe_regex: { regex: '/a(?=b)' } }, route: { cluster: 'c' } }]), at('virtual_hosts[0].routes[0].match.safe_regex.regex', /lookahead/));
    assert.throws(bad([{ match: { prefix: '/', headers: [{ name: 'x', string_match: { safe_regex: { regex: '(' } } }] }, route: { cluster: 'c' } }]),
      at('virtual_hosts[0].routes[0].match.headers[0].string_match.safe_regex.regex', /missing closing \)/));
    assert.throws(bad([{ match: { prefix: '/' }, route: { cluster: 'c', regex_rewrite: { pattern: { regex: '\\Z' }, substitution: '' } } }]),
      at('virtual_hosts[0].routes[0].route.regex_rewrite.pattern.regex', /invalid escape sequence/));
    assert.throws(bad([{ match: { prefix: '/' }, route: { cluster: 'c' } }], [{ actions: [{ header_value_match: { descriptor_value: 'v', headers: [{ name: 'x', string_match: { safe_regex: { regex: '(?!x)' } } }] } }] }]),
      at('virtual_hosts[0].rate_limits[0].actions[0].header_value_match.headers[0].string_match.safe_regex.regex', /lookahead/));
  });

  it('regex_rewrite keeps Envoy\'s \\1 substitution and RE2 GlobalReplace semantics', () => {
    const route = compileRoute({ match: { prefix: '/' }, route: { cluster: 'c', regex_rewrite: { pattern: { regex: '^/service/([^/]+)(/.*)$' }, substitution: '\\2/instance/\\1' } } }, 0);
    assert.equal(rewritePath(route, '/service/foo/v1/api'), '/v1/api/instance/foo');
    // Envoy's documented example: every match is replaced.
    const all = compileRegexRewrite('one', 'two');
    assert.equal(all('/xxx/one/yyy/one/zzz'), '/xxx/two/yyy/two/zzz');
    // RE2 skips an empty match right after a match (JavaScript's replace would give "-b--c-").
    assert.equal(compileRegexRewrite('a*', '-')('baaac'), '-b-c-');
    assert.equal(compileRegexRewrite('/', '\\\\')('/a/b'), '\\a\\b');
    assert.throws(() => compileRegexRewrite('(a)', '\\q'), /invalid rewrite pattern/);
  });

  it('fast paths (a literal, a literal followed by .*) answer exactly as the RE2 engine', () => {
    const patterns = ['/api/v1', '/api\\.v1/x', '/api/.*', '\\(x\\).*', '', '.*'];
    const inputs = ['', '/api/v1', '/api/v1/', '/api.v1/x', '/apixv1/x', '/api/', '/api/x\ny', '/api/x\ry', '(x)', '(x)yz', 'x', '\n', '/api/v1\n', '😀'];
    for (const p of patterns) {
      const fast = compileFullMatch(p);
      const engine = RE2JS.compile(p);
      for (const s of inputs) assert.equal(fast(s), engine.testExact(s), `${JSON.stringify(p)} on ${JSON.stringify(s)}`);
    }
  });

  it('re2Problem is undefined for valid RE2 (named groups, classes, Unicode)', () => {
    for (const p of ['(?P<id>[0-9]+)', '(?<id>[0-9]+)', '[[:alpha:]]+', '\\pL+', '(?i)x', '(?s).', '\\Qa.b\\E']) assert.equal(re2Problem(p), undefined, p);
  });
});
