/**
 * Istio's own YAML, as a user would `kubectl apply -f` it one file at a
 * time: every Istio, Gateway API and Namespace document of istio/istio's
 * samples/ and of the validation dataset Istio's integration test expects
 * to be accepted (pkg/test/datasets/validation/dataset/), copied unchanged
 * under test/fixtures/istio/corpus/ (commit and copier in SOURCE.md there).
 * Each is applied, or applied with warnings that name the field and why
 * (`partial`); none is refused, none partial without a warning.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { analyze } from '../../src/cli/analyze.js';

const root = fileURLToPath(new URL('../fixtures/istio/corpus/', import.meta.url));
const walk = (dir: string): string[] => readdirSync(dir).sort().flatMap((f) => {
  const p = join(dir, f);
  return statSync(p).isDirectory() ? walk(p) : /\.ya?ml$/.test(f) ? [p] : [];
});

test('Istio\'s samples/ and validation dataset: every document applied or applied with named warnings, none refused', async (t) => {
  const counts: Record<string, Record<'applied' | 'partial' | 'rejected', number>> = {};
  const refused: string[] = [];
  const silent: string[] = [];
  let documents = 0;
  for (const file of walk(root)) {
    const source = relative(root, file).startsWith('samples') ? 'samples/' : 'validation dataset';
    const bySource = (counts[source] ??= { applied: 0, partial: 0, rejected: 0 });
    for (const s of (await analyze([file])).resources) {
      documents++;
      bySource[s.status]++;
      const id = `${relative(root, file)}: ${s.kind} ${s.namespace}/${s.name}`;
      if (s.status === 'rejected') refused.push(`${id}: ${s.warnings.map((w) => `${w.path}: ${w.message}`).join('; ')}`);
      if (s.status === 'partial' && (s.warnings.length === 0 || s.warnings.some((w) => !w.code || !w.message))) silent.push(id);
    }
  }
  for (const [source, c] of Object.entries(counts)) t.diagnostic(`${source}: ${c.applied} applied, ${c.partial} partial (with warnings), ${c.rejected} refused`);
  assert.ok(documents >= 120, `the corpus is there (${documents} documents)`);
  assert.deepEqual(refused, []);
  assert.deepEqual(silent, []);
});
