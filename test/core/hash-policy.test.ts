/**
 * Route hash_policy evaluation against Envoy's HashPolicyImpl::generateHash
 * (source/common/http/hash_policy.cc): xxHash64 per policy, rotate-and-XOR
 * folding, terminal policies, cookie parsing and generation, query
 * parameters, source IP; and the compile errors an xDS client NACKs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileHashPolicies, cookieValue, requestHash, setCookieValue, type HashInputs } from '../../src/core/hash-policy.js';
import { compileRoute } from '../../src/core/route.js';
import { xxHash64 } from '../../src/core/xxhash64.js';

const MASK = 0xffffffffffffffffn;
const rotl1 = (h: bigint) => ((h << 1n) | (h >> 63n)) & MASK;

function inputs(headers: Record<string, string>, address?: string): HashInputs & { cookies: number } {
  const req = {
    cookies: 0,
    requestHeader: (name: string) => headers[name],
    downstreamAddress: () => address,
    newCookieValue: () => `generated-${++req.cookies}`,
  };
  return req;
}

describe('hash policies', () => {
  it('hashes a header value with xxHash64; no header, no hash', () => {
    const p = compileHashPolicies([{ header: { header_name: 'X-User' } }], 'hp');
    assert.equal(requestHash(p, inputs({ 'x-user': 'alice' })).hash, xxHash64('alice'));
    assert.equal(requestHash(p, inputs({})).hash, undefined);
  });

  it('folds several policies as Envoy (old rotated left by one, XOR new) and stops at a terminal one that hashed', () => {
    const two = compileHashPolicies([{ header: { header_name: 'a' } }, { header: { header_name: 'b' } }], 'hp');
    assert.equal(requestHash(two, inputs({ a: '1', b: '2' })).hash, rotl1(xxHash64('1')) ^ xxHash64('2'));
    // Two equal policies do not cancel out.
    const same = compileHashPolicies([{ header: { header_name: 'a' } }, { header: { header_name: 'a' } }], 'hp');
    assert.notEqual(requestHash(same, inputs({ a: '1' })).hash, 0n);
    const terminal = compileHashPolicies([{ header: { header_name: 'a' }, terminal: true }, { header: { header_name: 'b' } }], 'hp');
    assert.equal(requestHash(terminal, inputs({ a: '1', b: '2' })).hash, xxHash64('1'));
    // A terminal policy that yields nothing does not stop the walk.
    assert.equal(requestHash(terminal, inputs({ b: '2' })).hash, xxHash64('2'));
  });

  it('regex_rewrite rewrites the header value before hashing', () => {
    const p = compileHashPolicies([{ header: { header_name: ':path', regex_rewrite: { pattern: { regex: '^/users/([^/]+)/.*$' }, substitution: '\\1' } } }], 'hp');
    assert.equal(requestHash(p, inputs({ ':path': '/users/42/cart' })).hash, xxHash64('42'));
  });

  it('reads a cookie (quotes stripped); with a ttl generates one for a request without it, and returns its Set-Cookie', () => {
    assert.equal(cookieValue('a=1; session="abc"; b=2', 'session'), 'abc');
    assert.equal(cookieValue('sessionx=1', 'session'), '');
    const p = compileHashPolicies([{ cookie: { name: 'session', path: '/', ttl: { seconds: '60', nanos: 0 }, attributes: [{ name: 'SameSite', value: 'Strict' }, { name: 'Secure', value: '' }] } }], 'hp');
    const present = requestHash(p, inputs({ cookie: 'session=xyz' }));
    assert.deepEqual(present, { hash: xxHash64('xyz'), setCookies: undefined });
    const absent = inputs({});
    const generated = requestHash(p, absent);
    assert.equal(generated.hash, xxHash64('generated-1'));
    assert.deepEqual(generated.setCookies, ['session="generated-1"; Max-Age=60; Path=/; SameSite=Strict; Secure; HttpOnly']);
    // Without a ttl, nothing is generated and nothing is hashed.
    const noTtl = compileHashPolicies([{ cookie: { name: 'session' } }], 'hp');
    assert.deepEqual(requestHash(noTtl, inputs({})), { hash: undefined, setCookies: undefined });
    assert.equal(setCookieValue('s', 'v', '', 0, []), 's="v"; HttpOnly');
  });

  it('hashes the first raw value of a query parameter, and the downstream IP (IPv4-mapped addresses as IPv4)', () => {
    const q = compileHashPolicies([{ query_parameter: { name: 'user' } }], 'hp');
    assert.equal(requestHash(q, inputs({ ':path': '/cart?x=1&user=bob&user=eve' })).hash, xxHash64('bob'));
    assert.equal(requestHash(q, inputs({ ':path': '/cart?x=1' })).hash, undefined);
    assert.equal(requestHash(q, inputs({ ':path': '/cart?user' })).hash, xxHash64(''));
    const ip = compileHashPolicies([{ connection_properties: { source_ip: true } }], 'hp');
    assert.equal(requestHash(ip, inputs({}, '::ffff:10.1.2.3')).hash, xxHash64('10.1.2.3'));
    assert.equal(requestHash(ip, inputs({}, undefined)).hash, undefined);
    const fs = compileHashPolicies([{ filter_state: { key: 'k' } }], 'hp');
    assert.equal(requestHash(fs, inputs({})).hash, undefined);
  });

  it('compile errors name the field, so an xDS client NACKs the route', () => {
    assert.throws(() => compileRoute({ match: { prefix: '/' }, route: { cluster: 'c', hash_policy: [{ header: { header_name: '' } }] } }, 3), /routes\[3\]\.route\.hash_policy\[0\]\.header\.header_name/);
    assert.throws(() => compileRoute({ match: { prefix: '/' }, route: { cluster: 'c', hash_policy: [{ terminal: true }] } }, 0), /hash_policy\[0\]: no policy/);
    assert.equal(compileRoute({ match: { prefix: '/' }, route: { cluster: 'c', hash_policy: [{ policy_specifier: 'header', header: { header_name: 'x' } }] } }, 0).hashPolicies.length, 1);
  });
});
