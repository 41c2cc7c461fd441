#!/usr/bin/env node
/**
 * The `meshlet` command: `meshlet <command> [options]`, commands and options
 * in ./usage.ts (`meshlet --help`, `meshlet <command> --help`).
 *
 * Exit codes: 0 done (or stopped by SIGINT/SIGTERM), 1 the command failed
 * (a bad config at start, a port in use), 2 a usage error (unknown command
 * or option, a bad value) with the command's usage on stderr.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseDuration } from '../core/duration.js';
import { commandUsage, mainUsage } from './usage.js';

type Io = { out: (s: string) => void; err: (s: string) => void };
const processIo: Io = { out: (s) => void process.stdout.write(`${s}\n`), err: (s) => void process.stderr.write(`${s}\n`) };

/** A bad command line: printed with the usage of `command` (or the main usage), exit 2. */
export class UsageError extends Error {
  constructor(message: string, readonly command?: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The command failed after its arguments were accepted (bad config at start): exit 1. */
export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs, strict, with its errors turned into a {@link UsageError} for `command`. */
function parse<O extends Options>(command: string, args: readonly string[], options: O) {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new UsageError((err as Error).message, command);
  }
}

/** A port number 0–65535 from a flag's text; anything else is a usage error, never a random port. */
export function portArg(text: string, flag: string, command: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n > 65535) throw new UsageError(`${flag}: expected a port number 0-65535, got "${text}"`, command);
  return n;
}

const wantsHelp = (args: readonly string[]): boolean => args.includes('--help') || args.includes('-h');

/**
 * Runs the CLI; resolves to a closer for long-running commands, undefined when
 * done. Throws {@link UsageError} (exit 2) or {@link CommandError} / others (exit 1).
 */
export async function main(argv: readonly string[], io: Io = processIo): Promise<(() => Promise<void>) | undefined> {
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError('no command given');
  if (command === 'help' || command === '--help' || command === '-h') {
    const topic = rest[0] && commandUsage(rest[0]);
    io.out(topic || mainUsage());
    return undefined;
  }
  const usage = commandUsage(command);
  if (!usage) throw new UsageError(`unknown command "${command}"`);
  if (wantsHelp(rest)) {
    io.out(usage);
    return undefined;
  }
  switch (command) {
    case 'control-plane':
      return controlPlane(rest, io);
    case 'gateway': {
      const { runGatewayCli } = await import('../gateway/cli.js');
      // Arguments the gateway refuses are usage errors; a bad config is the gateway's own error (exit 1).
      const gw = await runGatewayCli(rest).catch((err: Error) => {
        throw /usage: meshlet gateway/.test(err.message) ? new UsageError(err.message.split('\n')[0]!, 'gateway') : err;
      });
      return () => gw.close();
    }
    case 'ratelimit': {
      const { values } = parse('ratelimit', rest, { config: { type: 'string' }, port: { type: 'string', default: '8081' }, host: { type: 'string', default: '127.0.0.1' }, redis: { type: 'string' } });
      if (!values.config) throw new UsageError('ratelimit needs --config <file|dir>', 'ratelimit');
      const port = portArg(values.port, '--port', 'ratelimit');
      const { createRateLimitService } = await import('../ratelimit/index.js');
      const rls = await createRateLimitService({ config: values.config, port, host: values.host, ...(values.redis && { redis: values.redis }) });
      io.out(`meshlet ratelimit: ShouldRateLimit on ${values.host}:${rls.port} (${values.redis ? `redis ${values.redis}` : 'in memory'})`);
      return () => rls.close();
    }
    case 'token': {
      const { values } = parse('token', rest, { 'ca-dir': { type: 'string' }, namespace: { type: 'string', default: 'default' }, 'service-account': { type: 'string' }, ttl: { type: 'string', default: '1h' } });
      if (!values['ca-dir'] || !values['service-account']) throw new UsageError('token needs --ca-dir <dir> and --service-account <sa>', 'token');
      const ttl = parseDuration(values.ttl);
      if (typeof ttl === 'string') throw new UsageError(`--ttl: ${ttl}`, 'token');
      const { openCaDir } = await import('../security/ca-dir.js');
      const ca = await openCaDir(values['ca-dir']);
      io.out(ca.mintBootstrapToken({ namespace: values.namespace, serviceAccount: values['service-account'], ttl }));
      return undefined;
    }
    case 'demo':
      return runDemo(rest);
    case 'analyze': {
      const { runAnalyze } = await import('./analyze.js');
      process.exitCode = await runAnalyze(rest, io);
      return undefined;
    }
  }
  throw new UsageError(`unknown command "${command}"`);
}

/** `meshlet control-plane`: refuses to start on a config that fails validation, as `meshlet gateway` does. */
async function controlPlane(rest: readonly string[], io: Io): Promise<() => Promise<void>> {
  const { values } = parse('control-plane', rest, {
    config: { type: 'string' }, port: { type: 'string', default: '15010' }, host: { type: 'string', default: '127.0.0.1' }, 'debug-port': { type: 'string' },
    'ca-dir': { type: 'string' }, plaintext: { type: 'boolean' }, 'ratelimit-config': { type: 'string' }, redis: { type: 'string' },
  });
  if (!values.config) throw new UsageError('control-plane needs --config <dir>', 'control-plane');
  if (values.redis && !values['ratelimit-config']) throw new UsageError('--redis needs --ratelimit-config <file|dir>', 'control-plane');
  if (values.plaintext && !values['ca-dir']) throw new UsageError('--plaintext only matters with --ca-dir (without a CA, ADS is plaintext)', 'control-plane');
  const port = portArg(values.port, '--port', 'control-plane');
  const debugPort = values['debug-port'] === undefined ? undefined : portArg(values['debug-port'], '--debug-port', 'control-plane');
  const { createControlPlane } = await import('../control-plane/index.js');
  // Until the first load is checked there is no previous config to keep serving: hold the
  // control plane's own "still serving the previous config" line and report the errors here.
  let starting = true;
  const log = (level: 'info' | 'warn' | 'error', message: string): void => {
    if (starting && level === 'error' && message.startsWith('config rejected')) return;
    if (level !== 'info' || process.env.MESHLET_TRACE?.split(',').includes('control-plane')) io.err(`meshlet control-plane ${level}: ${message}`);
  };
  const cp = await createControlPlane({
    config: values.config, port, host: values.host, log,
    ...(debugPort !== undefined && { debugPort }),
    ...(values['ca-dir'] && { ca: { dir: values['ca-dir'] } }),
    ...(values.plaintext && { plaintext: true }),
    ...(values['ratelimit-config'] && { ratelimit: { config: values['ratelimit-config'], ...(values.redis && { redis: values.redis }) } }),
  });
  const problem = cp.status().configError;
  const translation = Object.entries(cp.status().translationErrors);
  if (problem || translation.length > 0) {
    await cp.close();
    const lines = [
      ...(problem ? [problem.message] : []),
      ...translation.map(([namespace, message]) => `namespace ${namespace}: ${message}`),
    ];
    throw new CommandError(`control-plane: the config in ${values.config} is invalid, not starting:\n  ${lines.join('\n  ')}`);
  }
  starting = false;
  const extras = [
    values['ca-dir'] && `CA (${values['ca-dir']}) over TLS${values.plaintext ? ', plaintext ADS allowed' : ', ADS over TLS only'}`,
    values['ratelimit-config'] && `ShouldRateLimit (${values.redis ? `redis ${values.redis}` : 'in memory'})`,
  ].filter(Boolean).map((e) => ` + ${e}`).join('');
  io.out(`meshlet control-plane: ADS${extras} on ${values.host}:${cp.port}${cp.debugPort ? `, debug on 127.0.0.1:${cp.debugPort}` : ''}, config ${values.config}`);
  return () => cp.close();
}

/**
 * The demo lives in examples/ as TypeScript; run it with tsx from the package root.
 * Its options are checked here first, so a typo is a usage error rather than a child's stack trace.
 */
async function runDemo(args: readonly string[]): Promise<() => Promise<void>> {
  const { values } = parse('demo', args, { scenario: { type: 'string', short: 's' }, port: { type: 'string', short: 'p' } });
  if (values.port !== undefined) portArg(values.port, '--port', 'demo');
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const entry = join(root, 'examples', 'demo', 'main.ts');
  if (!existsSync(entry)) throw new CommandError('the demo ships with the source repository: run `npm run demo` there');
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: root, stdio: 'inherit' });
  child.on('exit', (code) => process.exit(code ?? 0));
  return async () => void child.kill('SIGINT');
}

/**
 * Runs `main` as the process: exit codes 0 / 1 / 2 as the header says. The
 * signal handlers are in place before anything starts, so a Ctrl-C that
 * arrives while a server is still starting stops it once it is up.
 */
export function runAsProcess(argv: readonly string[], io: Io = processIo): void {
  let close: (() => Promise<void>) | undefined;
  let stopping = false;
  const finish = (): void => void close!().then(() => process.exit(0), () => process.exit(1));
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    if (close) finish();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  main(argv, io).then((closer) => {
    if (!closer) {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      return;
    }
    close = closer;
    if (stopping) finish();
  }, (err: unknown) => {
    io.err(`meshlet: ${(err as Error).message}`);
    if (err instanceof UsageError) io.err(`\n${(err.command && commandUsage(err.command)) || mainUsage()}`);
    process.exit(err instanceof UsageError ? 2 : 1);
  });
}

const invokedDirectly = process.argv[1] !== undefined && fileURLToPath(import.meta.url).replace(/\.ts$/, '.js') === process.argv[1].replace(/\.ts$/, '.js');
if (invokedDirectly || process.argv[1]?.endsWith('/meshlet')) runAsProcess(process.argv.slice(2));
