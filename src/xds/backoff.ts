/**
 * Jittered exponential backoff for xDS reconnects, as gRPC's connection
 * backoff (A6 / connection-backoff.md): initial 1 s, ×1.6, ±20 % jitter,
 * capped. Reset after the stream delivers a response.
 */
import { defaultRandom, type RandomSource } from '../core/random.js';

/** Backoff tuning. */
export interface BackoffOptions {
  /** First delay in ms (default 1000). */
  initialMs?: number;
  /** Upper bound of the un-jittered delay in ms (default 30000). */
  maxMs?: number;
  /** Growth factor per attempt (default 1.6). */
  multiplier?: number;
  /** Relative jitter, 0..1 (default 0.2: each delay is ±20 %). */
  jitter?: number;
  /** Randomness for the jitter (tests pass a seeded source). */
  random?: RandomSource;
}

/** Stateful backoff: `next()` gives the delay before the next attempt. */
export class Backoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly multiplier: number;
  private readonly jitter: number;
  private readonly random: RandomSource;
  private current: number;
  /** Attempts since the last reset. */
  attempts = 0;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 1000;
    this.maxMs = options.maxMs ?? 30_000;
    this.multiplier = options.multiplier ?? 1.6;
    this.jitter = options.jitter ?? 0.2;
    this.random = options.random ?? defaultRandom;
    this.current = this.initialMs;
  }

  /** The delay in ms before the next attempt; grows until the cap. */
  next(): number {
    const base = this.current;
    this.current = Math.min(this.current * this.multiplier, this.maxMs);
    this.attempts++;
    const spread = base * this.jitter;
    return Math.max(0, Math.round(base - spread + this.random() * 2 * spread));
  }

  /** Back to the initial delay (after a healthy stream). */
  reset(): void {
    this.current = this.initialMs;
    this.attempts = 0;
  }
}
