/**
 * seededRandom: the reproducible RandomSource tests and simulations use in
 * place of Math.random (weights, faults, load balancing, jitter).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultRandom, seededRandom } from '../../src/core/random.js';

const take = (seed: number, n: number) => {
  const r = seededRandom(seed);
  return Array.from({ length: n }, () => r());
};

describe('seededRandom', () => {
  it('the same seed gives the same sequence; different seeds differ', () => {
    assert.deepEqual(take(42, 100), take(42, 100));
    assert.notDeepEqual(take(42, 100), take(43, 100));
  });

  it('the seed is taken as a uint32', () => {
    assert.deepEqual(take(2 ** 32 + 5, 10), take(5, 10));
    assert.deepEqual(take(-1, 10), take(0xffffffff, 10));
  });

  it('values are in [0, 1)', () => {
    for (const v of take(7, 50_000)) assert.ok(v >= 0 && v < 1, String(v));
  });

  it('uniform: 100,000 draws fill 10 buckets within 3% of 10,000 each, chi-square under the 0.1% critical value', () => {
    const buckets = new Array<number>(10).fill(0);
    for (const v of take(2024, 100_000)) buckets[Math.floor(v * 10)]!++;
    for (const b of buckets) assert.ok(Math.abs(b - 10_000) < 300, String(buckets));
    const chi2 = buckets.reduce((s, b) => s + (b - 10_000) ** 2 / 10_000, 0);
    assert.ok(chi2 < 27.88, `chi-square ${chi2} (9 degrees of freedom)`);
  });

  it('consecutive draws are not correlated (lag-1 correlation near 0)', () => {
    const xs = take(99, 50_000);
    let num = 0;
    let den = 0;
    for (let i = 0; i < xs.length; i++) {
      den += (xs[i]! - 0.5) ** 2;
      if (i > 0) num += (xs[i]! - 0.5) * (xs[i - 1]! - 0.5);
    }
    assert.ok(Math.abs(num / den) < 0.02, String(num / den));
  });

  it('two sources with the same seed are independent objects', () => {
    const a = seededRandom(1);
    const b = seededRandom(1);
    a();
    assert.notEqual(a(), b(), 'b has not advanced');
  });

  it('the default source is Math.random', () => {
    assert.equal(defaultRandom, Math.random);
  });
});
