/**
 * Starts a real, throwaway redis-server on 127.0.0.1 for a test (no
 * persistence, a free port) and kills it afterwards. Returns undefined when
 * the binary is absent, so suites can skip with a clear message:
 *
 * ```ts
 * const redis = await startRedis();
 * test('shared quota', { skip: redis ? false : REDIS_SKIP }, async () => { … });
 * after(() => redis?.close());
 * ```
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createConnection, createServer } from 'node:net';

/** A running redis-server owned by the test. */
export interface TestRedis {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly process: ChildProcess;
  /** Kills the server and waits for it to exit; idempotent. */
  close(): Promise<void>;
}

/** The skip message for suites when redis-server is not installed. */
export const REDIS_SKIP = 'redis-server not installed (apt-get install -y redis-server)';

/** The redis-server binary, or undefined when it is not on PATH (or REDIS_SERVER). */
export function redisServerBinary(): string | undefined {
  const bin = process.env.REDIS_SERVER ?? 'redis-server';
  const probe = spawnSync(bin, ['--version'], { stdio: 'ignore' });
  return probe.error || probe.status !== 0 ? undefined : bin;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Sends PING over a raw socket until redis answers PONG or the deadline passes. */
async function waitForPong(port: number, deadline: number, child: ChildProcess): Promise<boolean> {
  while (Date.now() < deadline && child.exitCode === null) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' });
      const done = (v: boolean) => {
        socket.destroy();
        resolve(v);
      };
      socket.setTimeout(500, () => done(false));
      socket.once('error', () => done(false));
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.once('data', (d) => done(d.toString().startsWith('+PONG')));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

/**
 * Spawns `redis-server --port <free> --bind 127.0.0.1 --save '' --appendonly no`
 * and resolves once it answers PING (retrying on another port if one was taken).
 * @returns undefined when redis-server is not installed.
 */
export async function startRedis(): Promise<TestRedis | undefined> {
  const bin = redisServerBinary();
  if (!bin) return undefined;
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (await waitForPong(port, Date.now() + 5000, child)) {
      let closing: Promise<void> | undefined;
      return {
        port,
        url: `redis://127.0.0.1:${port}`,
        process: child,
        close() {
          closing ??= (async () => {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
            await exited;
          })();
          return closing;
        },
      };
    }
    lastError = output.slice(-500);
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  }
  throw new Error(`redis-server did not start: ${lastError}`);
}
