import assert from 'node:assert/strict';
import test from 'node:test';
import { canonicalizePath } from '../../src/core/canonical-path.js';
import {
  isUpperCaseMethod, mergeSlashes, normalizePath, pathNormalizationSettings, type PathNormalizationResult,
} from '../../src/core/path-normalization.js';
import { normalizationCases } from '../fixtures/istio/path-normalization.js';

function seen(result: PathNormalizationResult): string {
  return 'reject' in result ? String(result.reject) : result.path + result.query;
}

for (const group of normalizationCases) {
  test(`Istio normalization_test.go ${group.name} (${group.option}): ${group.cases.length} paths as the sidecar forwards them`, () => {
    const settings = pathNormalizationSettings(group.option);
    for (const c of group.cases) assert.equal(seen(normalizePath(c.in, settings)), c.out, `${group.option} ${c.in}`);
  });
}

test('the attack paths of issue #21 normalize to /admin under BASE; %00 is refused with 400 path_normalization_failed', () => {
  const base = pathNormalizationSettings('BASE');
  for (const p of ['/./admin', '/public/../admin', '/%2e/admin', '/%61dmin', '/%2E%2E/admin', '/a/b/../../admin']) {
    assert.equal(seen(normalizePath(p, base)), '/admin', p);
  }
  // `\` becomes `/`; BASE does not merge the result (Istio: BASE alone is open to CVE-2021-31920), MERGE_SLASHES does.
  assert.equal(seen(normalizePath('/\\admin', base)), '//admin');
  assert.equal(seen(normalizePath('/\\admin', pathNormalizationSettings('MERGE_SLASHES'))), '/admin');
  assert.deepEqual(normalizePath('/admin%00', base), { reject: 400, details: 'path_normalization_failed' });
  assert.deepEqual(normalizePath('/admin%00', pathNormalizationSettings('MERGE_SLASHES')), { reject: 400, details: 'path_normalization_failed' });
  // NONE is Envoy with normalize_path false: nothing looks at the escape.
  assert.equal(seen(normalizePath('/admin%00', pathNormalizationSettings('NONE'))), '/admin%00');
});

test('the query string is kept for the app and never normalized; the path is what policies match', () => {
  const r = normalizePath('/public/../admin?x=/../y&%2e=1', pathNormalizationSettings('DECODE_AND_MERGE_SLASHES'));
  const plain = (x: PathNormalizationResult) => ('reject' in x ? x : { path: x.path, query: x.query, url: x.url, changed: x.changed });
  assert.deepEqual(plain(r), { path: '/admin', query: '?x=/../y&%2e=1', url: '/admin?x=/../y&%2e=1', changed: true });
  assert.deepEqual(plain(normalizePath('/a?b', pathNormalizationSettings('BASE'))), { path: '/a', query: '?b', url: '/a?b', changed: false });
  assert.deepEqual(plain(normalizePath('/a?', pathNormalizationSettings('BASE'))), { path: '/a', query: '?', url: '/a?', changed: false });
});

test('a fragment is dropped in every mode, from the query too', () => {
  for (const option of ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const) {
    assert.equal(seen(normalizePath('/a?x=1#frag', pathNormalizationSettings(option))), '/a?x=1', option);
    assert.equal(seen(normalizePath('/a#/../b', pathNormalizationSettings(option))), '/a', option);
  }
});

test('an already-normal path comes back as the same string, unchanged', () => {
  const url = '/api/v1/items/42.json?sort=asc';
  for (const option of ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const) {
    const r = normalizePath(url, pathNormalizationSettings(option));
    assert.ok(!('reject' in r));
    assert.equal(r.changed, false, option);
    assert.equal(r.path + r.query, url);
  }
  for (const p of ['/.well-known/x', '/a%20b', '/a%2Fb', '/file.tar.gz', '/a/b.', '/~user', "/x!$&'()*+,;=:@[]"]) {
    const r = normalizePath(p, pathNormalizationSettings('BASE'));
    assert.ok(!('reject' in r) && !r.changed && r.path === p, p);
  }
});

test('absolute-form targets keep their path (Envoy’s codec); other non-origin targets get 404 absolute_path', () => {
  const base = pathNormalizationSettings('BASE');
  assert.equal(seen(normalizePath('http://evil.example/./admin?q', base)), '/admin?q');
  assert.equal(seen(normalizePath('HTTPS://h', base)), '/');
  assert.equal(seen(normalizePath('http://h?q=1', base)), '/?q=1');
  assert.deepEqual(normalizePath('*', base), { reject: 404, details: 'absolute_path' });
  assert.deepEqual(normalizePath('admin', pathNormalizationSettings('NONE')), { reject: 404, details: 'absolute_path' });
});

test('escaped-slash actions as Envoy: REJECT_REQUEST → 400, UNESCAPE_AND_REDIRECT → 307 to the normalized URL', () => {
  const reject = { normalizePath: true, mergeSlashes: false, escapedSlashes: 'REJECT_REQUEST' } as const;
  assert.deepEqual(normalizePath('/a%2Fb', reject), { reject: 400, details: 'path_normalization_failed' });
  assert.equal(seen(normalizePath('/a/b', reject)), '/a/b');
  const redirect = { normalizePath: true, mergeSlashes: true, escapedSlashes: 'UNESCAPE_AND_REDIRECT' } as const;
  assert.deepEqual(normalizePath('/a%2F%2fb?q', redirect), { reject: 307, details: 'path_normalization_failed', location: '/a/b?q' });
});

test('Chromium canonicalization details: escaping, case of kept escapes, nested escapes, .. above the root', () => {
  assert.equal(canonicalizePath('/a b"<>^`{|}'), '/a%20b%22%3C%3E%5E%60%7B%7C%7D');
  assert.equal(canonicalizePath('/caf\u00e9'), '/caf%E9'); // node hands HTTP/1 bytes over as latin1
  assert.equal(canonicalizePath('/\u20ac'), '/%E2%82%AC');
  assert.equal(canonicalizePath('/%7e%7E%2a'), '/~~%2a');
  assert.equal(canonicalizePath('/%%300'), '/%2500'); // would otherwise read as %00 to the next decoder
  assert.equal(canonicalizePath('/%%30%30'), '/%2500');
  assert.equal(canonicalizePath('/%zz%'), '/%zz%');
  assert.equal(canonicalizePath('/../../a'), '/a');
  assert.equal(canonicalizePath('/a/..'), '/');
  assert.equal(canonicalizePath('/a/.'), '/a/');
  assert.equal(canonicalizePath('/a/%2e%2E'), '/');
  assert.equal(canonicalizePath(''), '/');
  assert.equal(canonicalizePath('/a\u0000'), undefined);
});

test('merge_slashes keeps one leading and one trailing slash, as Envoy', () => {
  assert.equal(mergeSlashes('//a///b//'), '/a/b/');
  assert.equal(mergeSlashes('/a/b'), '/a/b');
  assert.equal(mergeSlashes('//'), '//');
});

test('methods: any lower-case letter is refused (Istio authorization normalization)', () => {
  assert.equal(isUpperCaseMethod('GET'), true);
  assert.equal(isUpperCaseMethod('M-SEARCH'), true);
  assert.equal(isUpperCaseMethod('get'), false);
  assert.equal(isUpperCaseMethod('Delete'), false);
});
