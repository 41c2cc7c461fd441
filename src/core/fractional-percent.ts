/**
 * Envoy's FractionalPercent (numerator over HUNDRED / TEN_THOUSAND / MILLION)
 * as a probability, and the one sampling rule every percentage-gated feature
 * uses (fault abort/delay, mirroring, local rate limit enable/enforce).
 */
import type { FractionalPercent } from '../config/envoy.js';
import type { RandomSource } from './random.js';

const denominators: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

/**
 * FractionalPercent → probability in [0, 1]. A numerator above the
 * denominator is capped at 100% (as the proto says); an absent message gives
 * `whenAbsent` because each Envoy field documents its own default.
 */
export function fractionToProbability(percent: FractionalPercent | undefined | null, whenAbsent: number): number {
  if (!percent) return whenAbsent;
  const denominator = denominators[percent.denominator ?? 'HUNDRED'] ?? 100;
  const numerator = Number(percent.numerator ?? 0);
  if (!(numerator > 0)) return 0;
  return numerator >= denominator ? 1 : numerator / denominator;
}

/**
 * One Bernoulli draw. 0% and 100% take no draw, so a seeded sequence is only
 * consumed by decisions that are actually random.
 */
export function sample(probability: number, random: RandomSource): boolean {
  if (probability <= 0) return false;
  if (probability >= 1) return true;
  return random() < probability;
}

/**
 * Istio's Percent (0–100, fractions allowed) → FractionalPercent with MILLION
 * precision, truncated exactly as istiod's translatePercentToFractionalPercent.
 */
export function percentToFractional(value: number): FractionalPercent {
  const clamped = Math.min(100, Math.max(0, value));
  return { numerator: Math.trunc(clamped * 10_000), denominator: 'MILLION' };
}
