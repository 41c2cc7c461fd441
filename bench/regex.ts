/**
 * Micro-benchmark (not run in CI): the cost of one full-match test of a
 * typical route regex with JavaScript's backtracking RegExp, the re2js
 * engine, and meshlet's compiled matcher (re2js, or a fast path for literal
 * and literal-prefix patterns). Run: node --import tsx bench/regex.ts
 */
import { RE2JS } from 're2js';
import { compileFullMatch } from '../src/core/regex.js';

const cases: Array<[pattern: string, value: string]> = [
  ['/api/v[0-9]+/users/[^/]+', '/api/v2/users/12345'],
  ['/api/v[0-9]+/users/[^/]+', '/static/img/logo.png'],
  ['(?i)/pets/[0-9]+', '/PETS/42'],
  ['dog|cat', 'dog'],
  ['/api/.*', '/api/v1/orders/42'],
  ['/healthz', '/healthz'],
];

function nsPerOp(fn: () => boolean, n = 300_000): number {
  let hits = 0;
  for (let i = 0; i < 20_000; i++) if (fn()) hits++;
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) if (fn()) hits++;
  const ns = Number(process.hrtime.bigint() - t) / n;
  if (hits < 0) console.log(hits); // keeps the loop observable
  return ns;
}

console.log(['pattern', 'value', 'RegExp ns', 're2js ns', 'meshlet ns', 'meshlet/RegExp'].join('\t'));
for (const [pattern, value] of cases) {
  const flags = pattern.startsWith('(?i)') ? 'i' : '';
  const js = new RegExp(`^(?:${flags ? pattern.slice(4) : pattern})$`, flags);
  const re = RE2JS.compile(pattern);
  const compiled = compileFullMatch(pattern);
  const a = nsPerOp(() => js.test(value));
  const b = nsPerOp(() => re.testExact(value));
  const c = nsPerOp(() => compiled(value));
  console.log([pattern, value, a.toFixed(0), b.toFixed(0), c.toFixed(0), (c / a).toFixed(1)].join('\t'));
}
