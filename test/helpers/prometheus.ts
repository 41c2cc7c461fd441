/**
 * A real Prometheus (Debian's `prometheus`) for tests: scrapes the given
 * meshlet admin ports every second on 127.0.0.1 and answers instant queries.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Whether the binary is installed (tests skip with a message when it is not). */
export const hasPrometheus = spawnSync('prometheus', ['--version'], { stdio: 'ignore' }).status === 0;

/** One instant-query result. */
export interface PromSeries {
  metric: Record<string, string>;
  value: [number, string];
}

/** A running Prometheus. */
export interface TestPrometheus {
  /** An instant query's result; `[]` until the server is up (or when the query fails). */
  query(q: string): Promise<PromSeries[]>;
  /** Whether the process has exited. */
  readonly exited: boolean;
  /** The last of what it logged (for assertion messages). */
  log(): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Starts Prometheus scraping `/stats/prometheus` of each admin port (job `meshlet`). */
export async function startPrometheus(adminPorts: readonly number[]): Promise<TestPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'meshlet-prom-'));
  const port = await freePort();
  writeFileSync(join(dir, 'prometheus.yml'), [
    'global: { scrape_interval: 1s, evaluation_interval: 1s }',
    'scrape_configs:',
    '  - job_name: meshlet',
    '    metrics_path: /stats/prometheus',
    `    static_configs: [ { targets: [${adminPorts.map((p) => `'127.0.0.1:${p}'`).join(', ')}] } ]`,
    '',
  ].join('\n'));
  const prom = spawn('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  prom.stderr.on('data', (d: Buffer) => { if (log.length < 20000) log += d.toString(); });
  const exited = new Promise<void>((resolve) => prom.once('exit', () => resolve()));
  return {
    async query(q) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
        const body = (await res.json()) as { status: string; data?: { result: PromSeries[] } };
        return body.status === 'success' ? body.data!.result : [];
      } catch {
        return []; // not up yet
      }
    },
    get exited() {
      return prom.exitCode !== null;
    },
    log: () => log.slice(-2000),
    async stop() {
      prom.kill('SIGTERM');
      const killer = setTimeout(() => prom.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
