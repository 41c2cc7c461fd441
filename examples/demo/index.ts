/**
 * The pet-shop demo as a library: `startDemo()` starts db, image,
 * calculate v1/v2 and the client as child processes on 127.0.0.1, wires the
 * client's mesh to them, and returns the URL to open.
 */
import { request } from 'undici';
import { startService, type ServiceProcess } from './processes.js';
import { findScenario, scenarios } from './scenarios.js';
import type { Topology } from './topology.js';

export { scenarios, findScenario, type Scenario } from './scenarios.js';

/** Options of {@link startDemo}. */
export interface DemoOptions {
  /** The scenario applied at start (default `baseline`). */
  scenario?: string;
  /** The client's port: 0 (default) picks a free one; a taken fixed port falls back to a free one. */
  port?: number;
  /** Replaces the scenarios' 20 s sleep of the slow cat (tests). */
  sleepMs?: number;
  /** Progress lines while starting (default: none). */
  log?: (line: string) => void;
}

/** A running demo. */
export interface Demo {
  /** The page: `http://127.0.0.1:<port>/`. */
  readonly url: string;
  /** The running services and their loopback ports. */
  readonly services: ReadonlyArray<{ name: string; port: number; pid: number | undefined }>;
  /** Applies a scenario through the client (as the page's buttons do); rejects with the client's error. */
  applyScenario(name: string): Promise<void>;
  /** Stops every child process. Idempotent. */
  close(): Promise<void>;
}

/** Starts the demo; rejects (after stopping whatever started) when a service fails to come up. */
export async function startDemo(options: DemoOptions = {}): Promise<Demo> {
  const log = options.log ?? (() => {});
  const initial = options.scenario ?? 'baseline';
  if (!findScenario(initial)) throw new Error(`unknown scenario "${initial}"; known: ${scenarios.map((s) => s.name).join(', ')}`);
  const started: ServiceProcess[] = [];
  // Children die with the parent even when it exits without close() (an uncaught error).
  const killAll = (): void => {
    for (const s of started) s.child.kill('SIGKILL');
  };
  process.once('exit', killAll);
  const launch = async (name: string, file: string, env: Record<string, string>, framework: string): Promise<ServiceProcess> => {
    log(`starting ${name} (${framework})…`);
    const service = await startService(name, file, env);
    started.push(service);
    log(`  ${name} ready on 127.0.0.1 port ${service.port}`);
    return service;
  };
  const close = async (): Promise<void> => {
    process.off('exit', killAll);
    await Promise.all(started.map((s) => s.stop()));
  };
  try {
    // allSettled: when one fails, the others must have settled (and be in
    // `started`) before close() runs, or they would outlive the demo.
    const results = await Promise.allSettled([
      launch('calculate v1 (cat-plus)', 'calculate', { VERSION: 'cat-plus', PORT: '0' }, 'Fastify'),
      launch('calculate v2 (dog-multi)', 'calculate', { VERSION: 'dog-multi', PORT: '0' }, 'Fastify'),
      launch('db', 'db', { PORT: '0' }, 'Express'),
      launch('image', 'image', { PORT: '0' }, 'Fastify'),
    ]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    const [v1, v2, db, image] = results.map((r) => (r as PromiseFulfilledResult<ServiceProcess>).value);
    const topology: Topology = {
      calculate: [{ version: 'cat-plus', port: v1!.port }, { version: 'dog-multi', port: v2!.port }],
      db: { port: db!.port },
      image: { port: image!.port },
    };
    const client = await launch('client', 'client', {
      PORT: String(options.port ?? 0),
      PORT_FALLBACK: '1',
      DEMO_TOPOLOGY: JSON.stringify(topology),
      DEMO_SCENARIO: initial,
      ...(options.sleepMs !== undefined && { DEMO_SLEEP_MS: String(options.sleepMs) }),
    }, 'Express + meshlet');
    if (options.port && client.port !== options.port) log(`  port ${options.port} was taken; the client took a free one`);
    const url = `http://127.0.0.1:${client.port}/`;
    log(`  scenario ${findScenario(initial)!.name} applied`);
    return {
      url,
      services: started.map((s) => ({ name: s.name, port: s.port, pid: s.child.pid })),
      async applyScenario(name: string): Promise<void> {
        const res = await request(`${url}api/scenarios/${encodeURIComponent(name)}`, { method: 'POST' });
        const body = (await res.body.json()) as { error?: string };
        if (res.statusCode !== 200) throw new Error(body.error ?? `apply ${name}: HTTP ${res.statusCode}`);
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
