import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpiffeIdError, formatSpiffeId, parseSpiffeId, tryParseSpiffeId } from '../../src/security/identity.js';
import { MeshError } from '../../src/errors.js';

test('formats and parses the Istio SPIFFE shape', () => {
  const uri = formatSpiffeId({ namespace: 'default', serviceAccount: 'client' });
  assert.equal(uri, 'spiffe://cluster.local/ns/default/sa/client');
  assert.deepEqual(parseSpiffeId(uri), { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'client', uri });
  assert.equal(parseSpiffeId('spiffe://example.org/ns/a-b/sa/c_d.e', { trustDomain: 'example.org' }).serviceAccount, 'c_d.e');
});

test('rejects every other shape with a reason', () => {
  const cases: Array<[string, RegExp]> = [
    ['http://cluster.local/ns/a/sa/b', /spiffe:\/\//],
    ['spiffe://cluster.local', /no path/],
    ['spiffe://cluster.local/ns/a/sa', /exactly \/ns/],
    ['spiffe://cluster.local/ns/a/sa/b/c', /exactly \/ns/],
    ['spiffe://cluster.local/sa/b/ns/a', /exactly \/ns/],
    ['spiffe://cluster.local/ns//sa/b', /namespace is empty/],
    ['spiffe://cluster.local/ns/../sa/b', /may not be/],
    ['spiffe://Cluster.Local/ns/a/sa/b', /trust domain/],
    ['spiffe://cluster.local/ns/a b/sa/b', /may only contain/],
    ['spiffe://cluster.local/ns/a/sa/b%20', /may only contain/],
    ['spiffe://cluster.local/ns/a/sa/b?x=1', /may only contain/],
    ['spiffe://user@cluster.local/ns/a/sa/b', /trust domain/],
    ['spiffe://cluster.local:8080/ns/a/sa/b', /trust domain/],
    ['spiffe:///ns/a/sa/b', /trust domain is empty/],
  ];
  for (const [input, reason] of cases) {
    const r = tryParseSpiffeId(input);
    assert.equal(typeof r, 'string', input);
    assert.match(r as string, reason, input);
    assert.throws(() => parseSpiffeId(input), (err: unknown) => err instanceof SpiffeIdError && err instanceof MeshError && err.code === 'MESH_SPIFFE_ID_INVALID');
  }
});

test('checks the trust domain when asked', () => {
  assert.match(tryParseSpiffeId('spiffe://other.local/ns/a/sa/b', { trustDomain: 'cluster.local' }) as string, /not the expected "cluster.local"/);
  assert.throws(() => formatSpiffeId({ namespace: 'a/b', serviceAccount: 'x' }), SpiffeIdError);
  assert.throws(() => formatSpiffeId({ trustDomain: 'UPPER', namespace: 'a', serviceAccount: 'x' }), SpiffeIdError);
});
