import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { SpanKind } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { request } from 'undici';
import { createControlPlane } from '../../src/control-plane/index.js';
import { createMesh, MeshConfigError, seededRandom, type Mesh } from '../../src/index.js';
import { REQUEST_COUNT, RESPONSE_SIZE, telemetryPolicyFor } from '../../src/telemetry/telemetry-policy.js';
import { configDir } from '../control-plane/helpers.js';
import { startServer } from '../helpers/http-servers.js';
import { calculateService, docs } from '../helpers/mesh-config.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';

function tracing() {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  return { exporter, tracerProvider };
}

/** A Telemetry resource; `spec` is YAML indented under `spec:`. */
function telemetry(name: string, namespace: string, spec: string): string {
  return `
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: ${name}, namespace: ${namespace} }
spec:
${spec}
`;
}

const sampling = (pct: number, mode = 'CLIENT_AND_SERVER'): string => `  tracing: [{ match: { mode: ${mode} }, randomSamplingPercentage: ${pct} }]`;

/** Root requests (no trace context) from `mesh` to calculate, `batch` at a time. */
async function rootRequests(mesh: Mesh, count: number, batch = 25): Promise<void> {
  for (let done = 0; done < count; done += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, count - done) }, async () => {
      // The FQDN: a workload outside `default` does not expand the short name to this service.
      const res = await mesh.request('http://calculate.default.svc.cluster.local:8000/add');
      await res.body.dump();
    }));
  }
}

/** An HTTP server behind `mesh.express()`; the handler may call out through the mesh. */
async function serveInbound(mesh: Mesh, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ port: number; close(): Promise<void> }> {
  const mw = mesh.express();
  const server = createServer((req, res) => mw(req as never, res as never, () => handler(req, res)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const seriesLines = (text: string, metric: string): string[] => text.split('\n').filter((l) => l.startsWith(`${metric}{`));

test('randomSamplingPercentage 10: ~10% of 2,000 root requests are recorded; the rest reach upstream as -00 / x-b3-sampled: 0', { timeout: 60_000 }, async () => {
  const sampledSeen: string[] = [];
  let unsampledSeen = 0;
  const badHeaders: string[] = [];
  const upstream = await startServer('v1', (req, res) => {
    const tp = req.headers.traceparent as string | undefined;
    const b3 = req.headers['x-b3-sampled'];
    if (tp?.endsWith('-01') && b3 === '1') sampledSeen.push(tp.split('-')[1]!);
    else if (tp?.endsWith('-00') && b3 === '0' && /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/.test(tp)) unsampledSeen++;
    else badHeaders.push(`${tp} ${String(b3)}`);
    res.end('ok');
  });
  const { exporter, tracerProvider } = tracing();
  const mesh = await createMesh({
    random: seededRandom(7), tracerProvider,
    config: docs(calculateService([{ port: upstream.port, version: 'v1' }]), telemetry('mesh-default', 'istio-system', sampling(10))),
  });
  try {
    const total = 2000;
    await rootRequests(mesh, total);
    const spans = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT);
    // 10% ± 2.5 points: a seeded draw, but the bound is the statistical one (≈ 7σ at n = 2,000).
    assert.ok(spans.length >= 150 && spans.length <= 250, `recorded ${spans.length} of ${total}`);
    assert.deepEqual(badHeaders, [], 'every request carries a consistent W3C + B3 decision');
    assert.equal(sampledSeen.length + unsampledSeen, total);
    assert.equal(sampledSeen.length, spans.length, 'the sampled requests are exactly the recorded ones');
    assert.deepEqual(new Set(sampledSeen), new Set(spans.map((s) => s.spanContext().traceId)));
  } finally {
    await mesh.close();
    await upstream.close();
    await tracerProvider.shutdown();
  }
});

test('an incoming sampling decision is honoured: a sampled parent is recorded at 0%, an unsampled one is not at 100%', async () => {
  const upstream = await startServer('v1');
  const { exporter, tracerProvider } = tracing();
  const config = (pct: number) => docs(calculateService([{ port: upstream.port, version: 'v1' }]), telemetry('mesh-default', 'istio-system', sampling(pct)));
  const mesh = await createMesh({ workload: { name: 'client', labels: { app: 'client' } }, tracerProvider, config: config(0) });
  const inbound = await serveInbound(mesh, (_req, res) => {
    mesh.request('http://calculate:8000/add').then(async (up) => res.end(await up.body.text()), () => res.writeHead(502).end());
  });
  const call = (traceparent?: string) => request(`http://127.0.0.1:${inbound.port}/compute`, { headers: traceparent ? { traceparent } : {} }).then((r) => r.body.text());
  try {
    assert.equal(await call(`00-${TRACE_ID}-${PARENT_ID}-01`), 'v1');
    const spans = exporter.getFinishedSpans();
    const server = spans.find((s) => s.kind === SpanKind.SERVER);
    const client = spans.find((s) => s.kind === SpanKind.CLIENT);
    assert.ok(server && client, 'SERVER and CLIENT spans recorded at 0% under a sampled parent');
    assert.equal(server.spanContext().traceId, TRACE_ID);
    assert.equal(server.parentSpanContext?.spanId, PARENT_ID);
    assert.equal(client.parentSpanContext?.spanId, server.spanContext().spanId);
    assert.match(String(upstream.lastHeaders?.traceparent), new RegExp(`^00-${TRACE_ID}-${client.spanContext().spanId}-01$`));

    exporter.reset();
    assert.equal(await call(), 'v1');
    assert.equal(exporter.getFinishedSpans().length, 0, 'a root request is not sampled at 0%');
    assert.match(String(upstream.lastHeaders?.traceparent), /-00$/, 'the mesh decision travels downstream');

    await mesh.apply(config(100));
    assert.equal(await call(`00-${TRACE_ID}-${PARENT_ID}-00`), 'v1');
    assert.equal(exporter.getFinishedSpans().length, 0, 'an unsampled parent is honoured at 100%');
    assert.equal(upstream.lastHeaders?.traceparent?.slice(0, 35), `00-${TRACE_ID}`);
    assert.match(String(upstream.lastHeaders?.traceparent), /-00$/);
    assert.equal(await call(), 'v1');
    assert.deepEqual(exporter.getFinishedSpans().map((s) => s.kind).sort(), [SpanKind.SERVER, SpanKind.CLIENT].sort(), 'a root request is sampled at 100%');
  } finally {
    await inbound.close();
    await mesh.close();
    await upstream.close();
    await tracerProvider.shutdown();
  }
});

test('precedence: root namespace 100% < namespace 0% < workload selector 100% (the matching workload only)', async () => {
  const upstream = await startServer('v1');
  const config = docs(
    calculateService([{ port: upstream.port, version: 'v1' }]),
    telemetry('mesh-default', 'istio-system', sampling(100)),
    telemetry('namespace-off', 'default', sampling(0)),
    telemetry('client-on', 'default', `  selector: { matchLabels: { app: client } }\n${sampling(100)}`),
  );
  const workloads = [
    { name: 'client', namespace: 'default', labels: { app: 'client' }, expected: 10 },
    { name: 'other', namespace: 'default', labels: { app: 'other' }, expected: 0 },
    { name: 'client', namespace: 'prod', labels: { app: 'client' }, expected: 10 },
  ];
  const meshes = await Promise.all(workloads.map(async (w) => {
    const t = tracing();
    const mesh = await createMesh({ workload: { name: w.name, namespace: w.namespace, labels: w.labels }, tracerProvider: t.tracerProvider, config });
    return { ...t, mesh };
  }));
  try {
    for (const m of meshes) await rootRequests(m.mesh, 10, 5);
    assert.deepEqual(meshes.map((m) => m.exporter.getFinishedSpans().length), workloads.map((w) => w.expected));
  } finally {
    for (const m of meshes) {
      await m.mesh.close();
      await m.tracerProvider.shutdown();
    }
    await upstream.close();
  }
});

test('resolution: tracing fields are inherited per field and per mode; metric overrides apply in order, per provider', () => {
  const resources = [
    { kind: 'Telemetry', metadata: { name: 'mesh', namespace: 'istio-system' }, spec: {
      tracing: [{ randomSamplingPercentage: 5 }],
      metrics: [{ overrides: [{ disabled: true }] }],
    } },
    { kind: 'Telemetry', metadata: { name: 'ns', namespace: 'default' }, spec: {
      tracing: [{ match: { mode: 'SERVER' }, randomSamplingPercentage: 50 }],
      metrics: [
        { overrides: [{ match: { metric: 'REQUEST_COUNT', mode: 'CLIENT' }, disabled: false }] },
        { providers: [{ name: 'stackdriver' }], overrides: [{ match: { metric: 'ALL_METRICS' }, disabled: false }] },
      ],
    } },
    { kind: 'Telemetry', metadata: { name: 'wl', namespace: 'default' }, spec: {
      selector: { matchLabels: { app: 'client' } },
      tracing: [{ match: { mode: 'CLIENT' }, disableSpanReporting: true }],
      metrics: [{ providers: [{ name: 'prometheus' }], overrides: [{ match: { metric: 'RESPONSE_SIZE', mode: 'SERVER' }, disabled: false }, { match: { customMetric: 'x' }, disabled: false }] }],
    } },
    { kind: 'Telemetry', metadata: { name: 'waypoint', namespace: 'default' }, spec: { targetRefs: [{ kind: 'Service', name: 'x' }], tracing: [{ randomSamplingPercentage: 99 }] } },
  ];
  assert.deepEqual(telemetryPolicyFor(resources, { namespace: 'default', labels: { app: 'client' } }), {
    client: { samplingPercentage: 5, reportSpans: false },
    server: { samplingPercentage: 50, reportSpans: true },
    clientMetrics: REQUEST_COUNT,
    serverMetrics: RESPONSE_SIZE,
  });
  assert.deepEqual(telemetryPolicyFor(resources, { namespace: 'default', labels: { app: 'db' } })?.client, { samplingPercentage: 5, reportSpans: true });
  assert.deepEqual(telemetryPolicyFor(resources, { namespace: 'prod' }), {
    client: { samplingPercentage: 5, reportSpans: true }, server: { samplingPercentage: 5, reportSpans: true }, clientMetrics: 0, serverMetrics: 0,
  });
  assert.equal(telemetryPolicyFor(resources.slice(3), { namespace: 'default' }), undefined, 'a targetRefs resource selects no workload');
  assert.equal(telemetryPolicyFor([], { namespace: 'default' }), undefined);
});

test('disableSpanReporting: no span on that side, trace context still propagated', async () => {
  const upstream = await startServer('v1');
  const { exporter, tracerProvider } = tracing();
  const config = (spec: string) => docs(calculateService([{ port: upstream.port, version: 'v1' }]), telemetry('quiet', 'default', spec));
  const mesh = await createMesh({ tracerProvider, config: config('  tracing: [{ match: { mode: SERVER }, disableSpanReporting: true }]') });
  const inbound = await serveInbound(mesh, (_req, res) => {
    mesh.request('http://calculate:8000/add').then(async (up) => res.end(await up.body.text()), () => res.writeHead(502).end());
  });
  try {
    await (await request(`http://127.0.0.1:${inbound.port}/`, { headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` } })).body.dump();
    const spans = exporter.getFinishedSpans();
    assert.deepEqual(spans.map((s) => s.kind), [SpanKind.CLIENT], 'no SERVER span');
    assert.equal(spans[0]!.spanContext().traceId, TRACE_ID);
    assert.equal(spans[0]!.parentSpanContext?.spanId, PARENT_ID, 'the CLIENT span hangs under the caller: the trace stays connected');
    assert.equal(upstream.lastHeaders?.traceparent, `00-${TRACE_ID}-${spans[0]!.spanContext().spanId}-01`);

    // CLIENT off at 100% sampling: a root request reports nothing but carries a sampled trace downstream.
    exporter.reset();
    await mesh.apply(config('  tracing: [{ randomSamplingPercentage: 100 }, { match: { mode: CLIENT }, disableSpanReporting: true }]'));
    await (await mesh.request('http://calculate:8000/add')).body.dump();
    assert.equal(exporter.getFinishedSpans().length, 0);
    assert.match(String(upstream.lastHeaders?.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    assert.equal(upstream.lastHeaders?.['x-b3-sampled'], '1');
  } finally {
    await inbound.close();
    await mesh.close();
    await upstream.close();
    await tracerProvider.shutdown();
  }
});

test('metrics overrides: CLIENT ALL_METRICS off records no reporter="source" series, SERVER still counts; switchable by apply', async () => {
  let inbound: { port: number; close(): Promise<void> } | undefined;
  const config = (spec?: string) => docs(
    calculateService([{ port: inbound!.port, version: 'v1' }]),
    ...(spec ? [telemetry('metrics', 'default', spec)] : []),
  );
  const mesh = await createMesh({ workload: { name: 'calculate', labels: { app: 'calculate' } } });
  try {
    inbound = await serveInbound(mesh, (_req, res) => res.end('ok'));
    await mesh.apply(config(`  metrics: [{ overrides: [{ match: { metric: ALL_METRICS, mode: CLIENT }, disabled: true }, { match: { metric: REQUEST_SIZE, mode: SERVER }, disabled: true }] }]`));
    await rootRequests(mesh, 3, 3);
    let text = await mesh.metrics();
    assert.deepEqual(seriesLines(text, 'istio_requests_total').filter((l) => l.includes('reporter="source"')), []);
    const server = seriesLines(text, 'istio_requests_total').filter((l) => l.includes('reporter="destination"'));
    assert.equal(server.length, 1);
    assert.match(server[0]!, /\} 3$/);
    assert.match(seriesLines(text, 'istio_request_bytes_count').join('\n'), /reporter="destination".*\} 0$/, 'REQUEST_SIZE off for SERVER');
    assert.match(seriesLines(text, 'istio_response_bytes_count').join('\n'), /reporter="destination".*\} 3$/);

    await mesh.apply(config());
    await rootRequests(mesh, 2, 2);
    text = await mesh.metrics();
    assert.match(seriesLines(text, 'istio_requests_total').filter((l) => l.includes('reporter="source"')).join('\n'), /\} 2$/, 'a push without the resource turns metrics back on');
  } finally {
    await inbound?.close();
    await mesh.close();
  }
});

test('validation: randomSamplingPercentage 150 or an unknown mode is a MeshConfigError; apply throws and the previous config keeps serving', async () => {
  const upstream = await startServer('v1');
  const { exporter, tracerProvider } = tracing();
  const service = calculateService([{ port: upstream.port, version: 'v1' }]);
  const mesh = await createMesh({ tracerProvider, config: docs(service, telemetry('mesh-default', 'istio-system', sampling(0))) });
  try {
    await assert.rejects(mesh.apply(docs(service, telemetry('too-much', 'default', sampling(150)))), (err: unknown) => {
      assert.ok(err instanceof MeshConfigError);
      assert.equal(err.kind, 'Telemetry');
      assert.equal(err.resource, 'default/too-much');
      assert.equal(err.path, 'spec.tracing[0].randomSamplingPercentage');
      assert.match(err.message, /Telemetry default\/too-much: spec\.tracing\[0\]\.randomSamplingPercentage: must be ≤ 100, got 150/);
      return true;
    });
    await assert.rejects(mesh.apply(docs(service, telemetry('odd', 'default', sampling(5, 'BOTH')))), (err: unknown) => err instanceof MeshConfigError && err.path === 'spec.tracing[0].match.mode' && /must be one of CLIENT_AND_SERVER, CLIENT, SERVER/.test(err.reason));
    await assert.rejects(mesh.apply(docs(service, telemetry('odd', 'default', '  metrics: [{ overrides: [{ match: { metric: REQUEST_BYTES } }] }]'))), (err: unknown) => err instanceof MeshConfigError && err.path === 'spec.metrics[0].overrides[0].match.metric');
    await assert.rejects(mesh.apply(docs(service, telemetry('both', 'default', '  selector: { matchLabels: { app: x } }\n  targetRefs: [{ kind: Service, name: x }]'))), (err: unknown) => err instanceof MeshConfigError && err.path === 'spec.selector');
    const res = await mesh.request('http://calculate:8000/add');
    assert.equal(await res.body.text(), 'v1', 'the previous config keeps serving');
    assert.equal(exporter.getFinishedSpans().length, 0, 'and its 0% sampling is still in force');
    assert.match(String(upstream.lastHeaders?.traceparent), /-00$/);
  } finally {
    await mesh.close();
    await upstream.close();
    await tracerProvider.shutdown();
  }
});

test('over xDS: a Telemetry resource served by the control plane sets the SDK mesh\'s sampling', { timeout: 30_000 }, async () => {
  const upstream = await startServer('v1');
  const files = await configDir({
    'calculate.yaml': calculateService([{ port: upstream.port, version: 'v1' }]),
    'telemetry.yaml': telemetry('mesh-default', 'istio-system', sampling(0)),
  });
  const cp = await createControlPlane({ config: files.dir, port: 0, host: '127.0.0.1', debounceMs: 20 });
  const { exporter, tracerProvider } = tracing();
  const mesh = await createMesh({ workload: { name: 'client', namespace: 'default', labels: { app: 'client' } }, tracerProvider, xds: { server: `127.0.0.1:${cp.port}` } });
  try {
    await rootRequests(mesh, 20, 5);
    assert.equal(exporter.getFinishedSpans().length, 0, 'sampled at 0% from the control plane');
    assert.match(String(upstream.lastHeaders?.traceparent), /-00$/);

    await files.write('telemetry.yaml', telemetry('mesh-default', 'istio-system', sampling(100)));
    let recorded = false;
    for (let i = 0; i < 50 && !recorded; i++) {
      await rootRequests(mesh, 1, 1);
      recorded = exporter.getFinishedSpans().length > 0;
      if (!recorded) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(recorded, 'the 100% push is in force within 5 s');
  } finally {
    await mesh.close();
    await cp.close();
    await files.remove();
    await upstream.close();
    await tracerProvider.shutdown();
  }
});
