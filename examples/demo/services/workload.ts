/**
 * What makes a demo process a mesh workload: its mesh in control-plane mode
 * (env DEMO_XDS, the demo's control plane), tracing with an exporter that
 * ships every finished span to the demo process over the IPC channel (the
 * traces view, no Jaeger needed), and a small admin server the demo polls
 * for `mesh.metrics()` (istio_* text) and `mesh.clusters()` (ejections), as
 * Envoy's admin port would serve them.
 *
 * Identity: with env DEMO_CA (a development CA directory shared by every demo
 * process) the workload gets its own certificate from that root, so calls
 * between services are mTLS. PeerAuthentication and AuthorizationPolicy
 * travel over xDS with the inbound listener; `POST /security` on the admin
 * port waits until a scenario's policies have arrived.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BasicTracerProvider, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { loadDocuments } from '../../../src/config/load.js';
import { parseResources } from '../../../src/config/resources.js';
import { TYPE_URL, type Listener } from '../../../src/config/envoy.js';
import { translate } from '../../../src/config/translate.js';
import { VIRTUAL_INBOUND } from '../../../src/config/translate-inbound.js';
import { normalize } from '../../../src/xds/protos.js';
import { createMesh, type Mesh, type WorkloadOptions } from '../../../src/index.js';

/** A finished span as it travels to the demo process (plain JSON). */
export interface ShippedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  /** The workload that recorded it. */
  service: string;
  name: string;
  /** OpenTelemetry SpanKind number (1 SERVER, 2 CLIENT). */
  kind: number;
  /** Epoch ms, fractional. */
  start: number;
  durationMs: number;
  /** OpenTelemetry status code (2 = ERROR). */
  status: number;
  attributes: Record<string, string | number | boolean>;
}

/** The IPC message carrying spans. */
export interface SpansMessage {
  type: 'spans';
  spans: ShippedSpan[];
}

const hrMs = (t: [number, number]): number => t[0] * 1000 + t[1] / 1e6;

/** A SpanExporter that sends spans to the parent process; dropped when there is none. */
class IpcSpanExporter implements SpanExporter {
  constructor(private readonly service: string) {}

  export(spans: ReadableSpan[], done: (result: { code: number }) => void): void {
    if (process.send && process.connected) {
      const message: SpansMessage = { type: 'spans', spans: spans.map((s) => this.toShipped(s)) };
      process.send(message);
    }
    done({ code: 0 });
  }

  private toShipped(s: ReadableSpan): ShippedSpan {
    const ctx = s.spanContext();
    // sdk-trace-base 2 has parentSpanContext; 1.x had parentSpanId.
    const parent = (s as { parentSpanContext?: { spanId: string } }).parentSpanContext?.spanId ?? (s as { parentSpanId?: string }).parentSpanId;
    const attributes: ShippedSpan['attributes'] = {};
    for (const [k, v] of Object.entries(s.attributes)) if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') attributes[k] = v;
    return {
      traceId: ctx.traceId, spanId: ctx.spanId, parentSpanId: parent || undefined, service: this.service,
      name: s.name, kind: s.kind, start: hrMs(s.startTime), durationMs: hrMs(s.duration), status: s.status.code, attributes,
    };
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** A workload's mesh, tracer provider and admin server. */
export interface Workload {
  mesh: Mesh;
  /** The admin server's port (GET /metrics, GET /clusters). */
  adminPort: number;
  close(): Promise<void>;
}

/** An extra admin endpoint: `POST <path>` with the query string and body; answers JSON. */
export type AdminRoute = (query: URLSearchParams, body: string) => unknown;

/** The mesh options every demo workload shares: control plane (DEMO_XDS), identity (DEMO_CA), tracing. */
export function workloadMeshOptions(workload: WorkloadOptions) {
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new IpcSpanExporter(workload.name))] });
  const xds = process.env.DEMO_XDS;
  const ca = process.env.DEMO_CA;
  return {
    workload: { namespace: 'default', ...workload },
    ...(xds ? { xds: { server: xds, initialFetchTimeoutMs: 3000 } } : { config: [] }),
    ...(ca && { ca: { dir: ca } }),
    tracerProvider,
  };
}

/** Creates this process's mesh (control-plane mode when DEMO_XDS is set) and its admin server. */
export async function startWorkload(workload: WorkloadOptions, adminRoutes: Record<string, AdminRoute> = {}): Promise<Workload> {
  const options = workloadMeshOptions(workload);
  const mesh = await createMesh(options);
  const { close, adminPort } = await attachAdmin(mesh, adminRoutes);
  return {
    mesh,
    adminPort,
    async close() {
      await close();
      await mesh.close();
      await options.tracerProvider.shutdown();
    },
  };
}

/** Starts the admin server for a mesh created elsewhere (the gateway's). */
export async function attachAdmin(mesh: Mesh, adminRoutes: Record<string, AdminRoute> = {}): Promise<{ adminPort: number; close(): Promise<void> }> {
  const admin = await startAdmin(mesh, adminRoutes);
  return {
    adminPort: (admin.address() as AddressInfo).port,
    async close() {
      admin.closeAllConnections();
      await new Promise((resolve) => admin.close(resolve));
    },
  };
}

/**
 * PeerAuthentication and AuthorizationPolicy travel over xDS (the inbound
 * listener's filter chains and RBAC filters), so a scenario's policies are
 * the control plane's to push: this waits (bounded) until the workload's
 * inbound listener carries what the translator makes of `yaml`, so the
 * scenario switch returns with the policies in force.
 */
async function installSecurity(mesh: Mesh, yaml: string): Promise<void> {
  const resources = parseResources(await loadDocuments(yaml));
  const chainsOf = (listeners: readonly Listener[]) => JSON.stringify(listeners.find((l) => l.name === VIRTUAL_INBOUND)?.filter_chains ?? null);
  const wanted = chainsOf(translate(resources as never, mesh.proxy).listeners.map((l) => normalize(TYPE_URL.listener, l)));
  for (let i = 0; i < 100; i++) {
    if (chainsOf(mesh.snapshot.resources.listeners) === wanted) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  console.warn(`${mesh.proxy.name}: the control plane has not pushed this scenario's inbound policy within 5 s`);
}

async function readBody(req: import('node:http').IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body;
}

/** Envoy-admin-like endpoints on 127.0.0.1 for the demo's collector. */
async function startAdmin(mesh: Mesh, routes: Record<string, AdminRoute>): Promise<Server> {
  const server = createServer((req, res) => {
    const send = (type: string, body: string): void => {
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
    };
    const url = new URL(req.url ?? '/', 'http://admin');
    const route = req.method === 'POST' ? routes[url.pathname] ?? (url.pathname === '/security' ? (_q: URLSearchParams, yaml: string) => installSecurity(mesh, yaml) : undefined) : undefined;
    if (route) {
      readBody(req).then((body) => route(url.searchParams, body)).then(
        (result) => send('application/json', JSON.stringify(result ?? null)),
        (err: Error) => res.writeHead(400).end(err.message),
      );
    } else if (req.url === '/metrics') {
      mesh.metrics().then((text) => send('text/plain; version=0.0.4', text), (err: Error) => res.writeHead(500).end(err.message));
    } else if (req.url === '/clusters') {
      send('application/json', JSON.stringify(mesh.clusters()));
    } else if (req.url === '/xds') {
      send('application/json', JSON.stringify(mesh.xdsStatus() ?? null));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  return server;
}
