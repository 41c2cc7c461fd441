/**
 * `npm run demo` (examples/demo/main.ts) before it is ready: a bad option is a
 * usage error without a stack trace, and Ctrl-C while the processes start
 * leaves no temporary directory behind (the development CA's private key is
 * in one of them).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../../examples/demo/main.ts', import.meta.url));

function start(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, out: () => out, err: () => err };
}

describe('npm run demo: options and Ctrl-C before ready', { timeout: 120_000 }, () => {
  it('bad options exit 2 with the usage, no stack trace', async () => {
    for (const [args, message] of [[['--scenarios', 'x'], /Unknown option '--scenarios'/], [['--port', 'abc'], /--port: expected a port number/], [['--scenario', 'nope'], /unknown scenario "nope"; known: baseline, timeout/]] as const) {
      const run = start([...args]);
      assert.equal(await run.exited, 2, run.err());
      assert.match(run.err(), message);
      assert.match(run.err(), /usage: npm run demo/);
      assert.doesNotMatch(run.err(), /^\s+at /m, 'no stack trace');
    }
  });

  it('--help lists the scenarios in the talk\'s order and exits 0', async () => {
    const run = start(['--help']);
    assert.equal(await run.exited, 0);
    const sections = [...run.out().matchAll(/^ {2}[a-z-]+ +(\d\d) /gm)].map((m) => m[1]!);
    assert.ok(sections.length >= 10, run.out());
    assert.deepEqual(sections, [...sections].sort());
  });

  it('Ctrl-C while the processes start stops them and removes the temporary directories', async (t) => {
    const run = start(['--port', '0']);
    t.after(() => void (run.child.exitCode === null && run.child.kill('SIGKILL')));
    // The CA directory and the config directory exist once the children are being started.
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (/starting client/.test(run.out())) resolve();
      };
      run.child.stdout.on('data', check);
      void run.exited.then(() => reject(new Error(`exited early:\n${run.out()}\n${run.err()}`)));
    });
    const ca = /development CA in (\S+):/.exec(run.out())![1]!;
    const config = /\(config (\S+)\)/.exec(run.out())![1]!;
    assert.ok(existsSync(ca) && existsSync(config), 'created before the children start');
    assert.doesNotMatch(run.out(), /ready — open/, 'still starting');
    run.child.kill('SIGINT');
    const code = await run.exited;
    assert.notEqual(code, 0, 'a start that was stopped is not a success');
    assert.match(run.out(), /SIGINT: stopping while starting/);
    assert.equal(existsSync(ca), false, `${ca} (the CA's private key) removed`);
    assert.equal(existsSync(config), false, `${config} removed`);
  });
});
