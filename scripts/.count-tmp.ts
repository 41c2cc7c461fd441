import { analyze } from '../src/cli/analyze.js';
const base = '/work/wt-hosts/test/fixtures/istio/hosts';
for (const dir of ['testdata-config', 'dataset', 'samples', 'analyzers', 'crds']) {
  const r = await analyze([`${base}/${dir}`]);
  const c = { applied: 0, partial: 0, rejected: 0 } as Record<string, number>;
  for (const s of r.resources) c[s.status]!++;
  console.log(dir, r.resources.length, JSON.stringify(c));
  if (process.env.V) for (const s of r.resources) console.log('  ', s.status, s.kind, s.namespace + '/' + s.name, s.warnings.map((w) => `${w.path} ${w.code}`).join('; '));
}
