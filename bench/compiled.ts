/**
 * The package as users run it: benchmarks load meshlet from the compiled
 * `dist/` (what `npm run build` and `npm ci` produce), not `src/` through tsx.
 * tsx's on-the-fly transform is not what ships — among other things it wraps
 * every function expression in a naming helper that runs on each evaluation,
 * i.e. per request for a closure made per request.
 *
 *   const { createMesh } = await compiled<typeof import('../src/index.js')>('index.js');
 */
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Imports `dist/<path>`, refusing a `dist/` older than `src/` (run `npm run build`). */
export async function compiled<T>(path: string): Promise<T> {
  const built = statSync(`${root}dist/${path}`, { throwIfNoEntry: false })?.mtimeMs;
  if (built === undefined) throw new Error(`dist/${path} is missing: run \`npm run build\` first (benchmarks measure the compiled package)`);
  const newest = newestSource(`${root}src`);
  if (newest > built) throw new Error(`dist/ is older than src/: run \`npm run build\` first (benchmarks measure the compiled package)`);
  return (await import(`${root}dist/${path}`)) as T;
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}
