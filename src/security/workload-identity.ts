/**
 * The workload identity the rest of meshlet uses: the current key and
 * certificates, change notifications, and a rotator that renews at a fraction
 * of the certificate's lifetime (Istio's SecretManager: 0.5 grace ratio with
 * 1% jitter) through an injected `issue()` — the same rotator serves the
 * development CA and the control-plane CA.
 */
import { type RandomSource, defaultRandom } from '../core/random.js';
import type { IdentityMaterial } from './material.js';
import type { CertificateAuthority } from './ca.js';

/** Returned by event subscriptions; `dispose()` unsubscribes. */
export interface Disposable {
  dispose(): void;
}

/** Called with the new material after every rotation. */
export type RotateListener = (material: IdentityMaterial) => void;

/** A workload's identity: always-current material plus rotation events. */
export interface WorkloadIdentity {
  /** The material to use for the next handshake. */
  readonly current: IdentityMaterial;
  /** Subscribes to rotations (TLS servers call `setSecureContext` here). */
  onRotate(listener: RotateListener): Disposable;
  /** Stops rotation / watching. Idempotent. */
  close(): Promise<void>;
}

/** Timer functions, injectable so tests can drive rotation with t.mock.timers or a fake clock. */
export interface RotatorClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const systemClock: RotatorClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Options for {@link createRotatingIdentity}. */
export interface RotatingIdentityOptions {
  /** Obtains fresh material (a new key and certificate). */
  issue: () => Promise<IdentityMaterial>;
  /** Renew when this fraction of the lifetime remains (Istio default 0.5). */
  graceRatio?: number;
  /** Random spread added to the grace ratio, ± (Istio default 0.01). */
  graceRatioJitter?: number;
  random?: RandomSource;
  clock?: RotatorClock;
  /** Issue failures after the first; the old material keeps serving and issue is retried. */
  onError?: (err: unknown) => void;
  /** First retry delay after a failed renewal (default 1 s), doubled up to `maxRetryMs` (default 60 s). */
  minRetryMs?: number;
  maxRetryMs?: number;
}

/** A set of listeners; one failing listener does not stop the others. */
class Listeners {
  readonly #set = new Set<RotateListener>();
  add(listener: RotateListener): Disposable {
    this.#set.add(listener);
    return { dispose: () => this.#set.delete(listener) };
  }
  emit(material: IdentityMaterial, onError: (err: unknown) => void): void {
    for (const listener of this.#set) {
      try {
        listener(material);
      } catch (err) {
        onError(err);
      }
    }
  }
  clear(): void {
    this.#set.clear();
  }
}

/**
 * Delay until renewal as Istio's SecretManager computes it: expiry minus
 * lifetime × (graceRatio ± jitter), never negative.
 */
export function rotationDelay(issuedAt: number, notAfter: number, now: number, graceRatio: number, jitter: number, random: RandomSource): number {
  const lifetime = notAfter - issuedAt;
  let ratio = graceRatio + (random() * 2 - 1) * jitter;
  ratio = Math.min(1, Math.max(0, ratio));
  return Math.max(0, notAfter - lifetime * ratio - now);
}

/**
 * Issues the first material (awaited; its failure rejects) and renews it
 * before expiry for as long as the identity is open.
 */
export async function createRotatingIdentity(options: RotatingIdentityOptions): Promise<WorkloadIdentity> {
  const clock = options.clock ?? systemClock;
  const graceRatio = options.graceRatio ?? 0.5;
  const jitter = options.graceRatioJitter ?? 0.01;
  const random = options.random ?? defaultRandom;
  const onError = options.onError ?? (() => {});
  const minRetry = options.minRetryMs ?? 1000;
  const maxRetry = options.maxRetryMs ?? 60_000;
  const listeners = new Listeners();

  let current = await options.issue();
  let issuedAt = clock.now();
  let timer: unknown;
  let closed = false;
  let failures = 0;

  const schedule = (ms: number): void => {
    if (!closed) timer = clock.setTimeout(renew, ms);
  };
  const scheduleFromCurrent = (): void => {
    schedule(rotationDelay(Math.min(issuedAt, current.notAfter.getTime()), current.notAfter.getTime(), clock.now(), graceRatio, jitter, random));
  };
  async function renew(): Promise<void> {
    timer = undefined;
    if (closed) return;
    try {
      const next = await options.issue();
      if (closed) return;
      current = next;
      issuedAt = clock.now();
      failures = 0;
      listeners.emit(next, onError);
      scheduleFromCurrent();
    } catch (err) {
      if (closed) return;
      onError(err);
      schedule(Math.min(maxRetry, minRetry * 2 ** failures++));
    }
  }
  scheduleFromCurrent();

  return {
    get current() {
      return current;
    },
    onRotate: (listener) => listeners.add(listener),
    async close() {
      closed = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
      listeners.clear();
    },
  };
}

/** An identity that never changes (material supplied by the app or a test). */
export function staticIdentity(material: IdentityMaterial): WorkloadIdentity {
  return {
    current: material,
    onRotate: () => ({ dispose() {} }),
    async close() {},
  };
}

/**
 * A rotating identity issued by an in-process CA (the development CA): a new
 * key and certificate at start and at every renewal.
 */
export function identityFromCa(
  ca: CertificateAuthority,
  spiffeId: string,
  options: Omit<RotatingIdentityOptions, 'issue'> & { ttlMs?: number } = {},
): Promise<WorkloadIdentity> {
  const { ttlMs, ...rest } = options;
  return createRotatingIdentity({ ...rest, issue: () => ca.issueWorkload(spiffeId, ttlMs !== undefined ? { ttlMs } : {}) });
}
