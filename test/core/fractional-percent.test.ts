/**
 * FractionalPercent (envoy/type/v3/percent.proto): numerator over HUNDRED,
 * TEN_THOUSAND or MILLION, capped at 100%; and Istio's Percent → MILLION
 * (istiod translatePercentToFractionalPercent).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fractionToProbability, percentToFractional, sample } from '../../src/core/fractional-percent.js';
import { seededRandom } from '../../src/core/random.js';

describe('fractionToProbability', () => {
  it('each denominator; HUNDRED when unset (the enum default)', () => {
    assert.equal(fractionToProbability({ numerator: 25, denominator: 'HUNDRED' }, 0), 0.25);
    assert.equal(fractionToProbability({ numerator: 25, denominator: 'TEN_THOUSAND' }, 0), 0.0025);
    assert.equal(fractionToProbability({ numerator: 25, denominator: 'MILLION' }, 0), 0.000025);
    assert.equal(fractionToProbability({ numerator: 25 }, 0), 0.25);
  });

  it('a numerator above the denominator is capped at 100% (percent.proto)', () => {
    assert.equal(fractionToProbability({ numerator: 150, denominator: 'HUNDRED' }, 0), 1);
    assert.equal(fractionToProbability({ numerator: 10_000, denominator: 'TEN_THOUSAND' }, 0), 1);
    assert.equal(fractionToProbability({ numerator: 2_000_000, denominator: 'MILLION' }, 0), 1);
  });

  it('an unset or zero numerator is 0% (proto3 default 0)', () => {
    assert.equal(fractionToProbability({ denominator: 'MILLION' } as never, 1), 0);
    assert.equal(fractionToProbability({ numerator: 0 }, 1), 0);
  });

  it('a uint32 numerator that arrives as a string still counts', () => {
    assert.equal(fractionToProbability({ numerator: '50' as unknown as number }, 0), 0.5);
  });

  it('an absent message gives the per-field default', () => {
    assert.equal(fractionToProbability(undefined, 1), 1);
    assert.equal(fractionToProbability(null, 0), 0);
  });
});

describe('sample', () => {
  it('0% and 100% take no draw', () => {
    let draws = 0;
    const random = () => (draws++, 0.5);
    assert.equal(sample(0, random), false);
    assert.equal(sample(1, random), true);
    assert.equal(draws, 0);
  });

  it('draws below the probability are hits: 30% within 1.5% over 20,000 seeded draws', () => {
    const random = seededRandom(11);
    let hits = 0;
    for (let i = 0; i < 20_000; i++) if (sample(0.3, random)) hits++;
    // sd of the share is sqrt(0.21 / 20000) = 0.0032; 0.015 is more than 4 sd.
    assert.ok(Math.abs(hits / 20_000 - 0.3) < 0.015, String(hits));
  });
});

describe('percentToFractional (istiod translatePercentToFractionalPercent: uint32(value * 10000) of MILLION)', () => {
  it('fractions of a percent keep MILLION precision', () => {
    assert.deepEqual(percentToFractional(0.1), { numerator: 1000, denominator: 'MILLION' });
    assert.deepEqual(percentToFractional(50), { numerator: 500_000, denominator: 'MILLION' });
    assert.deepEqual(percentToFractional(100), { numerator: 1_000_000, denominator: 'MILLION' });
  });

  it('truncates as Go converts float64 to uint32', () => {
    assert.deepEqual(percentToFractional(33.33333), { numerator: 333_333, denominator: 'MILLION' });
    assert.equal(percentToFractional(0.29).numerator, Math.trunc(0.29 * 10_000));
  });

  it('clamps to 0–100', () => {
    assert.equal(percentToFractional(150).numerator, 1_000_000);
    assert.equal(percentToFractional(-5).numerator, 0);
  });
});
