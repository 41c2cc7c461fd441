import assert from 'node:assert/strict';
import test from 'node:test';
import { translateMirrorFraction } from '../../src/config/translate-resilience.js';
import { compileMirrorPolicies, shadowAuthority, shouldMirror } from '../../src/core/mirror.js';
import { seededRandom } from '../../src/core/random.js';

test('the -shadow suffix goes before the port, as Envoy', () => {
  assert.equal(shadowAuthority('calculate.default.svc.cluster.local:8000'), 'calculate.default.svc.cluster.local-shadow:8000');
  assert.equal(shadowAuthority('calculate'), 'calculate-shadow');
  assert.equal(shadowAuthority('[::1]:80'), '[::1]-shadow:80');
  assert.equal(shadowAuthority('[::1]'), '[::1]-shadow');
  assert.equal(shadowAuthority('127.0.0.1:3000'), '127.0.0.1-shadow:3000');
});

test('compile: absent runtime_fraction mirrors all, 0% policies are dropped, options kept', () => {
  const policies = compileMirrorPolicies([
    { cluster: 'a' },
    { cluster: 'b', runtime_fraction: { default_value: { numerator: 0 } } },
    { cluster: 'c', runtime_fraction: { default_value: { numerator: 250_000, denominator: 'MILLION' } }, disable_shadow_host_suffix_append: true } as never,
  ]);
  assert.deepEqual(policies.map((p) => [p.cluster, p.probability, p.shadowSuffix]), [['a', 1, true], ['c', 0.25, false]]);
  assert.equal(compileMirrorPolicies(undefined).length, 0);
});

test('mirrorPercentage 25 mirrors about a quarter of requests', () => {
  const fraction = translateMirrorFraction({ value: 25 })!;
  assert.deepEqual(fraction, { default_value: { numerator: 250_000, denominator: 'MILLION' } });
  const [policy] = compileMirrorPolicies([{ cluster: 'shadow', runtime_fraction: fraction }]);
  const random = seededRandom(3);
  let n = 0;
  for (let i = 0; i < 4000; i++) if (shouldMirror(policy!, random)) n++;
  assert.ok(Math.abs(n / 40 - 25) <= 3, `${n / 40}%`);
});

test('Istio mirror percent translation: absent → 100%, explicit 0 → no mirror', () => {
  assert.deepEqual(translateMirrorFraction(undefined), { default_value: { numerator: 1_000_000, denominator: 'MILLION' } });
  assert.equal(translateMirrorFraction({ value: 0 }), null);
  assert.equal(translateMirrorFraction(undefined, 0), null);
  assert.deepEqual(translateMirrorFraction(undefined, 50), { default_value: { numerator: 500_000, denominator: 'MILLION' } });
});
