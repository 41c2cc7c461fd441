/**
 * The CORS filter's decisions, case by case from Envoy's cors_filter.cc:
 * preflight detection, origin matching (`*` matcher allows any origin),
 * `*` methods/headers echoing the request, forward_not_matching_preflights,
 * route settings over the virtual host's, filter_enabled, and the response
 * headers of a simple CORS request.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileCorsPolicy, decideCors } from '../../src/core/cors.js';

const req = (headers: Record<string, string>) => ({ requestHeader: (name: string) => headers[name] });
const policy = (p: Record<string, unknown>) => compileCorsPolicy(p, 'cors')!;

describe('CORS filter', () => {
  const base = policy({
    allow_origin_string_match: [{ exact: 'https://a.example' }, { prefix: 'https://app.' }, { safe_regex: { regex: 'https://[a-z]+\\.b\\.example' } }],
    allow_methods: 'GET,POST', allow_headers: 'x-token', expose_headers: 'x-trace', max_age: '600', allow_credentials: { value: true },
  });

  it('answers a preflight from an allowed origin with the allow-* headers', () => {
    const d = decideCors(base, undefined, req({ ':method': 'OPTIONS', origin: 'https://app.shop', 'access-control-request-method': 'POST' }), 0);
    assert.deepEqual(d, { kind: 'preflight', headers: {
      'access-control-allow-origin': 'https://app.shop', 'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'GET,POST', 'access-control-allow-headers': 'x-token', 'access-control-max-age': '600',
    } });
    assert.equal(decideCors(base, undefined, req({ ':method': 'OPTIONS', origin: 'https://x.b.example', 'access-control-request-method': 'GET' }), 0).kind, 'preflight');
  });

  it('an OPTIONS without access-control-request-method, or a request without origin, is not a preflight', () => {
    assert.deepEqual(decideCors(base, undefined, req({ ':method': 'OPTIONS', origin: 'https://a.example' }), 0).kind, 'simple');
    assert.equal(decideCors(base, undefined, req({ ':method': 'OPTIONS', 'access-control-request-method': 'GET' }), 0).kind, 'none');
  });

  it('forwards a preflight from an unmatched origin by default; answers it without allow-origin when forwarding is off', () => {
    const r = req({ ':method': 'OPTIONS', origin: 'https://evil.example', 'access-control-request-method': 'GET' });
    assert.equal(decideCors(base, undefined, r, 0).kind, 'none');
    const ignore = policy({ allow_origin_string_match: [{ exact: 'https://a.example' }], allow_methods: 'GET', forward_not_matching_preflights: { value: false } });
    assert.deepEqual(decideCors(ignore, undefined, r, 0), { kind: 'preflight', headers: { 'access-control-allow-methods': 'GET' } });
  });

  it('echoes the requested method and headers for `*`; a `*` origin matcher allows every origin', () => {
    const star = policy({ allow_origin_string_match: [{ exact: '*' }], allow_methods: '*', allow_headers: '*' });
    const d = decideCors(star, undefined, req({ ':method': 'OPTIONS', origin: 'https://any', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'x-a,x-b' }), 0);
    assert.deepEqual(d, { kind: 'preflight', headers: { 'access-control-allow-origin': 'https://any', 'access-control-allow-methods': 'PUT', 'access-control-allow-headers': 'x-a,x-b' } });
  });

  it('adds allow-origin, allow-credentials and expose-headers to the response of a simple request from an allowed origin only', () => {
    assert.deepEqual(decideCors(base, undefined, req({ ':method': 'GET', origin: 'https://a.example' }), 0), {
      kind: 'simple', headers: [['access-control-allow-origin', 'https://a.example'], ['access-control-allow-credentials', 'true'], ['access-control-expose-headers', 'x-trace']],
    });
    assert.deepEqual(decideCors(base, undefined, req({ ':method': 'GET', origin: 'https://evil.example' }), 0), { kind: 'simple', headers: [] });
  });

  it('takes each setting from the route\'s policy, else the virtual host\'s', () => {
    const route = policy({ allow_methods: 'DELETE' });
    const vhost = policy({ allow_origin_string_match: [{ exact: 'https://a.example' }], allow_methods: 'GET', max_age: '5' });
    const d = decideCors(route, vhost, req({ ':method': 'OPTIONS', origin: 'https://a.example', 'access-control-request-method': 'DELETE' }), 0);
    assert.deepEqual(d, { kind: 'preflight', headers: { 'access-control-allow-origin': 'https://a.example', 'access-control-allow-methods': 'DELETE', 'access-control-max-age': '5' } });
  });

  it('filter_enabled decides per request (0% disables the filter)', () => {
    const off = policy({ allow_origin_string_match: [{ exact: '*' }], filter_enabled: { default_value: { numerator: 0, denominator: 'HUNDRED' } } });
    assert.equal(decideCors(off, undefined, req({ ':method': 'GET', origin: 'https://a' }), 0).kind, 'none');
    const half = policy({ allow_origin_string_match: [{ exact: '*' }], filter_enabled: { default_value: { numerator: 50, denominator: 'HUNDRED' } } });
    assert.equal(decideCors(half, undefined, req({ ':method': 'GET', origin: 'https://a' }), 0.4).kind, 'simple');
    assert.equal(decideCors(half, undefined, req({ ':method': 'GET', origin: 'https://a' }), 0.6).kind, 'none');
  });

  it('a bad origin regex is a compile error naming the field (an xDS NACK)', () => {
    assert.throws(() => compileCorsPolicy({ allow_origin_string_match: [{ safe_regex: { regex: '(' } }] }, 'routes[0].cors'), /routes\[0\]\.cors\.allow_origin_string_match\[0\]/);
  });
});
