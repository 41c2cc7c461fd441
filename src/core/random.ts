/**
 * The one source of randomness for routing decisions (weights, faults, load
 * balancing, jitter). Tests pass a seeded source so statistical behaviour is
 * reproducible.
 */
export type RandomSource = () => number;

/** A seedable generator (mulberry32): fast, 32-bit state, good enough for traffic splitting. */
export function seededRandom(seed: number): RandomSource {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The default source. */
export const defaultRandom: RandomSource = Math.random;
