/**
 * What the mesh and its telemetry cost a service: an Express 5 app whose
 * handler calls an upstream. Three copies run in their own processes:
 *
 *   no mesh        undici.request through a Pool to the upstream's address
 *   telemetry off  app.use(mesh.express()) + mesh.request by service name, no metrics/spans
 *   traced         the same with istio_* metrics and tracing at 100% (a SERVER and a CLIENT
 *                  span per request; BatchSpanProcessor, spans counted and dropped)
 *
 * The load generator calls them in interleaved rounds with the same undici
 * Pool call. The upstream is a fourth process. `--parts` adds two more copies that tell the
 * traced service's cost apart, each against telemetry off: istio_* metrics with metadata exchange
 * and no tracer, and tracing 100% with metrics and metadata exchange off.
 *
 *   node --import tsx bench/http-service.ts [--seconds 20] [--rounds 20] [--concurrency 50] [--parts]
 *   SERVICE_PROF=/tmp/prof node --import tsx bench/http-service.ts   # CPU-profile both services
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { compiled } from './compiled.js';
import { compare, startUpstream } from './harness.js';

const { values } = parseArgs({ options: {
  seconds: { type: 'string', default: '20' }, rounds: { type: 'string', default: '20' }, concurrency: { type: 'string', default: '50' },
  service: { type: 'string' }, upstream: { type: 'string' }, parts: { type: 'boolean', default: false },
} });

type Kind = 'plain' | 'quiet' | 'traced' | 'metrics' | 'spans';

/** Each service copy: its name in the results, what its ratio is against, and which telemetry it runs. */
const KINDS: Record<Kind, { name: string; baseline?: Kind; tracing?: boolean; metrics?: boolean }> = {
  plain: { name: 'service, no mesh' },
  quiet: { name: 'service, telemetry off', baseline: 'plain' },
  traced: { name: 'service, metrics + tracing 100%', baseline: 'quiet', tracing: true, metrics: true },
  // --parts: the traced copy's two halves apart (metrics include metadata exchange, which labels them)
  metrics: { name: 'service, metrics + metadata exchange', baseline: 'quiet', metrics: true },
  spans: { name: 'service, tracing 100% only', baseline: 'quiet', tracing: true },
};

if (values.service !== undefined) await runService(values.service as Kind, Number(values.upstream));
else await runLoad();

/** Child: the Express service, meshed or not. */
async function runService(kind: Kind, upstreamPort: number): Promise<void> {
  const { default: express } = await import('express');
  const app = express();
  if (kind === 'plain') {
    const { Pool: UpstreamPool, request } = await import('undici');
    const pool = new UpstreamPool(`http://127.0.0.1:${upstreamPort}`, { pipelining: 1 });
    app.get('/add', async (_req, res) => {
      const upstream = await request(`http://127.0.0.1:${upstreamPort}/add?x=1&y=2`, { dispatcher: pool });
      res.type('text/plain').send(await upstream.body.text());
    });
    return serve(app);
  }
  const { tracing, metrics } = KINDS[kind];
  const { ExportResultCode } = await import('@opentelemetry/core');
  const { BasicTracerProvider, BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
  const { createMesh } = await compiled<typeof import('../src/index.js')>('index.js');
  const tracerProvider = tracing
    ? new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor({ export: (_spans, done) => done({ code: ExportResultCode.SUCCESS }), shutdown: async () => undefined })] })
    : undefined;
  const mesh = await createMesh({
    workload: { name: 'client', namespace: 'default', labels: { app: 'client', version: 'v1' } },
    ...(tracerProvider && { tracerProvider }),
    ...(!metrics && { telemetry: { metrics: false, metadataExchange: false } }),
    config: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: calculate }
spec:
  hosts: [calculate.default.svc.cluster.local]
  resolution: STATIC
  ports: [{ number: 8000, name: http }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${upstreamPort} } }]`,
  });
  app.use(mesh.express());
  app.get('/add', async (_req, res) => {
    const upstream = await mesh.request('http://calculate.default.svc.cluster.local:8000/add?x=1&y=2');
    res.type('text/plain').send(await upstream.body.text());
  });
  serve(app);
}

/** Listens, prints the port, answers CPU-usage requests from the load generator. */
function serve(app: { listen(port: number, host: string, cb: () => void): import('node:http').Server }): void {
  const server = app.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: (server.address() as AddressInfo).port })));
  server.keepAliveTimeout = 60_000;
  process.on('message', () => process.send!(process.cpuUsage()));
  process.on('disconnect', () => process.exit(0));
}

async function startService(kind: Kind, upstreamPort: number): Promise<{ port: number; child: ChildProcess }> {
  const child = fork(fileURLToPath(import.meta.url), ['--service', kind, '--upstream', String(upstreamPort)], { execArgv: ['--import', 'tsx', ...(process.env.SERVICE_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.SERVICE_PROF] : [])], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (l) => { rl.close(); resolve(l); });
    child.once('exit', (code) => reject(new Error(`service exited with ${code}`)));
  });
  return { port: (JSON.parse(line) as { port: number }).port, child };
}

/** Parent: the load generator. */
async function runLoad(): Promise<void> {
  const upstream = await startUpstream([0]);
  const kinds: Kind[] = ['plain', 'quiet', 'traced', ...(values.parts ? ['metrics', 'spans'] as const : [])];
  const services: Array<{ port: number; child: ChildProcess }> = [];
  for (const kind of kinds) services.push(await startService(kind, upstream.ports[0]!));
  const pools = services.map((s) => new Pool(`http://127.0.0.1:${s.port}`, { pipelining: 1 }));
  const call = (pool: Pool) => async () => {
    const res = await pool.request({ path: '/add', method: 'GET' });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  };
  const cpuOf = (child: ChildProcess) => new Promise<number>((resolve) => {
    child.once('message', (u) => resolve((u as NodeJS.CpuUsage).user + (u as NodeJS.CpuUsage).system));
    child.send('cpu');
  });
  const names = kinds.map((k) => KINDS[k].name);
  const cpu0 = await Promise.all(services.map((s) => cpuOf(s.child)));
  console.log(`Meshed Express service (inbound + one outbound call), ${values.seconds}s per variant in ${values.rounds} interleaved rounds, ${values.concurrency} in flight`);
  const results = await compare(kinds.map((k, i) => {
    const baseline = KINDS[k].baseline;
    return { name: names[i]!, call: call(pools[i]!), ...(baseline && { baseline: KINDS[baseline].name }) };
  }), { seconds: Number(values.seconds), rounds: Number(values.rounds), concurrency: Number(values.concurrency), warmupMs: 1000 });
  const cpu1 = await Promise.all(services.map((s) => cpuOf(s.child)));
  // Warm-up requests count too, so this slightly understates µs per request; every service alike.
  const perReq = names.map((n, i) => (cpu1[i]! - cpu0[i]!) / (results.get(n)!.rps * Number(values.seconds)));
  console.log(`\nservice process CPU per request: ${names.map((n, i) => `${n.replace('service, ', '')} ${perReq[i]!.toFixed(1)} µs`).join(', ')}`);
  await Promise.all(pools.map((p) => p.close()));
  // Disconnecting lets a service exit on its own (and write a --cpu-prof profile when SERVICE_PROF is set).
  await Promise.all(services.map((s) => new Promise((resolve) => { s.child.once('exit', resolve); s.child.disconnect(); })));
  upstream.stop();
}
