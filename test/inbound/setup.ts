/**
 * Shared pieces of the inbound tests: an in-memory tracer provider, meshes
 * whose config includes the `virtual_inbound` listener, and servers on
 * 127.0.0.1 port 0 for Express and Fastify apps.
 */
import { once } from 'node:events';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type ReadableSpan, AlwaysOnSampler, BasicTracerProvider, InMemorySpanExporter, ParentBasedSampler, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { SpanKind } from '@opentelemetry/api';
import type { FastifyInstance } from 'fastify';
import { loadDocuments } from '../../src/config/load.js';
import { parseResources } from '../../src/config/resources.js';
import { translate } from '../../src/config/translate.js';
import { VIRTUAL_INBOUND, translateInbound } from '../../src/config/translate-inbound.js';
import type { Mesh } from '../../src/mesh.js';

/** A tracer provider (not registered globally) exporting to memory. */
export function memoryTracing() {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  return { exporter, tracerProvider };
}

let generation = 0;

/**
 * Applies Istio YAML to a mesh with the inbound listener included. The
 * translator adds `virtual_inbound` itself once integrated; until then the
 * test adds it, so the inbound path is exercised either way.
 */
export async function applyWithInbound(mesh: Mesh, yaml: string): Promise<void> {
  const resources = parseResources(await loadDocuments(yaml));
  const envoy = translate(resources, mesh.proxy);
  if (!envoy.listeners.some((l) => l.name === VIRTUAL_INBOUND)) envoy.listeners.push(translateInbound(resources, mesh.proxy));
  mesh.applyEnvoy(envoy, `inbound-test-${++generation}`);
}

/** A node:http server on 127.0.0.1:0 that destroys its sockets on close. */
export async function listen(handler: RequestListener): Promise<{ port: number; server: Server; close(): Promise<void> }> {
  const server = createServer(handler);
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    server,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/** Starts a Fastify app on 127.0.0.1:0. */
export async function listenFastify(app: FastifyInstance): Promise<{ port: number; close(): Promise<void> }> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() };
}

/** ServiceEntries for the chain's services, all on loopback. */
export function services(entries: Array<{ name: string; port: number; servicePort: number; version?: string }>): string {
  return entries.map((e) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${e.name}, namespace: default }
spec:
  hosts: [${e.name}.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${e.servicePort}, name: http, protocol: HTTP }]
  endpoints:
    - { address: 127.0.0.1, ports: { http: ${e.port} }, labels: { app: ${e.name}, version: ${e.version ?? 'v1'} } }
`).join('\n---\n');
}

/**
 * Checks that `child` descends from `ancestor` through CLIENT spans only (a
 * request span and/or per-attempt spans) and returns how many it crossed.
 */
export function clientHopsBetween(spans: readonly ReadableSpan[], child: ReadableSpan, ancestor: ReadableSpan): number {
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
  let hops = 0;
  let parentId = child.parentSpanContext?.spanId;
  while (parentId !== undefined && parentId !== ancestor.spanContext().spanId) {
    const parent = byId.get(parentId);
    if (parent === undefined) throw new Error(`span ${child.name} has an unknown parent ${parentId}`);
    if (parent.kind !== SpanKind.CLIENT) throw new Error(`span ${child.name}: ancestor ${parent.name} is not a CLIENT span`);
    hops++;
    parentId = parent.parentSpanContext?.spanId;
  }
  if (parentId === undefined) throw new Error(`span ${child.name} does not descend from ${ancestor.name}`);
  return hops;
}
