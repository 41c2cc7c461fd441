/**
 * gRPC benchmark: a plain grpc-js client vs a meshed client (mesh.grpc
 * clientOptions) calling the same calculate server, which runs in its own
 * child process. Unary calls at fixed concurrency; the variants alternate in
 * rounds so machine noise hits both alike. Prints calls/s, p50, p99 and the
 * ratios.
 *
 *   node --import tsx bench/grpc.ts [--concurrency 50] [--seconds 10] [--round 1]
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { credentials, Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { compiled } from './compiled.js';

const { createMeshGrpc } = await compiled<typeof import('../src/grpc/index.js')>('grpc/index.js');
const { createMesh } = await compiled<typeof import('../src/index.js')>('index.js');
import { calculate, CalculateClient, CalculateService, type Operands, type Result } from '../examples/grpc/proto.js';

async function serve(): Promise<void> {
  const server = new Server();
  const noop = () => undefined;
  server.addService(CalculateService, {
    Calculate: (call: ServerUnaryCall<Operands, Result>, cb: sendUnaryData<Result>) => cb(null, { value: call.request.x + call.request.y, version: 'v1' }),
    Series: noop, Fold: noop, Pipe: noop,
  });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  process.send!({ port });
  process.on('disconnect', () => server.forceShutdown());
}

interface Stats { calls: number; ms: number; latencies: number[] }

/** Runs `concurrency` loops of back-to-back calls for `ms`. */
async function run(client: CalculateClient, concurrency: number, ms: number, stats: Stats): Promise<void> {
  const end = performance.now() + ms;
  const t0 = performance.now();
  const loop = async () => {
    while (performance.now() < end) {
      const s = performance.now();
      await calculate(client, { x: 1, y: 2 });
      stats.latencies.push(performance.now() - s);
      stats.calls++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  stats.ms += performance.now() - t0;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { concurrency: { type: 'string', default: '50' }, seconds: { type: 'string', default: '10' }, round: { type: 'string', default: '1' } } });
  const concurrency = Number(values.concurrency);
  const seconds = Number(values.seconds);
  const roundMs = Number(values.round) * 1000;
  const child = fork(fileURLToPath(import.meta.url), ['server'], { execArgv: ['--import', 'tsx'] });
  const port = await new Promise<number>((res) => child.once('message', (m: { port: number }) => res(m.port)));
  const mesh = await createMesh({ config: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: calculate, namespace: default }
spec:
  hosts: [calculate.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9000, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.1, ports: { grpc: ${port} }, labels: { app: calculate, version: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: calculate, namespace: default }
spec:
  hosts: [calculate]
  http:
    - match: [{ uri: { prefix: /calculate.Calculate/ } }]
      timeout: 5s
      route: [{ destination: { host: calculate } }]
` });
  const grpc = createMeshGrpc(mesh);
  const plain = new CalculateClient(`127.0.0.1:${port}`, credentials.createInsecure());
  const meshed = new CalculateClient('calculate.default.svc.cluster.local:9000', credentials.createInsecure(), grpc.clientOptions());
  const variants = [['grpc-js', plain], ['meshlet', meshed]] as const;
  const stats = new Map(variants.map(([name]) => [name, { calls: 0, ms: 0, latencies: [] } as Stats]));
  // Warm-up: connections, JIT.
  for (const [, c] of variants) await run(c, concurrency, 1000, { calls: 0, ms: 0, latencies: [] });
  const rounds = Math.max(1, Math.round(seconds * 1000 / roundMs));
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? variants : [...variants].reverse();
    for (const [name, c] of order) await run(c, concurrency, roundMs, stats.get(name)!);
  }
  const rows = variants.map(([name]) => {
    const s = stats.get(name)!;
    const sorted = s.latencies.sort((a, b) => a - b);
    return { name, rate: s.calls / (s.ms / 1000), p50: pct(sorted, 50), p99: pct(sorted, 99) };
  });
  console.log(`unary calls, concurrency ${concurrency}, ${rounds} rounds of ${roundMs / 1000}s per variant (node ${process.version})`);
  for (const r of rows) console.log(`${r.name.padEnd(8)} ${r.rate.toFixed(0).padStart(7)} calls/s   p50 ${(r.p50 * 1000).toFixed(0).padStart(6)} µs   p99 ${(r.p99 * 1000).toFixed(0).padStart(6)} µs`);
  const [base, ours] = rows as [typeof rows[0], typeof rows[0]];
  console.log(`ratio    ${(ours.rate / base.rate * 100).toFixed(1)}% of grpc-js calls/s, p50 ${((ours.p50 - base.p50) * 1000).toFixed(0)} µs added, p99 ${((ours.p99 - base.p99) * 1000).toFixed(0)} µs added`);
  plain.close();
  meshed.close();
  await grpc.close(0);
  await mesh.close();
  child.disconnect();
}

if (process.argv[2] === 'server') void serve();
else await main();
