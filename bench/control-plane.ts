/**
 * Control-plane scale bench: 1,000 services (10 namespaces × 100, each with
 * v1/v2 subsets and a 90/10 VirtualService) and 1,000 simulated ADS clients
 * (raw streams in a worker thread, bench/control-plane-clients.ts, that subscribe by name as gRPC's A27 client
 * does — 10 services each, 5 of them the ones every change touches — and ACK
 * everything), over State-of-the-World and then over Delta xDS
 * (`--sotw` or `--delta` runs one only; both: each in a process of its own), with a side-by-side summary. Wildcard subscriptions of all 1,000 services (~2 MB per
 * client per SotW response set) are what Delta xDS is for; `--wildcard` runs them.
 * Prints the time to serve every client, memory per client, and push
 * latency (file write → every client has the new RDS/EDS version) p50/p99/max
 * after changing one service in one file (`--all-namespaces`: in each of the
 * 10 files at once).
 *
 *   node --expose-gc --import tsx bench/control-plane.ts [clients] [services] [--all-namespaces] [--wildcard] [--sotw|--delta] [--grpc-js-clients]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { compiled } from './compiled.js';
import { Worker } from 'node:worker_threads';
import ts from 'typescript';
import type { ClientsSetup, FromWorker, ToWorker } from './control-plane-clients.js';

const { createControlPlane } = await compiled<typeof import('../src/control-plane/index.js')>('control-plane/index.js');
const { TYPE_URL } = await compiled<typeof import('../src/config/envoy.js')>('config/envoy.js');

const numeric = process.argv.slice(2).filter((a) => /^\d+$/.test(a));
const CLIENTS = Number(numeric[0] ?? 1000);
const SERVICES = Number(numeric[1] ?? 1000);
const NAMESPACES = 10;
const CHANNELS = 10;
const ROUNDS = 5;
/**
 * Changes before the measured ones, printed but not counted (`WARMUP=0`
 * counts every one): V8 is still compiling the push path during the first
 * pushes after a start (39, 19 and 11 functions optimized during changes
 * 1–3, 2–9 during each later one; those pushes took 52–89 ms, later ones
 * 29–45), which a control plane pays once per start, not per change. The
 * summary shows the first change apart.
 */
const WARMUP = Number(process.env.WARMUP ?? 3);
const WILDCARD = process.argv.includes('--wildcard');
/** The simulated clients' streams through grpc-js clients rather than bare HTTP/2 sessions (the same bytes on the wire). */
const GRPC_JS_CLIENTS = process.argv.includes('--grpc-js-clients');
/** Change one service in every namespace's file per round (10 files) instead of one file. */
const ALL_NAMESPACES = process.argv.includes('--all-namespaces');
const CALLS_PER_CLIENT = 10;
type Protocol = 'sotw' | 'delta';
const PROTOCOLS: Protocol[] = process.argv.includes('--sotw') ? ['sotw'] : process.argv.includes('--delta') ? ['delta'] : ['sotw', 'delta'];

interface Summary { protocol: Protocol; initialMs: number; firstMs: number; heapKiB: number; externalKiB: number; p50: number; p99: number; max: number; serverMs: number; bytesPerPush: number }

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function serviceYaml(ns: string, i: number, v2Weight: number, extraEndpoint = false): string {
  const host = `svc-${i}.${ns}.svc.cluster.local`;
  const port = 10_000 + i;
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: svc-${i}, namespace: ${ns} }
spec:
  hosts: [${host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  endpoints:
    - { address: 10.0.${i % 250}.1, ports: { http: ${port} }, labels: { version: v1 } }
    - { address: 10.0.${i % 250}.2, ports: { http: ${port} }, labels: { version: v2 } }${extraEndpoint ? `
    - { address: 10.0.${i % 250}.3, ports: { http: ${port} }, labels: { version: v2 } }` : ''}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: svc-${i}, namespace: ${ns} }
spec:
  host: ${host}
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: svc-${i}, namespace: ${ns} }
spec:
  hosts: [${host}]
  http:
    - route:
        - { destination: { host: ${host}, subset: v1 }, weight: ${100 - v2Weight} }
        - { destination: { host: ${host}, subset: v2 }, weight: ${v2Weight} }
`;
}

async function main(protocol: Protocol): Promise<Summary> {
  console.log(`--- ${protocol === 'delta' ? 'Delta xDS (DeltaAggregatedResources)' : 'State of the World (StreamAggregatedResources)'}`);
  const dir = await mkdtemp(join(tmpdir(), 'meshlet-bench-cp-'));
  const namespaces = Array.from({ length: NAMESPACES }, (_, i) => `ns-${i}`);
  const perNs = Math.ceil(SERVICES / NAMESPACES);
  const weights = new Map<string, number>();
  const writeNs = async (ns: string, changed?: { i: number; v2: number; extra?: boolean }) => {
    const docs: string[] = [];
    for (let i = 0; i < perNs; i++) {
      const w = changed?.i === i ? changed.v2 : weights.get(`${ns}/${i}`) ?? 10;
      weights.set(`${ns}/${i}`, w);
      docs.push(serviceYaml(ns, i, w, changed?.i === i && changed.extra));
    }
    await writeFile(join(dir, `${ns}.yaml`), docs.join('---\n'));
  };
  for (const ns of namespaces) await writeNs(ns);

  const t0 = performance.now();
  const cp = await createControlPlane({ config: dir, port: 0, host: '127.0.0.1', log: () => {}, registrationGraceMs: 1000 });
  console.log(`control plane: ${SERVICES} services in ${NAMESPACES} namespaces loaded in ${(performance.now() - t0).toFixed(0)} ms`);
  const dump = cp.configDump('ns-0');
  console.log(`per namespace: ${dump.listeners.length} listeners, ${dump.routes.length} routes, ${dump.clusters.length} clusters, ${dump.endpoints.length} endpoint sets`);

  const namesByNs = new Map(namespaces.map((ns) => {
    const d = cp.configDump(ns);
    return [ns, { routes: d.routes.map((r) => r.name), endpoints: d.endpoints.map((e) => e.cluster_name) }];
  }));

  /** gRPC A27 style: the listeners/routes/clusters/endpoints of the services this client calls. */
  function namedSubscription(c: number, ns: string): Record<string, string[]> {
    const hosts: string[] = [];
    // five shared backends every client calls (the ones the push rounds change), then five of its own
    for (let i = 0; i < Math.min(5, perNs); i++) hosts.push(`svc-${i}.ns-0.svc.cluster.local`);
    for (let k = 0; hosts.length < CALLS_PER_CLIENT && k < 100; k++) {
      const j = (c * 7 + k * 13) % SERVICES;
      const h = `svc-${j % perNs}.ns-${Math.floor(j / perNs) % NAMESPACES}.svc.cluster.local`;
      if (!hosts.includes(h)) hosts.push(h);
    }
    const listeners = hosts.map((h) => `${h}:8080`);
    const clusters = hosts.flatMap((h) => [`outbound|8080||${h}`, `outbound|8080|v1|${h}`, `outbound|8080|v2|${h}`]);
    return { [TYPE_URL.listener]: listeners, [TYPE_URL.route]: listeners, [TYPE_URL.cluster]: clusters, [TYPE_URL.endpoint]: clusters };
  }

  const setup: ClientsSetup = {
    port: cp.port, protocol, channels: CHANNELS, grpcJs: GRPC_JS_CLIENTS,
    clients: Array.from({ length: CLIENTS }, (_, c) => {
      const ns = namespaces[c % NAMESPACES]!;
      const names = namesByNs.get(ns)!;
      const subs: Record<string, string[]> = WILDCARD
        ? { [TYPE_URL.listener]: [], [TYPE_URL.cluster]: [], [TYPE_URL.route]: names.routes, [TYPE_URL.endpoint]: names.endpoints }
        : namedSubscription(c, ns);
      return { namespace: ns, subs };
    }),
  };
  gc();
  const heapBefore = process.memoryUsage();
  // The clients run in a worker thread: their decoding and ACKs do not queue behind the server's pushes.
  const worker = new Worker(clientsModule(), { workerData: setup });
  const inbox: FromWorker[] = [];
  const waiters: Array<(m: FromWorker) => void> = [];
  worker.on('message', (m: FromWorker) => (waiters.length > 0 ? waiters.shift()!(m) : inbox.push(m)));
  worker.on('error', (err) => { console.error(err); process.exit(1); });
  const next = <E extends FromWorker['event']>(event: E, ms: number): Promise<Extract<FromWorker, { event: E }>> => withTimeout(new Promise((resolve, reject) => {
    const take = (m: FromWorker) => (m.event === event ? resolve(m as Extract<FromWorker, { event: E }>) : reject(new Error(`expected ${event}, got ${m.event}`)));
    if (inbox.length > 0) take(inbox.shift()!);
    else waiters.push(take);
  }), ms, event);
  const initialMs = (await next('initial', 120_000)).ms;
  console.log(`${CLIENTS} clients (${WILDCARD ? 'wildcard' : `${CALLS_PER_CLIENT} services each`}) connected and served LDS/RDS/CDS/EDS in ${initialMs.toFixed(0)} ms`);
  gc();
  const heapAfter = process.memoryUsage();
  const perClientKiB = (k: keyof NodeJS.MemoryUsage) => (heapAfter[k] - heapBefore[k]) / CLIENTS / 1024;
  const perClient = (k: keyof NodeJS.MemoryUsage) => perClientKiB(k).toFixed(1);
  console.log(`memory per client (control plane's thread; the clients are in a worker): heap ${perClient('heapUsed')} KiB, external ${perClient('external')} KiB (rss, whole process with the worker: ${perClient('rss')} KiB)`);
  let pushBytes = 0;

  // Push rounds: change one route weight (RDS) or add an endpoint (EDS) in one namespace, or in all.
  const latencies: number[] = [];
  const serverMs: number[] = [];
  let firstMs = NaN;
  for (let round = 0; round < WARMUP + ROUNDS; round++) {
    const warmup = round < WARMUP;
    // a quiet moment first: the previous change's ACKs (and its GC) are behind the control plane, as between real edits
    await new Promise((r) => setTimeout(r, 500));
    const eds = round % 2 === 1;
    const typeUrl = eds ? TYPE_URL.endpoint : TYPE_URL.route;
    worker.postMessage({ cmd: 'round', typeUrl } satisfies ToWorker);
    const written = performance.timeOrigin + performance.now();
    // the change always touches one of svc-0…4 of ns-0, which every client calls
    for (const ns of ALL_NAMESPACES ? namespaces : namespaces.slice(0, 1)) await writeNs(ns, { i: round % Math.min(5, perNs), v2: 20 + round, extra: eds });
    const done = await next('round', 30_000);
    const allMs = Math.max(...done.arrivals) - written;
    if (round === 0) firstMs = allMs;
    if (!warmup) {
      pushBytes += done.bytes;
      for (const at of done.arrivals) latencies.push(at - written);
      serverMs.push(cp.status().lastPush?.ms ?? NaN);
    }
    // Where the time went: file write → push starts (watch, debounce, load), the push, push end → last client has it.
    const pushEnd = Date.parse(cp.status().lastPush!.at);
    const last = Math.max(...done.arrivals);
    const sorted = done.arrivals.slice().sort((a, b) => a - b);
    const after = (at: number) => (at - pushEnd).toFixed(0);
    const phases = `write → push start ${(pushEnd - cp.status().lastPush!.ms - written).toFixed(0)} ms, push end → first / median / last client ${after(sorted[0]!)} / ${after(sorted[sorted.length >> 1]!)} / ${after(last)} ms; clients' thread busy ${done.busyMs.toFixed(0)} ms`;
    console.log(`${warmup ? 'warm-up ' : ''}change ${round} (one service in ${ALL_NAMESPACES ? 'each of 10 files' : 'one file'}: route weight${eds ? ' + an endpoint added' : ', previous endpoint change reverted'}): all ${CLIENTS} clients updated in ${allMs.toFixed(0)} ms (push computed in ${cp.status().lastPush?.ms} ms, ${cp.status().lastPush?.responses} responses; ${phases})`);
  }
  latencies.sort((a, b) => a - b);
  const qn = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
  const q = (p: number) => qn(p).toFixed(0);
  const medianServer = serverMs.sort((a, b) => a - b)[Math.floor(serverMs.length / 2)]!;
  console.log(`push latency file write → client (includes ${100} ms debounce), ${latencies.length} samples (${ROUNDS} changes after ${WARMUP} warm-up ones): p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms`);
  console.log(`server push compute (translate + encode + write): median ${medianServer} ms; ${(pushBytes / ROUNDS / 1024).toFixed(0)} KiB sent per push to all clients`);

  worker.postMessage({ cmd: 'stop' } satisfies ToWorker);
  await next('stopped', 10_000);
  await worker.terminate();
  await cp.close();
  await rm(dir, { recursive: true, force: true });
  return {
    protocol, initialMs, firstMs, heapKiB: perClientKiB('heapUsed'), externalKiB: perClientKiB('external'),
    p50: qn(0.5), p99: qn(0.99), max: qn(1), serverMs: medianServer, bytesPerPush: pushBytes / ROUNDS,
  };
}

/**
 * bench/control-plane-clients.ts as the worker's module, compiled by TypeScript
 * and importing meshlet from dist/ as the server half does: through tsx, every
 * closure evaluation ran its naming helper (per message, for 1,000 clients in
 * one thread), which is the bench's cost, not the control plane's.
 */
function clientsModule(): URL {
  const source = readFileSync(new URL('./control-plane-clients.ts', import.meta.url), 'utf8');
  const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText
    .replace(/from '\.\.\/src\/([^']+)'/g, (_, path: string) => `from '${new URL(`../dist/${path}`, import.meta.url).href}'`)
    .replace(/from '(@[^']+)'/g, (_, name: string) => `from '${import.meta.resolve(name)}'`);
  return new URL(`data:text/javascript,${encodeURIComponent(js)}`);
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Each protocol in a process of its own (the bench re-runs itself with
 * `--sotw`, then `--delta`): run after the other in one process, Delta
 * inherited SotW's grown heap and compiled code, and its p99 moved by 10–30 ms.
 */
async function inOwnProcess(protocol: Protocol): Promise<Summary> {
  const args = [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2), `--${protocol}`, '--summary-json'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let summary: Summary | undefined;
  for await (const line of createInterface({ input: child.stdout! })) {
    if (line.startsWith(SUMMARY)) summary = JSON.parse(line.slice(SUMMARY.length)) as Summary;
    else console.log(line);
  }
  const code = await new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve)));
  if (code !== 0 || !summary) throw new Error(`the ${protocol} run failed (exit ${code})`);
  return summary;
}
const SUMMARY = 'SUMMARY ';

const summaries: Summary[] = [];
for (const protocol of PROTOCOLS) summaries.push(PROTOCOLS.length > 1 ? await inOwnProcess(protocol) : await main(protocol));
if (process.argv.includes('--summary-json')) {
  console.log(SUMMARY + JSON.stringify(summaries[0]));
} else {
  console.log(`\n${CLIENTS} clients × ${SERVICES} services, ${ROUNDS} one-${ALL_NAMESPACES ? 'change-per-file' : 'file'} changes after ${WARMUP} warm-up ones${PROTOCOLS.length > 1 ? ', each protocol in its own process' : ''}:`);
  console.log('protocol | initial sync ms | first change, all clients ms | heap KiB/client | external KiB/client | push p50 ms | push p99 ms | max ms | server push ms | KiB sent per push');
  for (const s of summaries) {
    console.log(`${s.protocol} | ${s.initialMs.toFixed(0)} | ${s.firstMs.toFixed(0)} | ${s.heapKiB.toFixed(1)} | ${s.externalKiB.toFixed(1)} | ${s.p50.toFixed(0)} | ${s.p99.toFixed(0)} | ${s.max.toFixed(0)} | ${s.serverMs} | ${(s.bytesPerPush / 1024).toFixed(0)}`);
  }
}
