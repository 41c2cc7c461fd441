// Runs every test/**/*.test.ts with node:test through tsx, two files at a time
// (the machine has two cores), the slowest first. Extra arguments narrow the set by substring.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

// The files that take 30–80 s each (real browsers, whole demo process trees, a TypeScript consumer
// build) go first: started last, one of them would run alone on one core while the other sits idle.
const SLOW_FIRST = ['test/demo/browser', 'test/demo/demo.test', 'test/types/consumer', 'test/demo/gateway-api'];
const rank = (f) => {
  const i = SLOW_FIRST.findIndex((s) => f.startsWith(s));
  return i === -1 ? SLOW_FIRST.length : i;
};

const filters = process.argv.slice(2);
const files = findTests('test').sort().sort((a, b) => rank(a) - rank(b)).filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
