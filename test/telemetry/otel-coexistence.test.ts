/**
 * meshlet next to OpenTelemetry's own auto-instrumentation, registered for
 * real (@opentelemetry/instrumentation-http and -undici with the Node SDK's
 * provider, context manager and W3C propagator), as most Node services run
 * it: one coherent trace — the upstream receives exactly one parseable
 * traceparent, every span hangs off the caller's span in one chain, and the
 * instrumentation's undici CLIENT span does not duplicate the mesh's.
 *
 * This file registers the instrumentations for its whole process (node --test
 * runs each file in its own process), so it leaves the other suites alone.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { context, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { request } from 'undici';
import express from 'express';
import { createMesh } from '../../src/index.js';
import { TRACER_NAME } from '../../src/telemetry/tracing.js';
import { calculateService } from '../helpers/mesh-config.js';

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register();
registerInstrumentations({ instrumentations: [new HttpInstrumentation(), new UndiciInstrumentation()] });
// Through require, so require-in-the-middle hands the module to the instrumentation to patch.
const http = createRequire(import.meta.url)('node:http') as typeof import('node:http');

after(() => provider.shutdown());

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

async function listen(server: import('node:http').Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** Spans of the trace, waiting until `count` have ended (bounded). */
async function spansOf(count: number): Promise<ReadableSpan[]> {
  for (let i = 0; i < 200; i++) {
    const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === TRACE);
    if (spans.length >= count) return spans;
    await new Promise((r) => setTimeout(r, 25));
  }
  return exporter.getFinishedSpans();
}

test('a meshed Express service with OTel http + undici instrumentation: one traceparent upstream, one chain of spans', async (t) => {
  // The upstream: a plain (instrumented) node:http server that keeps the raw headers it got.
  const seen: string[][] = [];
  const upstream = http.createServer((req, res) => {
    seen.push(req.rawHeaders);
    res.end('v1');
  });
  const upstreamPort = await listen(upstream);

  const mesh = await createMesh({ workload: { name: 'api', labels: { app: 'api', version: 'v1' } }, config: calculateService([{ port: upstreamPort, version: 'v1' }]) });
  const app = express();
  app.use(mesh.express());
  app.get('/sum', async (_req, res) => {
    const r = await mesh.fetch('http://calculate:8000/add?x=1&y=2');
    res.send(`via ${await r.text()}`);
  });
  const server = http.createServer(app);
  const port = await listen(server);
  t.after(async () => {
    await new Promise((r) => server.close(r));
    await mesh.close();
    await new Promise((r) => upstream.close(r));
  });

  // The test's own call is the "caller" with its traceparent: kept out of the undici instrumentation.
  const res = await context.with(suppressTracing(ROOT_CONTEXT), () => request(`http://127.0.0.1:${port}/sum`, { headers: { traceparent: `00-${TRACE}-${CALLER_SPAN}-01` } }));
  assert.equal(await res.body.text(), 'via v1');

  assert.equal(seen.length, 1);
  const raw = seen[0]!;
  const traceparents = raw.filter((_, i) => i % 2 === 1 && raw[i - 1]!.toLowerCase() === 'traceparent');
  assert.equal(traceparents.length, 1, `exactly one traceparent on the wire, got ${JSON.stringify(traceparents)}`);
  const sent = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(traceparents[0]!);
  assert.ok(sent, `a parseable traceparent: ${traceparents[0]}`);
  assert.equal(sent[1], TRACE, 'in the caller\'s trace');

  // Instrumentation SERVER (app) → mesh SERVER → mesh CLIENT → instrumentation SERVER (upstream): 4 spans.
  const spans = await spansOf(4);
  const ids = new Set(spans.map((s) => s.spanContext().spanId));
  const roots = spans.filter((s) => s.parentSpanContext?.spanId === CALLER_SPAN);
  assert.equal(roots.length, 1, `one span is the caller's child, got ${roots.map((s) => `${s.instrumentationScope.name}:${s.name}`).join(', ')}`);
  for (const s of spans) {
    if (s === roots[0]) continue;
    assert.ok(ids.has(s.parentSpanContext?.spanId ?? ''), `${s.instrumentationScope.name} ${s.name} hangs off a span of the trace`);
  }
  const meshClient = spans.filter((s) => s.instrumentationScope.name === TRACER_NAME && s.kind === SpanKind.CLIENT);
  assert.equal(meshClient.length, 1);
  assert.equal(sent[2], meshClient[0]!.spanContext().spanId, 'the upstream\'s parent is the mesh\'s CLIENT span');
  const undiciClient = spans.filter((s) => s.instrumentationScope.name.includes('undici'));
  assert.deepEqual(undiciClient.map((s) => s.name), [], 'the instrumentation does not record a second CLIENT span for the mesh\'s own upstream request');
  const meshServer = spans.find((s) => s.instrumentationScope.name === TRACER_NAME && s.kind === SpanKind.SERVER)!;
  const httpServer = spans.find((s) => s.instrumentationScope.name.includes('http') && s.kind === SpanKind.SERVER && s.parentSpanContext?.spanId === CALLER_SPAN);
  assert.ok(httpServer, 'the http instrumentation\'s SERVER span is the caller\'s child');
  assert.equal(meshServer.parentSpanContext?.spanId, httpServer.spanContext().spanId, 'the mesh\'s SERVER span nests under it, not beside it');
  assert.equal(meshClient[0]!.parentSpanContext?.spanId, meshServer.spanContext().spanId);
});

test('node:http through mesh.httpAgent under the http instrumentation: its CLIENT span is the mesh CLIENT span\'s parent, one traceparent', async (t) => {
  const seen: string[][] = [];
  const upstream = http.createServer((req, res) => {
    seen.push(req.rawHeaders);
    res.end('v1');
  });
  const upstreamPort = await listen(upstream);
  const mesh = await createMesh({ workload: { name: 'agent-client' }, config: calculateService([{ port: upstreamPort, version: 'v1' }]) });
  t.after(async () => {
    await mesh.close();
    await new Promise((r) => upstream.close(r));
  });
  exporter.reset();
  const parent = provider.getTracer('test').startSpan('caller');
  const body = await context.with(trace.setSpan(ROOT_CONTEXT, parent), () => new Promise<string>((resolve, reject) => {
    http.get('http://calculate:8000/add', { agent: mesh.httpAgent }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => { text += c.toString(); });
      res.on('end', () => resolve(text));
    }).on('error', reject);
  }));
  parent.end();
  assert.equal(body, 'v1');
  const raw = seen[0]!;
  const traceparents = raw.filter((_, i) => i % 2 === 1 && raw[i - 1]!.toLowerCase() === 'traceparent');
  assert.equal(traceparents.length, 1, JSON.stringify(traceparents));
  const traceId = parent.spanContext().traceId;
  assert.match(traceparents[0]!, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
  let spans: ReadableSpan[] = [];
  for (let i = 0; i < 200 && spans.length < 4; i++) {
    spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    if (spans.length < 4) await new Promise((r) => setTimeout(r, 25));
  }
  const httpClient = spans.find((s) => s.kind === SpanKind.CLIENT && s.instrumentationScope.name.includes('http'));
  const meshClient = spans.find((s) => s.kind === SpanKind.CLIENT && s.instrumentationScope.name === TRACER_NAME);
  assert.ok(httpClient && meshClient, spans.map((s) => `${s.instrumentationScope.name}:${s.name}`).join(', '));
  assert.equal(httpClient.parentSpanContext?.spanId, parent.spanContext().spanId);
  assert.equal(meshClient.parentSpanContext?.spanId, httpClient.spanContext().spanId, 'nested, not siblings');
  assert.ok(traceparents[0]!.includes(meshClient.spanContext().spanId), 'the upstream continues from the mesh span');
});
