/**
 * The pet-shop demo as a library: `startDemo()` starts, on 127.0.0.1, a
 * control plane (in this process, like istiod) with the global rate-limit
 * service and the demo console beside it, then calculate v1/v2, db, image,
 * client and the ingress gateway as child processes. Every child's mesh
 * follows the control plane over xDS; a scenario is its Istio YAML written
 * into the control plane's config directory. Every process gets its
 * workload certificate from one development CA directory, so the calls
 * between services are mTLS.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { createControlPlane, type ControlPlane } from '../../src/control-plane/index.js';
import { createRateLimitService, type RateLimitService } from '../../src/ratelimit/index.js';
import { openCaDir } from '../../src/security/ca-dir.js';
import { ScenarioSwitch } from './client/scenario-switch.js';
import { ControlPlaneTarget } from './console/control-target.js';
import { GraphCollector } from './console/graph.js';
import { startConsole } from './console/server.js';
import { TraceStore } from './console/traces.js';
import { startService, type ServiceProcess } from './processes.js';
import { findScenario, scenarios, type ScenarioApi } from './scenarios.js';
import type { SpansMessage } from './services/workload.js';
import { platformConfig, type Topology } from './topology.js';

export { scenarios, findScenario, type Scenario, type ScenarioApi } from './scenarios.js';

/**
 * The rate-limit service's rules (envoyproxy/ratelimit format): what
 * scenario 07's global limit asks about — 5 requests per minute through the gateway.
 */
export const RATELIMIT_RULES = `domain: pets
descriptors:
  - key: generic_key
    value: gateway
    rate_limit:
      unit: minute
      requests_per_unit: 5
`;

/**
 * The rate-limit service's clock. envoyproxy/ratelimit counts in fixed windows
 * aligned to the clock (a minute starts at :00), so in Istio the first minute
 * after applying the limit may allow more than 5 — the talk warns about it.
 * The demo's clock jumps to the start of a fresh window whenever a rate-limit
 * scenario is applied, so "the 6th access within a minute" holds from the
 * first access. It only ever moves forward, so no counter is ever reused.
 */
class RateLimitClock {
  private skewMs = 0;
  readonly now = (): number => Date.now() + this.skewMs;

  /** Moves the clock forward to the next minute boundary (a window no request has counted in). */
  newWindow(): void {
    const t = this.now();
    this.skewMs += 60_000 - (t % 60_000);
  }
}

/** Options of {@link startDemo}. */
export interface DemoOptions {
  /** The scenario applied at start (default `baseline`). */
  scenario?: string;
  /** The scenarios' dialect: Istio VirtualServices (default) or Gateway API HTTPRoutes (`gateway`). */
  api?: ScenarioApi;
  /** The gateway's port (the URL): 0 (default) picks a free one; a taken fixed port falls back to a free one. */
  port?: number;
  /** Replaces the scenarios' sleeps of the slow cat (tests). */
  sleepMs?: number;
  /** Progress lines while starting (default: none). */
  log?: (line: string) => void;
  /** How often the service graph samples the workloads' metrics, ms (default 2000). */
  graphIntervalMs?: number;
  /** mTLS between the services, from a development CA shared by every process (default true). */
  mtls?: boolean;
  /**
   * Stops starting (Ctrl-C before "ready"): the processes started so far are
   * stopped, the temporary directories (the CA's private key among them)
   * removed, and startDemo rejects.
   */
  signal?: AbortSignal;
}

/** A running demo. */
export interface Demo {
  /** The page, through the ingress gateway: `http://127.0.0.1:<port>/`. */
  readonly url: string;
  /** The demo console on its own port (`http://127.0.0.1:<port>/console/`): never behind the gateway's rate limit. */
  readonly consoleUrl: string;
  /** The running processes and their loopback ports. */
  readonly services: ReadonlyArray<{ name: string; port: number; pid: number | undefined; adminPort: number | undefined }>;
  /** The control plane (ADS port, status, syncz). */
  readonly controlPlane: ControlPlane;
  /** The directory the control plane watches; scenarios are written to `mesh.yaml` in it. */
  readonly configDir: string;
  /** Recent spans of every workload. */
  readonly traces: TraceStore;
  /** Applies a scenario (what the page's buttons do); resolves once every workload has the config. */
  applyScenario(name: string): Promise<void>;
  /** Stops every child process, the control plane and the console. Idempotent. */
  close(): Promise<void>;
}

/** Starts the demo; rejects (after stopping whatever started) when a service fails to come up. */
export async function startDemo(options: DemoOptions = {}): Promise<Demo> {
  const log = options.log ?? (() => {});
  const initial = options.scenario ?? 'baseline';
  if (!findScenario(initial)) throw new Error(`unknown scenario "${initial}"; known: ${scenarios.map((s) => s.name).join(', ')}`);
  const started: ServiceProcess[] = [];
  options.signal?.throwIfAborted();
  // Children die with the parent even when it exits without close() (an uncaught error).
  const killAll = (): void => {
    for (const s of started) s.child.kill('SIGKILL');
  };
  process.once('exit', killAll);
  const traces = new TraceStore();
  const rateLimitClock = new RateLimitClock();
  const graph = new GraphCollector({ intervalMs: options.graphIntervalMs ?? 2000 });
  const onMessage = (message: unknown): void => {
    const m = message as Partial<SpansMessage>;
    if (m?.type === 'spans' && Array.isArray(m.spans)) traces.add(m.spans);
  };
  let switcher: ScenarioSwitch | undefined;
  let configDir: string | undefined;
  let caDir: string | undefined;
  let cp: ControlPlane | undefined;
  let rls: RateLimitService | undefined;
  let consoleServer: Server | undefined;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => (closing ??= (async () => {
    process.off('exit', killAll);
    graph.close();
    await Promise.all(started.map((s) => s.stop()));
    consoleServer?.closeAllConnections();
    await Promise.all([
      cp?.close(),
      rls?.close(),
      consoleServer && new Promise((resolve) => consoleServer!.close(resolve)),
    ]);
    if (configDir) await rm(configDir, { recursive: true, force: true });
    if (caDir) await rm(caDir, { recursive: true, force: true });
  })());
  const checkAborted = (): void => options.signal?.throwIfAborted();

  const launch = async (name: string, file: string, env: Record<string, string>, framework: string): Promise<ServiceProcess> => {
    log(`starting ${name} (${framework})…`);
    const service = await startService(name, file, env, onMessage, undefined, options.signal);
    started.push(service);
    if (service.adminPort !== undefined) graph.add({ workload: workloadOf(name), adminPort: service.adminPort });
    log(`  ${name} ready on 127.0.0.1 port ${service.port}`);
    return service;
  };
  try {
    configDir = await mkdtemp(join(tmpdir(), 'meshlet-demo-'));
    checkAborted();
    const mtls = options.mtls ?? true;
    const env: Record<string, string> = {};
    if (mtls) {
      // The root is created here, once: children starting together must not race to create it.
      caDir = await mkdtemp(join(tmpdir(), 'meshlet-demo-ca-'));
      await openCaDir(caDir);
      checkAborted();
      env.DEMO_CA = caDir;
      log(`development CA in ${caDir}: every workload gets its certificate from it (mTLS between services)`);
    }
    let shopUrl: string | undefined;
    const consoleStarted = await startConsole({ switcher: () => switcher, traces, graph, shopUrl: () => shopUrl });
    consoleServer = consoleStarted.server;
    rls = await createRateLimitService({ config: RATELIMIT_RULES, port: 0, now: rateLimitClock.now });
    cp = await createControlPlane({ config: configDir, port: 0, host: '127.0.0.1', debounceMs: 50 });
    log(`control plane serving ADS on 127.0.0.1 port ${cp.port} (config ${configDir}); rate-limit service on port ${rls.port}; demo console on port ${consoleStarted.port}`);
    const xds = { ...env, DEMO_XDS: `127.0.0.1:${cp.port}` };
    const target = new ControlPlaneTarget(cp, configDir);
    // A first config before anyone connects, so every workload's first fetch is complete at once.
    const firstConfig = platformConfig({ calculate: [], db: { port: 0 }, image: { port: 0 }, console: { port: consoleStarted.port }, ratelimit: { port: rls.port } }, ['console', 'ratelimit']);
    await target.apply(firstConfig);
    // Every process at once: starting is CPU-bound (loading the mesh), and
    // none needs another's port to start — the control plane tells them later.
    // allSettled: when one fails, the others must have settled (and be in
    // `started`) before close() runs, or they would outlive the demo.
    const results = await Promise.allSettled([
      launch('calculate v1 (cat-plus)', 'calculate', { ...xds, VERSION: 'cat-plus', PORT: '0' }, 'Fastify + gRPC'),
      launch('calculate v2 (dog-multi)', 'calculate', { ...xds, VERSION: 'dog-multi', PORT: '0' }, 'Fastify + gRPC'),
      launch('db', 'db', { ...xds, PORT: '0' }, 'Express'),
      launch('image', 'image', { ...xds, PORT: '0' }, 'Fastify'),
      launch('client', 'client', { ...xds, PORT: '0', DEMO_CONSOLE: `http://127.0.0.1:${consoleStarted.port}` }, 'Express'),
      launch('istio-ingressgateway', 'gateway', { ...xds, PORT: String(options.port ?? 0), PORT_FALLBACK: '1', DEMO_CONFIG: firstConfig }, 'meshlet/gateway'),
    ]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    checkAborted();
    const [v1, v2, db, image, client, gateway] = results.map((r) => (r as PromiseFulfilledResult<ServiceProcess>).value);
    if (options.port && gateway!.port !== options.port) log(`  port ${options.port} was taken; the gateway took a free one`);
    const topology: Topology = {
      calculate: [v1!, v2!].map((c, i) => ({ version: i === 0 ? 'cat-plus' as const : 'dog-multi' as const, port: c.port, ...(c.grpcPort !== undefined && { grpcPort: c.grpcPort }), ...(c.adminPort !== undefined && { adminPort: c.adminPort }) })),
      db: { port: db!.port },
      image: { port: image!.port },
      client: { port: client!.port },
      console: { port: consoleStarted.port },
      ratelimit: { port: rls.port },
      mtls,
    };
    const meshed = started.filter((s) => s.adminPort !== undefined);
    switcher = new ScenarioSwitch({
      target,
      topology,
      ...(options.sleepMs !== undefined && { sleepMsOverride: options.sleepMs }),
      ...(options.api && { api: options.api }),
      installSecurity: (yaml) => installSecurity(meshed, yaml),
      onApplied: (scenario) => {
        traces.scenario = scenario.name;
        // A rate-limit scenario counts from the moment it is applied (see RateLimitClock).
        if (scenario.counts) rateLimitClock.newWindow();
      },
    });
    await switcher.apply(initial);
    checkAborted();
    shopUrl = `http://127.0.0.1:${gateway!.port}/`;
    log(`scenario ${findScenario(initial)!.name} applied through the control plane${options.api === 'gateway' ? ' (Gateway API HTTPRoutes)' : ''}`);
    graph.start();
    const controlPlane = cp;
    const dir = configDir;
    const active = switcher;
    return {
      url: `http://127.0.0.1:${gateway.port}/`,
      consoleUrl: `http://127.0.0.1:${consoleStarted.port}/console/`,
      services: started.map((s) => ({ name: s.name, port: s.port, pid: s.child.pid, adminPort: s.adminPort })),
      controlPlane,
      configDir: dir,
      traces,
      async applyScenario(name: string): Promise<void> {
        await active.apply(name);
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * Waits, through each workload's admin port, until the control plane has
 * pushed a scenario's PeerAuthentication and AuthorizationPolicy (they travel
 * over xDS in the inbound listener).
 */
async function installSecurity(workloads: readonly ServiceProcess[], yaml: string): Promise<void> {
  await Promise.all(workloads.map(async (w) => {
    const res = await fetch(`http://127.0.0.1:${w.adminPort}/security`, { method: 'POST', body: yaml, signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${w.name}: security config refused: ${text}`);
  }));
}

/** The workload name of a launched process (what its metrics call it). */
function workloadOf(name: string): string {
  if (name.startsWith('calculate v1')) return 'calculate-v1';
  if (name.startsWith('calculate v2')) return 'calculate-v2';
  return name;
}
