/**
 * Shared settings of the property tests: one fixed seed and a small budget per
 * run so CI stays fast (all property tests together well under 30 s), and the
 * corpus of every input that ever failed, replayed on each run.
 * `FUZZ_RUNS=500 FUZZ_SEED=123 node --import tsx --test test/…/property-*.test.ts`
 * explores further; add what it finds to test/fixtures/fuzz-corpus/<suite>/.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc, { type Arbitrary, type Parameters } from 'fast-check';

/** The seed every property test starts from (issue #16). */
export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 16);

/** fast-check parameters: fixed seed, `runs` cases (or FUZZ_RUNS). */
export function fuzzParameters<T>(runs: number): Parameters<T> {
  return { seed: FUZZ_SEED, numRuns: Number(process.env.FUZZ_RUNS ?? runs), endOnFailure: true };
}

const CORPUS = new URL('../fixtures/fuzz-corpus/', import.meta.url).pathname;

/** The corpus files of one suite, name and text, in name order. */
export function corpus(suite: 'config' | 'xds' | 'headers'): Array<{ name: string; text: string }> {
  const dir = join(CORPUS, suite);
  return readdirSync(dir).filter((f) => !f.startsWith('.') && f !== 'README.md').sort()
    .map((name) => ({ name, text: readFileSync(join(dir, name), 'utf8') }));
}

/** Rejects when `promise` does not settle within `ms` (a hang guard, generous on purpose: not a speed check). */
export async function settlesWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not settle in ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/** Every path into a JSON value (objects and arrays), the root excluded. */
export function jsonPaths(value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [];
  if (Array.isArray(value)) value.forEach((v, i) => { out.push([...prefix, i], ...jsonPaths(v, [...prefix, i])); });
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) out.push([...prefix, k], ...jsonPaths(v, [...prefix, k]));
  }
  return out;
}

/** A deep copy of `value` with the node at `path` replaced by `replacement` (or removed when it is `undefined`). */
export function mutateAt(value: unknown, path: ReadonlyArray<string | number>, replacement: unknown): unknown {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (replacement === undefined) {
    if (Array.isArray(node)) node.splice(Number(last), 1);
    else delete node[last];
  } else node[last] = replacement;
  return copy;
}

/** Values that break schemas: wrong types, out of range, empty, huge, control characters, removal (`undefined`). */
export const hostileValue: Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, undefined, true, 0, -1, 1.5, 2 ** 31, 2 ** 53, 1e308, -1e308, '', ' ', '-1s', '0s', '99999999h', '1e9s',
      '[', '(?P<x', '\u0000', 'a\nb', '*', '*.', '..', '/', 'x'.repeat(300), {}, [], [null], [{}], { a: null }),
  fc.string({ maxLength: 12 }),
  fc.integer(),
  fc.double({ noNaN: true }),
  fc.array(fc.oneof(fc.string({ maxLength: 4 }), fc.integer(), fc.constant(null)), { maxLength: 3 }),
);
