/**
 * HTTP benchmark: meshlet against raw undici on the same upstream, in the
 * same run. Every dispatcher variant is called the same way —
 * `undici.request(url, { dispatcher })` — and fetch variants with
 * `undici.fetch` vs `mesh.fetch`. The upstream runs in its own process.
 *
 *   node --import tsx bench/http.ts [--seconds 10] [--rounds 5] [--concurrency 50]
 *
 * Also times compiling 1,000 VirtualServices with 10,000 endpoints and one
 * route lookup among them.
 */
import { parseArgs } from 'node:util';
import { Agent, fetch, Pool, request } from 'undici';
import { ExportResultCode } from '@opentelemetry/core';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { compiled } from './compiled.js';

const { createMesh, seededRandom } = await compiled<typeof import('../src/index.js')>('index.js');
import { compare, startUpstream, type Variant } from './harness.js';
import { benchCompile } from './compile.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, rounds: { type: 'string', default: '5' }, concurrency: { type: 'string', default: '50' }, only: { type: 'string' } } });

const upstream = await startUpstream([0, 0]);
const [v1Port, v2Port] = upstream.ports as [number, number];
const origin = `http://127.0.0.1:${v1Port}`;

const service = (extra: string) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: calculate }
spec:
  hosts: [calculate.default.svc.cluster.local]
  resolution: STATIC
  ports: [{ number: 8000, name: http }]
  endpoints:
    - { address: 127.0.0.1, ports: { http: ${v1Port} }, labels: { version: v1 } }
    - { address: 127.0.0.1, ports: { http: ${v2Port} }, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: calculate }
spec:
  host: calculate
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
${extra}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: calculate }
spec:
  hosts: [calculate]
  http:
    - match: [{ headers: { version: { exact: dog } } }]
      route: [{ destination: { host: calculate, subset: v2 } }]
    - timeout: 5s
      retries: { attempts: 2, perTryTimeout: 2s, retryOn: '5xx,connect-failure' }
      route:
        - { destination: { host: calculate, subset: v1 }, weight: 90 }
        - { destination: { host: calculate, subset: v2 }, weight: 10 }
`;

const resilience = `  trafficPolicy:
    outlierDetection: { consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 100 }
    connectionPool: { tcp: { maxConnections: 1024 }, http: { http1MaxPendingRequests: 1024 } }`;

// Spans go through the SDK's BatchSpanProcessor (default settings) to an exporter that counts and
// drops them: the run measures making spans, not shipping them — an OTLP exporter's cost is the
// same with or without a mesh. (An InMemorySpanExporter would keep every span and measure GC instead.)
let exportedSpans = 0;
const countingExporter: SpanExporter = {
  export(spans, done) {
    exportedSpans += spans.length;
    done({ code: ExportResultCode.SUCCESS });
  },
  shutdown: async () => undefined,
};
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(countingExporter)] });

const pool = new Pool(origin, { pipelining: 1 });
const agent = new Agent();
const mesh = await createMesh({ random: seededRandom(1), config: service('') });
const meshResilience = await createMesh({ random: seededRandom(1), config: service(resilience) });
const meshTraced = await createMesh({ random: seededRandom(1), config: service(''), tracerProvider });
const meshQuiet = await createMesh({ random: seededRandom(1), config: service(''), telemetry: { metrics: false, metadataExchange: false } });

const meshUrl = 'http://calculate.default.svc.cluster.local:8000/add?x=1&y=2';
const rawUrl = `${origin}/add?x=1&y=2`;
const consume = async (p: Promise<{ body: { dump(): Promise<void> } }>) => (await p).body.dump();

const variants: Variant[] = [
  { name: 'undici Pool', call: () => consume(request(rawUrl, { dispatcher: pool })) },
  { name: 'undici Agent', call: () => consume(request(rawUrl, { dispatcher: agent })) },
  { name: 'mesh.dispatcher', call: () => consume(request(meshUrl, { dispatcher: mesh.dispatcher })), baseline: 'undici Pool' },
  { name: 'mesh + outlier + pool limit', call: () => consume(request(meshUrl, { dispatcher: meshResilience.dispatcher })), baseline: 'undici Pool' },
  { name: 'mesh, telemetry off', call: () => consume(request(meshUrl, { dispatcher: meshQuiet.dispatcher })), baseline: 'undici Pool' },
  { name: 'mesh + metrics + tracing 100%', call: () => consume(request(meshUrl, { dispatcher: meshTraced.dispatcher })), baseline: 'mesh, telemetry off' },
  { name: 'pool.request(opts)', call: () => consume(pool.request({ path: '/add?x=1&y=2', method: 'GET' })) },
  { name: 'undici.fetch Agent', call: async () => (await fetch(rawUrl, { dispatcher: agent })).arrayBuffer() },
  { name: 'mesh.fetch', call: async () => (await mesh.fetch(meshUrl)).arrayBuffer(), baseline: 'undici.fetch Agent' },
];

const only = values.only?.split(',');
const selected = only ? variants.filter((v) => only.some((o) => v.name.includes(o))) : variants;
console.log(`HTTP: ${selected.length} variants × ${values.seconds}s each (${values.rounds} interleaved rounds), ${values.concurrency} in flight, upstream in its own process\n`);
await compare(selected, { seconds: Number(values.seconds), rounds: Number(values.rounds), concurrency: Number(values.concurrency), warmupMs: 1000 });

console.log('');
benchCompile();

await tracerProvider.forceFlush();
console.log(`\n${exportedSpans.toLocaleString('en')} spans exported`);
await Promise.all([mesh.close(), meshResilience.close(), meshTraced.close(), meshQuiet.close(), pool.close(), agent.close(), tracerProvider.shutdown()]);
upstream.stop();
