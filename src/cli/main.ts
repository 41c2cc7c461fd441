#!/usr/bin/env node
/**
 * The `meshlet` command:
 *
 *   meshlet control-plane --config <dir> [--port 15010] [--host 127.0.0.1] [--debug-port N]
 *                         [--ca-dir <dir> [--plaintext]] [--ratelimit-config <file|dir> [--redis redis://127.0.0.1:6379]]
 *   meshlet gateway --config <dir|file> [--port 8080] | --xds <host:port>
 *   meshlet ratelimit --config <file|dir> [--port 8081] [--redis redis://127.0.0.1:6379]
 *   meshlet token --ca-dir <dir> --namespace <ns> --service-account <sa> [--ttl 1h]
 *   meshlet demo [--scenario <name>]
 *   meshlet analyze <files|dirs…> [-o json|yaml]
 *
 * Servers bind 127.0.0.1 unless --host says otherwise (the control plane's debug port always does).
 * With --ca-dir, ADS requires TLS unless --plaintext allows plaintext streams too.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseDuration } from '../core/duration.js';

const usage = `usage: meshlet <command> [options]

commands:
  control-plane  serve Envoy v3 ADS from a directory of Istio YAML (--config, --port 15010, --debug-port);
                 --ca-dir hosts the CA on the same port (ADS then requires TLS; --plaintext allows plaintext too),
                 --ratelimit-config [--redis] the rate-limit service
  gateway        run an ingress gateway (--config or --xds, --port 8080)
  ratelimit      run the global rate-limit service (--config, --port 8081, --redis)
  token          mint a bootstrap token for a workload (--ca-dir, --namespace, --service-account, --ttl)
  demo           run the pet-shop demo (--scenario)
  analyze        check Istio YAML: per resource applied / partial / rejected, istioctl analyze's codes (-o json|yaml)
`;

type Io = { out: (s: string) => void; err: (s: string) => void };
const io: Io = { out: (s) => void process.stdout.write(`${s}\n`), err: (s) => void process.stderr.write(`${s}\n`) };

/** Runs the CLI; resolves to a closer for long-running commands. */
export async function main(argv: readonly string[]): Promise<(() => Promise<void>) | undefined> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'control-plane': {
      const { values } = parseArgs({
        args: rest,
        options: {
          config: { type: 'string' }, port: { type: 'string', default: '15010' }, host: { type: 'string', default: '127.0.0.1' }, 'debug-port': { type: 'string' },
          'ca-dir': { type: 'string' }, plaintext: { type: 'boolean' }, 'ratelimit-config': { type: 'string' }, redis: { type: 'string' },
        },
      });
      if (!values.config) throw new UsageError('control-plane needs --config <dir>');
      if (values.redis && !values['ratelimit-config']) throw new UsageError('--redis needs --ratelimit-config <file|dir>');
      if (values.plaintext && !values['ca-dir']) throw new UsageError('--plaintext only matters with --ca-dir (without a CA, ADS is plaintext)');
      const { createControlPlane } = await import('../control-plane/index.js');
      const cp = await createControlPlane({
        config: values.config, port: Number(values.port), host: values.host,
        ...(values['debug-port'] && { debugPort: Number(values['debug-port']) }),
        ...(values['ca-dir'] && { ca: { dir: values['ca-dir'] } }),
        ...(values.plaintext && { plaintext: true }),
        ...(values['ratelimit-config'] && { ratelimit: { config: values['ratelimit-config'], ...(values.redis && { redis: values.redis }) } }),
      });
      const extras = [
        values['ca-dir'] && `CA (${values['ca-dir']}) over TLS${values.plaintext ? ', plaintext ADS allowed' : ', ADS over TLS only'}`,
        values['ratelimit-config'] && `ShouldRateLimit (${values.redis ? `redis ${values.redis}` : 'in memory'})`,
      ].filter(Boolean).map((e) => ` + ${e}`).join('');
      io.out(`meshlet control-plane: ADS${extras} on ${values.host}:${cp.port}${cp.debugPort ? `, debug on 127.0.0.1:${cp.debugPort}` : ''}, config ${values.config}`);
      return () => cp.close();
    }
    case 'gateway': {
      const { runGatewayCli } = await import('../gateway/cli.js');
      const gw = await runGatewayCli(rest);
      return () => gw.close();
    }
    case 'ratelimit': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string' }, port: { type: 'string', default: '8081' }, host: { type: 'string', default: '127.0.0.1' }, redis: { type: 'string' } } });
      if (!values.config) throw new UsageError('ratelimit needs --config <file|dir>');
      const { createRateLimitService } = await import('../ratelimit/index.js');
      const rls = await createRateLimitService({ config: values.config, port: Number(values.port), host: values.host, ...(values.redis && { redis: values.redis }) });
      io.out(`meshlet ratelimit: ShouldRateLimit on ${values.host}:${rls.port} (${values.redis ? `redis ${values.redis}` : 'in memory'})`);
      return () => rls.close();
    }
    case 'token': {
      const { values } = parseArgs({ args: rest, options: { 'ca-dir': { type: 'string' }, namespace: { type: 'string', default: 'default' }, 'service-account': { type: 'string' }, ttl: { type: 'string', default: '1h' } } });
      if (!values['ca-dir'] || !values['service-account']) throw new UsageError('token needs --ca-dir <dir> and --service-account <sa>');
      const ttl = parseDuration(values.ttl);
      if (typeof ttl === 'string') throw new UsageError(`--ttl: ${ttl}`);
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
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.out(usage);
      return undefined;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

class UsageError extends Error {}

/** The demo lives in examples/ as TypeScript; run it with tsx from the package root. */
async function runDemo(args: readonly string[]): Promise<() => Promise<void>> {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const entry = join(root, 'examples', 'demo', 'main.ts');
  if (!existsSync(entry)) throw new UsageError('the demo ships with the source repository: run `npm run demo` there');
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: root, stdio: 'inherit' });
  child.on('exit', (code) => process.exit(code ?? 0));
  return async () => void child.kill('SIGINT');
}

const invokedDirectly = process.argv[1] !== undefined && fileURLToPath(import.meta.url).replace(/\.ts$/, '.js') === process.argv[1].replace(/\.ts$/, '.js');
if (invokedDirectly || process.argv[1]?.endsWith('/meshlet')) {
  main(process.argv.slice(2)).then((close) => {
    if (!close) return;
    const stop = () => void close().then(() => process.exit(0), () => process.exit(1));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  }, (err: unknown) => {
    io.err(`meshlet: ${(err as Error).message}`);
    if (err instanceof UsageError) io.err(usage);
    process.exit(err instanceof UsageError ? 2 : 1);
  });
}
