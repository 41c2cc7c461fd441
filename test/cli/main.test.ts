/**
 * The `meshlet` command as a new user meets it: help for every command, exit
 * codes (0 done, 1 failed, 2 usage), no stack traces for a typo, ports that
 * are numbers, and a control plane that refuses to start on a bad config.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runGatewayCli } from '../../src/gateway/cli.js';
import { main, UsageError } from '../../src/cli/main.js';
import { COMMANDS, commandUsage, mainUsage } from '../../src/cli/usage.js';

const cli = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** Runs `meshlet …` as a process; resolves with its exit code and output. */
function run(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`meshlet ${args.join(' ')} still running after ${timeoutMs} ms:\n${out}\n${err}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

/** Captures what `main` prints. */
function capture() {
  const lines: string[] = [];
  return { io: { out: (s: string) => void lines.push(s), err: (s: string) => void lines.push(s) }, text: () => lines.join('\n') };
}

/** The column where the descriptions of an options/commands block start, per line. */
function descriptionColumns(block: string): number[] {
  return block.split('\n').filter((l) => /^ {2}\S/.test(l)).map((l) => /^ {2}\S.*? {2,}(?=\S)/.exec(l)![0].length);
}

describe('meshlet CLI', () => {
  it('bare `meshlet` is a usage error (exit 2, usage on stderr); `meshlet --help` exits 0', async () => {
    const [bare, help] = await Promise.all([run([]), run(['--help'])]);
    assert.equal(bare.code, 2);
    assert.equal(bare.out, '');
    assert.match(bare.err, /no command given[\s\S]*usage: meshlet <command>/);
    assert.equal(help.code, 0);
    assert.match(help.out, /usage: meshlet <command>/);
    for (const c of COMMANDS) assert.match(help.out, new RegExp(`^ {2}${c.name} +\\S`, 'm'), c.name);
  });

  it('`meshlet <command> --help` and `-h` print that command\'s options and exit 0, for every command', async () => {
    for (const c of COMMANDS) {
      for (const flag of ['--help', '-h']) {
        const { io, text } = capture();
        assert.equal(await main([c.name, flag], io), undefined, `${c.name} ${flag} starts nothing`);
        assert.match(text(), new RegExp(`^usage: meshlet ${c.name} `), `${c.name} ${flag}`);
        for (const o of c.options) assert.ok(text().includes(o.flag), `${c.name}: ${o.flag}`);
      }
      const { io, text } = capture();
      await main(['help', c.name], io);
      assert.equal(text(), commandUsage(c.name));
    }
    const { code, out } = await run(['control-plane', '--help']);
    assert.equal(code, 0);
    assert.match(out, /--config <dir>/);
  });

  it('help columns line up: every description in a block starts in the same column', () => {
    const blocks = [mainUsage().split('commands:\n')[1]!.split('\n\n')[0]!, ...COMMANDS.map((c) => commandUsage(c.name)!.split('options:\n')[1]!.split('\n\n')[0]!)];
    for (const block of blocks) {
      const columns = descriptionColumns(block);
      assert.ok(columns.length >= 2, block);
      assert.equal(new Set(columns).size, 1, `misaligned:\n${block}`);
    }
  });

  it('the gateway help lists exactly the flags `meshlet gateway` accepts', async () => {
    const refused = await runGatewayCli(['--no-such-flag']).then(() => assert.fail('accepted an unknown flag'), (err: Error) => err.message);
    const flags = (text: string): string[] => [...new Set([...text.matchAll(/--[a-z][a-z-]+/g)].map((m) => m[0]))].filter((f) => f !== '--help' && f !== '--no-such-flag').sort();
    assert.deepEqual(flags(commandUsage('gateway')!), flags(refused));
  });

  it('unknown commands and options are usage errors naming the command, never a stack trace', async () => {
    await assert.rejects(main(['nope'], capture().io), (err: unknown) => err instanceof UsageError && /unknown command "nope"/.test(err.message));
    await assert.rejects(main(['ratelimit', '--bogus'], capture().io), (err: unknown) => err instanceof UsageError && err.command === 'ratelimit');
    await assert.rejects(main(['gateway', '--config', 'x', '--bogus'], capture().io), (err: unknown) => err instanceof UsageError && err.command === 'gateway');
    const demo = await run(['demo', '--scenarios', 'x']);
    assert.equal(demo.code, 2);
    assert.match(demo.err, /Unknown option '--scenarios'[\s\S]*usage: meshlet demo/);
    assert.doesNotMatch(demo.err, /^\s+at /m, 'no stack trace');
  });

  it('--port must be a port number: "abc", "-1", "65536" and "8080x" are refused, not a random port', async () => {
    for (const port of ['abc', '-1', '65536', '8080x', '']) {
      for (const args of [['control-plane', '--config', '.'], ['ratelimit', '--config', '.'], ['demo']]) {
        await assert.rejects(main([...args, `--port=${port}`], capture().io), (err: unknown) => err instanceof UsageError && /--port: expected a port number/.test(err.message), `${args[0]} --port ${port}`);
      }
    }
    await assert.rejects(main(['control-plane', '--config', '.', '--debug-port', 'x'], capture().io), /--debug-port: expected a port number/);
    const { code, err } = await run(['ratelimit', '--config', '.', '--port', 'abc']);
    assert.equal(code, 2);
    assert.match(err, /--port: expected a port number 0-65535, got "abc"[\s\S]*usage: meshlet ratelimit/);
  });

  it('control-plane on a bad config at start exits 1 with the errors, and never claims a previous config', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'meshlet-cli-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'bad.yaml'), `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: bad, namespace: default }
spec:
  hosts: [calculate]
  http:
    - route: [{ destination: { host: calculate }, weight: -5 }]
`);
    const { code, out, err } = await run(['control-plane', '--config', dir, '--port', '0']);
    assert.equal(code, 1, `${out}\n${err}`);
    assert.match(err, /config in .* is invalid, not starting/);
    assert.match(err, /VirtualService default\/bad: spec\.http\[0\]\.route\[0\]\.weight/);
    assert.doesNotMatch(err, /previous config/);
    assert.doesNotMatch(out, /ADS .* on 127\.0\.0\.1/, 'never announced as serving');
  });

  it('control-plane on a good config starts, says where, and stops on SIGINT with exit 0', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'meshlet-cli-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'dr.yaml'), 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: calculate, namespace: default }\nspec: { host: calculate }\n');
    const child = spawn(process.execPath, ['--import', 'tsx', cli, 'control-plane', '--config', dir, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => void (child.exitCode === null && child.kill('SIGKILL')));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (s: string) => {
        out += s;
        if (/ADS on 127\.0\.0\.1:\d+/.test(out)) resolve();
      });
      void exited.then(() => reject(new Error(`exited before serving:\n${out}`)));
    });
    child.kill('SIGINT');
    assert.equal(await exited, 0);
  });
});
