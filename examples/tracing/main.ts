/**
 * Tracing example: four workloads (Express and Fastify), each with its own
 * mesh, calling each other through mesh.fetch; one request from outside
 * (with B3 headers, as a gateway or a sidecar would send them) yields one
 * joined trace. Spans go to the console, or to OTLP when configured; the
 * trace is then printed as a tree, and the istio_* metrics of `client`.
 *
 *   node --import tsx examples/tracing/main.ts [--quiet] [--w3c]
 *
 * Runs on 127.0.0.1 with free ports and exits when done.
 */
import { randomBytes } from 'node:crypto';
import { SpanKind } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { createMesh, type Mesh } from '../../src/mesh.js';
import { type Running, startCalculate, startClient, startDb, startImage } from './services.js';
import { setupTracing } from './tracing.js';

const quiet = process.argv.includes('--quiet');
const w3c = process.argv.includes('--w3c');
const tracing = await setupTracing({ quiet });

// One mesh per workload, as if each ran in its own process (they would; here they share one for brevity).
const workloads = {
  client: { name: 'client', labels: { app: 'client', version: 'v1' } },
  calculate: { name: 'calculate-v1', labels: { app: 'calculate', version: 'v1' } },
  db: { name: 'db', labels: { app: 'db', version: 'v1' } },
  image: { name: 'image', labels: { app: 'image', version: 'v1' } },
};
const meshes: Record<keyof typeof workloads, Mesh> = {
  client: await createMesh({ workload: workloads.client }),
  calculate: await createMesh({ workload: workloads.calculate }),
  db: await createMesh({ workload: workloads.db }),
  image: await createMesh({ workload: workloads.image }),
};
const running: Record<keyof typeof workloads, Running> = {
  client: await startClient(meshes.client),
  calculate: await startCalculate(meshes.calculate),
  db: await startDb(meshes.db),
  image: await startImage(meshes.image),
};

/** The mesh config every workload shares: one ServiceEntry per service, on its loopback port. */
const config = (['calculate', 'db', 'image'] as const).map((name) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name, namespace: 'default' },
  spec: {
    hosts: [`${name}.default.svc.cluster.local`],
    location: 'MESH_INTERNAL',
    resolution: 'STATIC',
    ports: [{ number: 8000, name: 'http', protocol: 'HTTP' }],
    endpoints: [{ address: '127.0.0.1', ports: { http: running[name].port }, labels: workloads[name].labels }],
  },
}));
for (const mesh of Object.values(meshes)) await mesh.apply(config);

// The caller outside the mesh: a trace id it chose, sent as B3 (or W3C) headers.
const traceId = randomBytes(16).toString('hex');
const parentId = randomBytes(8).toString('hex');
const headers: Record<string, string> = w3c
  ? { traceparent: `00-${traceId}-${parentId}-01` }
  : { 'x-b3-traceid': traceId, 'x-b3-spanid': parentId, 'x-b3-sampled': '1' };
const res = await fetch(`http://127.0.0.1:${running.client.port}/pet?x=2&y=3`, { headers });
console.log(`\nGET /pet → ${res.status} ${await res.text()}`);
await new Promise((r) => setTimeout(r, 50)); // SERVER spans end on the response's 'finish'

printTree(tracing.memory.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId), parentId);
const requests = (await meshes.client.metrics()).split('\n').filter((l) => l.startsWith('istio_requests_total'));
console.log(`\nclient's istio_requests_total:\n${requests.join('\n')}`);
console.log(`\nspans exported to: ${tracing.destination}`);

for (const r of Object.values(running)) await r.close();
for (const m of Object.values(meshes)) await m.close();
await tracing.shutdown();

/** Prints spans as a tree under the caller's span id. */
function printTree(spans: readonly ReadableSpan[], rootParent: string): void {
  const children = new Map<string, ReadableSpan[]>();
  for (const s of spans) {
    const parent = s.parentSpanContext?.spanId ?? '';
    children.set(parent, [...(children.get(parent) ?? []), s]);
  }
  console.log(`\ntrace ${spans[0]?.spanContext().traceId ?? '(none)'} — ${spans.length} spans, caller span ${rootParent}`);
  const walk = (parent: string, depth: number): void => {
    for (const s of (children.get(parent) ?? []).sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1])) {
      const kind = SpanKind[s.kind];
      const where = s.attributes['meshlet.cluster'] ?? s.attributes['url.path'] ?? '';
      console.log(`${'  '.repeat(depth + 1)}${kind.padEnd(8)} ${s.name.padEnd(22)} ${String(where)}`);
      walk(s.spanContext().spanId, depth + 1);
    }
  };
  walk(rootParent, 0);
}
