/**
 * Large endpoint sets (#16 item 5): how long a config swap blocks the event
 * loop, and how long it takes in all.
 *
 *  - EDS: 100,000 endpoints in one ClusterLoadAssignment over a real ADS
 *    stream (a scripted ADS server in a child process, so its encoding does
 *    not count), first delivery and then a push that changes every endpoint's
 *    weight;
 *  - ServiceEntry: 20,000 endpoints through `mesh.apply`, first and then with
 *    one endpoint added.
 *
 * The block is the longest gap of a 1 ms interval probe (minus its 1 ms), the
 * same number perf_hooks' monitorEventLoopDelay reports as its max; the
 * protos are loaded before measuring (start-up, not a swap).
 * `node --import tsx bench/endpoints.ts [eds=100000] [se=20000] [runs=3]`
 */
import { fork } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { TYPE_URL, type ClusterLoadAssignment, type EnvoyResources } from '../src/config/envoy.js';
import { createMesh, type Mesh } from '../src/index.js';
import { envoyRoot, loadGrpcPackage } from '../src/xds/protos.js';

const CLUSTER = 'outbound|9000||calculate.default.svc.cluster.local';
const workload = { name: 'bench', namespace: 'default', labels: { app: 'bench' } };

/**
 * Measures the event loop while `work` runs: the longest block, the total
 * time, and the longest block counted in CPU time (the process's CPU time
 * within the gap, capped at the gap): on a shared machine a gap also holds
 * the time the OS ran other processes, which this leaves out.
 */
async function measure(work: () => Promise<unknown>): Promise<Result> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  let last = performance.now();
  let lastCpu = process.cpuUsage();
  let max = 0;
  let maxCpu = 0;
  const probe = setInterval(() => {
    const now = performance.now();
    const cpu = process.cpuUsage(lastCpu);
    const gap = now - last - 1;
    max = Math.max(max, gap);
    maxCpu = Math.max(maxCpu, Math.min(gap, (cpu.user + cpu.system) / 1000));
    last = now;
    lastCpu = process.cpuUsage();
  }, 1);
  const t0 = performance.now();
  await work();
  const totalMs = performance.now() - t0;
  // One more turn so a block at the very end is seen.
  await new Promise((resolve) => setTimeout(resolve, 5));
  clearInterval(probe);
  histogram.disable();
  return { maxBlockMs: Math.max(max, histogram.max / 1e6 - 1), totalMs, maxCpuBlockMs: maxCpu };
}

/** N endpoints in one locality; `weight` lets a push change every one of them. */
export function assignment(n: number, weight = 1): ClusterLoadAssignment {
  const lb_endpoints = [];
  const labels = { fields: { labels: { structValue: { fields: { app: { stringValue: 'calculate' }, version: { stringValue: 'v1' } } } } } };
  for (let i = 0; i < n; i++) {
    lb_endpoints.push({
      endpoint: { address: { socket_address: { address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port_value: 9000 } } },
      health_status: 'HEALTHY', load_balancing_weight: { value: weight }, metadata: { filter_metadata: { istio: labels } },
    });
  }
  return { cluster_name: CLUSTER, endpoints: [{ locality: { region: 'r', zone: 'z' }, lb_endpoints }] } as unknown as ClusterLoadAssignment;
}

/** The child: a scripted ADS server serving `n` endpoints, pushing a changed set on each IPC message. */
async function serve(n: number): Promise<void> {
  const { startFakeAds, serveChain, sampleResources } = await import('../test/xds/fake-ads-server.js');
  const server = await startFakeAds();
  const base = sampleResources({ cluster: CLUSTER });
  const resources: EnvoyResources = { ...base, endpoints: [assignment(n)] };
  process.stdout.write(`${server.port}\n`);
  await serveChain(server, resources, '1', 'init', 600_000);
  let push = 1;
  process.on('message', () => {
    push++;
    server.respond(TYPE_URL.endpoint, String(push), `push-${push}`, [assignment(n, push)]);
  });
  process.on('disconnect', () => { server.close(); process.exit(0); });
}

async function waitFor(pred: () => boolean): Promise<void> {
  while (!pred()) await new Promise((resolve) => setImmediate(resolve));
}

async function benchEds(n: number): Promise<{ first: Result; push: Result }> {
  const child = fork(fileURLToPath(import.meta.url), ['serve', String(n)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const port = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
  let mesh: Mesh | undefined;
  const hosts = (): number => mesh?.snapshot.clusters.get(CLUSTER)?.hosts.length ?? 0;
  try {
    const first = await measure(async () => {
      mesh = await createMesh({ workload, xds: { server: `127.0.0.1:${port}`, initialFetchTimeoutMs: 600_000 } });
      await waitFor(() => hosts() === n);
    });
    const before = mesh!.snapshot;
    const push = await measure(async () => {
      child.send('push');
      await waitFor(() => mesh!.snapshot !== before && hosts() === n);
    });
    return { first, push };
  } finally {
    await mesh?.close();
    child.disconnect();
  }
}

function serviceEntry(n: number): object {
  const endpoints = [];
  for (let i = 0; i < n; i++) endpoints.push({ address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, labels: { app: 'calculate', version: i % 2 ? 'v1' : 'v2' } });
  return {
    apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'calculate', namespace: 'default' },
    spec: { hosts: ['calculate.example.com'], ports: [{ number: 9000, name: 'http', protocol: 'HTTP' }], resolution: 'STATIC', location: 'MESH_INTERNAL', endpoints },
  };
}

async function benchServiceEntry(n: number): Promise<{ first: Result; push: Result }> {
  const mesh = await createMesh({ workload });
  try {
    const doc = serviceEntry(n) as { spec: { endpoints: object[] } };
    const first = await measure(() => mesh.apply([doc]));
    doc.spec.endpoints.push({ address: '10.255.255.255', labels: { app: 'calculate', version: 'v1' } });
    const push = await measure(() => mesh.apply([doc]));
    return { first, push };
  } finally {
    await mesh.close();
  }
}

type Result = { maxBlockMs: number; totalMs: number; maxCpuBlockMs: number };

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  // Loading the Envoy protos (hundreds of ms, once per process) is start-up, not a swap: done before measuring.
  envoyRoot();
  loadGrpcPackage(['envoy/service/discovery/v3/ads.proto']);
  await (await createMesh({ workload })).close();
  const args = Object.fromEntries(process.argv.slice(2).map((a) => a.split('=') as [string, string]));
  const eds = Number(args.eds ?? 100_000), se = Number(args.se ?? 20_000), runs = Number(args.runs ?? 3);
  const rows: Record<string, Result[]> = {};
  const add = (name: string, r: Result) => (rows[name] ??= []).push(r);
  for (let run = 0; run < runs; run++) {
    if (eds > 0) {
      const r = await benchEds(eds);
      add(`EDS ${eds} endpoints, first`, r.first);
      add(`EDS ${eds} endpoints, push`, r.push);
    }
    if (se > 0) {
      const r = await benchServiceEntry(se);
      add(`ServiceEntry ${se} endpoints, apply`, r.first);
      add(`ServiceEntry ${se} endpoints, re-apply +1`, r.push);
    }
  }
  console.log(`median of ${runs} runs: max event-loop block (wall clock; in CPU time) / total time`);
  for (const [name, results] of Object.entries(rows)) {
    const all = results.map((r) => r.maxBlockMs.toFixed(0)).join(' ');
    const m = (f: (r: Result) => number) => median(results.map(f));
    console.log(`${name.padEnd(42)} max block ${m((r) => r.maxBlockMs).toFixed(1).padStart(7)} ms (cpu ${m((r) => r.maxCpuBlockMs).toFixed(1).padStart(6)} ms)  total ${m((r) => r.totalMs).toFixed(0).padStart(6)} ms  (blocks: ${all})`);
  }
}

if (process.argv[2] === 'serve') void serve(Number(process.argv[3]));
else await main();
