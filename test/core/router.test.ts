/**
 * Route matching as Envoy's: RouteMatch path specifiers, HeaderMatcher and
 * QueryParameterMatcher semantics (envoy/config/route/v3/route_components.proto,
 * source/common/http/header_utility.cc, source/common/router/config_impl.cc).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HeaderMatcher, RouteMatch } from '../../src/config/envoy.js';
import { translateHttpRoute } from '../../src/config/translate-routes.js';
import { compileHeader, compileMatch, compileStringMatcher, headersMatch, matches } from '../../src/core/router.js';
import { view } from '../helpers/envoy-resources.js';

const accepts = (m: RouteMatch, path: string, headers: Record<string, string> = {}, query = '', method = 'GET') =>
  matches(compileMatch(m), view(path, headers, query, method));
const header = (h: HeaderMatcher, headers: Record<string, string>) => headersMatch([compileHeader(h)], (n) => headers[n]);

describe('compileStringMatcher (envoy.type.matcher.v3.StringMatcher)', () => {
  it('exact, prefix, suffix and contains are case-sensitive unless ignore_case', () => {
    assert.equal(compileStringMatcher({ exact: 'Cat' })('Cat'), true);
    assert.equal(compileStringMatcher({ exact: 'Cat' })('cat'), false);
    assert.equal(compileStringMatcher({ exact: 'Cat', ignore_case: true })('cAT'), true);
    assert.equal(compileStringMatcher({ prefix: 'ab' })('abc'), true);
    assert.equal(compileStringMatcher({ prefix: 'AB', ignore_case: true })('abc'), true);
    assert.equal(compileStringMatcher({ suffix: 'bc' })('abc'), true);
    assert.equal(compileStringMatcher({ suffix: 'BC' })('abc'), false);
    assert.equal(compileStringMatcher({ contains: 'b' })('abc'), true);
    assert.equal(compileStringMatcher({ contains: 'B', ignore_case: true })('abc'), true);
    assert.equal(compileStringMatcher({ contains: 'x' })('abc'), false);
  });

  it('safe_regex is a full match and ignore_case does not apply to it (StringMatcher.ignore_case doc)', () => {
    const re = compileStringMatcher({ safe_regex: { regex: 'v[0-9]+' }, ignore_case: true });
    assert.equal(re('v12'), true);
    assert.equal(re('xv12'), false, 'not a search');
    assert.equal(re('V12'), false, 'ignore_case has no effect on safe_regex');
    assert.equal(compileStringMatcher({ safe_regex: { regex: '(?i)v1' } })('V1'), true, 'RE2 inline flag instead');
  });

  it('a bad regex throws an error that starts with the matcher path', () => {
    assert.throws(() => compileStringMatcher({ safe_regex: { regex: '(' } }, 'x.string_match'), /^Error: x\.string_match\.safe_regex\.regex: /);
  });
});

describe('RouteMatch path specifiers', () => {
  it('prefix matches the start of the path; `/` matches everything', () => {
    assert.equal(accepts({ prefix: '/api' }, '/api/users'), true);
    assert.equal(accepts({ prefix: '/api' }, '/apiary'), true, 'a plain prefix, not path-segment aware');
    assert.equal(accepts({ prefix: '/api/' }, '/api'), false);
    assert.equal(accepts({ prefix: '/' }, '/anything'), true);
    assert.equal(accepts({}, '/anything'), true, 'no specifier is prefix /');
  });

  it('path is an exact match on the path without the query string', () => {
    assert.equal(accepts({ path: '/add' }, '/add', {}, 'a=1'), true);
    assert.equal(accepts({ path: '/add' }, '/add/'), false);
    assert.equal(accepts({ path: '/add' }, '/addition'), false);
  });

  it('case_sensitive: false applies to prefix and path', () => {
    assert.equal(accepts({ prefix: '/API', case_sensitive: { value: false } }, '/api/x'), true);
    assert.equal(accepts({ path: '/Add', case_sensitive: { value: false } }, '/ADD'), true);
    assert.equal(accepts({ path: '/Add' }, '/ADD'), false, 'case-sensitive by default');
  });

  it('safe_regex must match the whole path, and case_sensitive is ignored for it (route_components.proto)', () => {
    const m = { safe_regex: { regex: '/api/v[0-9]+' } };
    assert.equal(accepts(m, '/api/v2'), true);
    assert.equal(accepts(m, '/api/v2/users'), false, 'full match, not a prefix');
    assert.equal(accepts({ ...m, case_sensitive: { value: false } }, '/API/v2'), false);
  });

  it('a bad path regex names its field', () => {
    assert.throws(() => compileMatch({ safe_regex: { regex: '[' } }, 'routes[3].match'), /^Error: routes\[3\]\.match\.safe_regex\.regex: /);
  });
});

describe('HeaderMatcher (header_utility.cc)', () => {
  it('string_match on a present header; names are case-insensitive; all matchers must match', () => {
    const m: RouteMatch = { prefix: '/', headers: [{ name: 'X-User', string_match: { exact: 'cat' } }, { name: 'x-v', string_match: { prefix: '2' } }] };
    assert.equal(accepts(m, '/', { 'x-user': 'cat', 'x-v': '2.1' }), true);
    assert.equal(accepts(m, '/', { 'x-user': 'cat', 'x-v': '1.0' }), false);
    assert.equal(accepts(m, '/', { 'x-v': '2.1' }), false, 'absent header: no match');
  });

  it('no match specifier and present_match: true match a present header of any value', () => {
    assert.equal(header({ name: 'x' }, { x: '' }), true);
    assert.equal(header({ name: 'x' }, {}), false);
    assert.equal(header({ name: 'x', present_match: true }, { x: 'v' }), true);
    assert.equal(header({ name: 'x', present_match: true }, {}), false);
  });

  it('present_match: false matches only when the header is absent', () => {
    assert.equal(header({ name: 'x', present_match: false }, {}), true);
    assert.equal(header({ name: 'x', present_match: false }, { x: 'v' }), false);
  });

  it('invert_match inverts a value match on a present header', () => {
    const h = { name: 'x', string_match: { exact: 'cat' }, invert_match: true };
    assert.equal(header(h, { x: 'dog' }), true);
    assert.equal(header(h, { x: 'cat' }), false);
  });

  it('an inverted value match on an absent header does not match (absent headers fail value matches)', () => {
    assert.equal(header({ name: 'x', string_match: { exact: 'cat' }, invert_match: true }, {}), false);
  });

  it('treat_missing_header_as_empty tests an absent header as ""', () => {
    const inverted = { name: 'x', string_match: { exact: 'cat' }, invert_match: true, treat_missing_header_as_empty: true };
    assert.equal(header(inverted, {}), true, '"" is not cat, inverted: match');
    assert.equal(header({ name: 'x', string_match: { safe_regex: { regex: '.*' } }, treat_missing_header_as_empty: true }, {}), true);
    assert.equal(header({ name: 'x', string_match: { prefix: 'a' }, treat_missing_header_as_empty: true }, {}), false);
  });

  it('an inverted present_match matches when the header is absent', () => {
    assert.equal(header({ name: 'x', present_match: true, invert_match: true }, {}), true);
    assert.equal(header({ name: 'x', present_match: true, invert_match: true }, { x: 'v' }), false);
  });

  it(':method is matched against the request method', () => {
    const m: RouteMatch = { prefix: '/', headers: [{ name: ':method', string_match: { exact: 'POST' } }] };
    assert.equal(accepts(m, '/', {}, '', 'POST'), true);
    assert.equal(accepts(m, '/', {}, '', 'GET'), false);
  });

  it("Istio's withoutHeaders (invert + treat_missing_header_as_empty, pilot route.go TranslateRouteMatch) matches an absent header", () => {
    // istio/istio 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c pilot/pkg/networking/core/route/route.go
    const [route] = translateHttpRoute({ match: [{ withoutHeaders: { 'x-canary': { exact: 'true' } } }], route: [{ destination: { host: 'calculate' } }] }, 0, 80, () => 'c');
    assert.deepEqual(route!.match.headers, [{ name: 'x-canary', string_match: { exact: 'true' }, invert_match: true, treat_missing_header_as_empty: true }]);
    assert.equal(accepts(route!.match, '/'), true, 'no header: not the canary');
    assert.equal(accepts(route!.match, '/', { 'x-canary': 'false' }), true);
    assert.equal(accepts(route!.match, '/', { 'x-canary': 'true' }), false);
    const [present] = translateHttpRoute({ match: [{ withoutHeaders: { 'x-canary': {} } }], route: [{ destination: { host: 'calculate' } }] }, 0, 80, () => 'c');
    assert.deepEqual(present!.match.headers, [{ name: 'x-canary', present_match: true, invert_match: true }], 'no treat_missing with present_match (route.go)');
  });
});

describe('QueryParameterMatcher', () => {
  const q = (m: RouteMatch['query_parameters'], query: string) => accepts({ prefix: '/', query_parameters: m }, '/', {}, query);

  it('string_match tests the value; an absent parameter never matches', () => {
    assert.equal(q([{ name: 'debug', string_match: { exact: '1' } }], 'a=b&debug=1'), true);
    assert.equal(q([{ name: 'debug', string_match: { exact: '1' } }], 'debug=2'), false);
    assert.equal(q([{ name: 'debug', string_match: { exact: '1' } }], 'a=1'), false);
    assert.equal(q([{ name: 'debug', string_match: { exact: '1' } }], ''), false);
  });

  it('present_match (or no specifier) matches any value, including a bare name', () => {
    assert.equal(q([{ name: 'debug', present_match: true }], 'debug'), true);
    assert.equal(q([{ name: 'debug', present_match: true }], 'x=1&debug='), true);
    assert.equal(q([{ name: 'debug' }], 'debugger=1'), false, 'names match exactly');
  });

  it('the first value of a repeated parameter is the one tested', () => {
    assert.equal(q([{ name: 'v', string_match: { exact: '1' } }], 'v=1&v=2'), true);
    assert.equal(q([{ name: 'v', string_match: { exact: '2' } }], 'v=1&v=2'), false);
  });

  it('values are matched raw, not percent-decoded (Envoy parses with parseQueryString)', () => {
    assert.equal(q([{ name: 'user', string_match: { exact: 'admin' } }], 'user=%61dmin'), false);
    assert.equal(q([{ name: 'user', string_match: { exact: 'a%20b' } }], 'user=a%20b'), true);
    assert.equal(q([{ name: 'user', string_match: { exact: 'a b' } }], 'user=a+b'), false);
    assert.equal(q([{ name: 'k', string_match: { exact: 'x=y' } }], 'k=x=y'), true, 'split at the first =');
  });
});
