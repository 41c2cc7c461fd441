// Copies the Istio documents of istio/istio's samples/ and of its validation dataset
// (pkg/test/datasets/validation/dataset/) into test/fixtures/istio/corpus/, one file per
// source file, keeping only the API groups meshlet reads (Istio's, the Gateway API's,
// and v1 Namespaces). Data only: the documents are Istio's, unchanged.
//
//   node scripts/copy-istio-corpus.mjs <bare istio/istio git dir> [commit]
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const [gitDir, commit = 'HEAD'] = process.argv.slice(2);
if (!gitDir) throw new Error('usage: node scripts/copy-istio-corpus.mjs <istio git dir> [commit]');
const git = (...args) => execFileSync('git', ['--git-dir', gitDir, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
const sha = git('rev-parse', commit).trim();
const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'istio', 'corpus');
rmSync(out, { recursive: true, force: true });
const groups = ['networking.istio.io/', 'security.istio.io/', 'telemetry.istio.io/', 'extensions.istio.io/', 'gateway.networking.k8s.io/'];
const wanted = (d) => d && typeof d.apiVersion === 'string' && (groups.some((g) => d.apiVersion.startsWith(g)) || (d.apiVersion === 'v1' && d.kind === 'Namespace'));
const files = git('ls-tree', '-r', '--name-only', sha, 'samples/', 'pkg/test/datasets/validation/dataset/').split('\n').filter((f) => /\.ya?ml$/.test(f));
let kept = 0;
for (const file of files) {
  const text = git('show', `${sha}:${file}`);
  const docs = parseAllDocuments(text);
  // Helm templates and other non-YAML are skipped whole: they are not documents a user applies.
  if (docs.some((d) => d.errors.length > 0)) continue;
  const chosen = docs.filter((d) => wanted(d.toJS()));
  if (chosen.length === 0) continue;
  kept += chosen.length;
  const target = join(out, file);
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, chosen.map((d) => String(d).replace(/^---\n/, '')).join('---\n'));
}
writeFileSync(join(out, 'SOURCE.md'), `# Istio's own YAML\n\nFrom istio/istio at commit \`${sha}\`: every document of \`samples/\` and of\n\`pkg/test/datasets/validation/dataset/\` in the API groups meshlet reads (Istio's, the Gateway API's,\nv1 Namespaces), one file per source file at the same path. Copied by \`scripts/copy-istio-corpus.mjs\`;\nthe documents are Istio's, unchanged. ${kept} documents.\n`);
console.log(`${kept} documents from ${files.length} files at ${sha}`);
