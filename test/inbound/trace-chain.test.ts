/**
 * One request through three workloads — an Express app called with B3 (or
 * W3C) headers, which calls a Fastify app through mesh.fetch, which calls a
 * third (Express) service — must make one trace: same trace id, SERVER →
 * CLIENT → SERVER → CLIENT → SERVER, with no header code in the apps; and
 * istio_* metrics from both reporters.
 */
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import express from 'express';
import Fastify from 'fastify';
import { request } from 'undici';
import { createMesh, type Mesh } from '../../src/mesh.js';
import { expressMiddleware } from '../../src/http/express.js';
import { fastifyPlugin } from '../../src/http/fastify.js';
import { find, parseExposition } from '../telemetry/exposition.js';
import { applyWithInbound, clientHopsBetween, listen, listenFastify, memoryTracing, services } from './setup.js';

const TRACE_B3 = '463ac35c9f6413ad48485a3953bb6124';
const SPAN_B3 = 'a2fb4a1d1a96d312';
const TRACE_W3C = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_W3C = '00f067aa0ba902b7';

const { exporter, tracerProvider } = memoryTracing();
let front: Mesh, calc: Mesh, db: Mesh;
const closers: Array<() => Promise<void>> = [];
let frontPort = 0;
/** What each app saw, for assertions: the trace id of its mesh context and leaked headers. */
const seen = { front: [] as string[], calc: [] as string[], db: [] as string[], leakedPeerHeaders: 0 };

function traceIdOf(mesh: Mesh): string {
  const ctx = mesh.context.getStore();
  return (ctx && trace.getSpan(ctx)?.spanContext().traceId) ?? 'none';
}

before(async () => {
  front = await createMesh({ workload: { name: 'frontend', namespace: 'default', labels: { app: 'frontend', version: 'v1' } }, tracerProvider });
  calc = await createMesh({ workload: { name: 'calculate-v2', namespace: 'default', labels: { app: 'calculate', version: 'v2' } }, tracerProvider });
  db = await createMesh({ workload: { name: 'db', namespace: 'default', labels: { app: 'db', version: 'v1' } }, tracerProvider });

  // The apps: no trace or header code anywhere, just mesh.fetch.
  const dbApp = express();
  dbApp.use(expressMiddleware(db));
  dbApp.get('/rows', (req, res) => {
    seen.db.push(traceIdOf(db));
    if (req.headers['x-envoy-peer-metadata'] !== undefined) seen.leakedPeerHeaders++;
    res.json([1, 2, 3]);
  });
  const dbServer = await listen(dbApp);

  const calcApp = Fastify();
  await calcApp.register(fastifyPlugin(calc));
  calcApp.get('/calculate', async (request) => {
    seen.calc.push(traceIdOf(calc));
    if (request.headers['x-envoy-peer-metadata'] !== undefined) seen.leakedPeerHeaders++;
    const rows = await (await calc.fetch('http://db.default.svc.cluster.local:8001/rows')).json();
    return { rows, result: 3 };
  });
  const calcServer = await listenFastify(calcApp);

  const frontApp = express();
  frontApp.use(expressMiddleware(front));
  frontApp.use(express.json());
  frontApp.post('/compute', async (req, res) => {
    // Runs from the body parser's 'end' event: the context must have survived it.
    seen.front.push(traceIdOf(front));
    const answer = await (await front.fetch(`http://calculate.default.svc.cluster.local:8000/calculate?x=${req.body.x}`)).json();
    res.json({ answer });
  });
  // A hand-written body reader resumes the app from the socket's 'end' event (no AsyncResource, unlike raw-body).
  frontApp.post('/manual', (req, _res, next) => {
    req.on('data', () => undefined);
    req.on('end', () => next());
  }, (_req, res) => {
    seen.front.push(traceIdOf(front));
    res.end('ok');
  });
  const frontServer = await listen(frontApp);
  frontPort = frontServer.port;
  closers.push(frontServer.close, calcServer.close, dbServer.close);

  const config = services([{ name: 'calculate', port: calcServer.port, servicePort: 8000, version: 'v2' }, { name: 'db', port: dbServer.port, servicePort: 8001 }]);
  for (const m of [front, calc, db]) await applyWithInbound(m, config);
});

after(async () => {
  for (const close of closers) await close();
  await Promise.all([front.close(), calc.close(), db.close()]);
});

async function compute(headers: Record<string, string>): Promise<unknown> {
  const res = await request(`http://127.0.0.1:${frontPort}/compute`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ x: 1 }),
  });
  assert.equal(res.statusCode, 200);
  return res.body.json();
}

/** The finished spans of a trace, once its three SERVER spans have ended (they end on 'finish', maybe after the client read the body). */
async function traceSpans(traceId: string): Promise<ReadableSpan[]> {
  for (let i = 0; i < 100; i++) {
    const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    if (spans.filter((s) => s.kind === SpanKind.SERVER).length >= 3) return spans;
    await new Promise((r) => setTimeout(r, 20));
  }
  return exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
}

function serverSpan(spans: readonly ReadableSpan[], path: string): ReadableSpan {
  const s = spans.find((x) => x.kind === SpanKind.SERVER && x.attributes['url.path'] === path);
  assert.ok(s, `a SERVER span for ${path}`);
  return s;
}

function assertChain(spans: readonly ReadableSpan[], traceId: string, callerSpanId: string): void {
  assert.ok(spans.every((s) => s.spanContext().traceId === traceId), 'one trace id');
  const f = serverSpan(spans, '/compute');
  const c = serverSpan(spans, '/calculate');
  const d = serverSpan(spans, '/rows');
  assert.equal(f.parentSpanContext?.spanId, callerSpanId, 'frontend SERVER span continues the caller');
  assert.equal(f.parentSpanContext?.isRemote, true);
  assert.ok(clientHopsBetween(spans, c, f) >= 1, 'calculate SERVER span is a child of a frontend CLIENT span');
  assert.ok(clientHopsBetween(spans, d, c) >= 1, 'db SERVER span is a child of a calculate CLIENT span');
  assert.equal(f.attributes['http.route'], '/compute', 'Express route template recorded at the end');
  assert.equal(c.attributes['http.route'], '/calculate', 'Fastify route template');
  assert.equal(spans.filter((s) => s.kind === SpanKind.SERVER).length, 3);
  assert.ok(spans.filter((s) => s.kind === SpanKind.CLIENT).length >= 2);
}

test('Express app continues a B3 caller and runs its handler in the request context (after a slow body)', async () => {
  exporter.reset();
  seen.front.length = 0;
  // The body arrives in two packets 50 ms apart: express.json() then calls next() from a socket
  // 'data'/'end' event, outside the middleware's async context, unless the request's listeners are bound.
  async function* slowBody() {
    yield Buffer.from('{"x":');
    await new Promise((r) => setTimeout(r, 50));
    yield Buffer.from('1}');
  }
  const res = await request(`http://127.0.0.1:${frontPort}/compute`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-b3-traceid': TRACE_B3, 'x-b3-spanid': SPAN_B3, 'x-b3-sampled': '1' },
    body: Readable.from(slowBody()),
  });
  await res.body.dump();
  const manual = await request(`http://127.0.0.1:${frontPort}/manual`, {
    method: 'POST', headers: { 'x-b3-traceid': TRACE_B3, 'x-b3-spanid': SPAN_B3, 'x-b3-sampled': '1' }, body: Readable.from(slowBody()),
  });
  assert.equal(await manual.body.text(), 'ok');
  assert.deepEqual(seen.front, [TRACE_B3, TRACE_B3]);
  const f = (await traceSpans(TRACE_B3)).find((s) => s.kind === SpanKind.SERVER && s.attributes['url.path'] === '/compute');
  assert.ok(f);
  assert.equal(f.parentSpanContext?.spanId, SPAN_B3);
  assert.equal(f.attributes['http.request.method'], 'POST');
});

test('B3 caller → Express → mesh.fetch → Fastify → mesh.fetch → db: one trace, SERVER/CLIENT chain', async () => {
  exporter.reset();
  seen.calc.length = 0;
  seen.db.length = 0;
  const body = await compute({ 'x-b3-traceid': TRACE_B3, 'x-b3-spanid': SPAN_B3, 'x-b3-sampled': '1' });
  assert.deepEqual(body, { answer: { rows: [1, 2, 3], result: 3 } });
  assert.deepEqual(seen.calc, [TRACE_B3], 'the Fastify handler ran in the propagated trace');
  assert.deepEqual(seen.db, [TRACE_B3]);
  assert.equal(seen.leakedPeerHeaders, 0, 'metadata-exchange headers are stripped before the app');
  assertChain(await traceSpans(TRACE_B3), TRACE_B3, SPAN_B3);
});

test('W3C-only caller: the same chain in one trace', async () => {
  exporter.reset();
  await compute({ traceparent: `00-${TRACE_W3C}-${SPAN_W3C}-01` });
  assertChain(await traceSpans(TRACE_W3C), TRACE_W3C, SPAN_W3C);
});

test('istio_requests_total and the duration histogram from both reporters', async () => {
  const before = parseExposition(await calc.metrics());
  const base = find(before, 'istio_requests_total', { reporter: 'destination', source_workload: 'frontend' })[0]?.value ?? 0;
  const n = 3;
  for (let i = 0; i < n; i++) await compute({});
  // Let the last SERVER spans/metrics finish ('finish' may follow the client's read).
  await new Promise((r) => setTimeout(r, 50));

  const frontSamples = parseExposition(await front.metrics());
  const calcSamples = parseExposition(await calc.metrics());

  // frontend, destination side: called by a client outside the mesh.
  const dest = find(frontSamples, 'istio_requests_total', {
    reporter: 'destination', destination_workload: 'frontend', destination_app: 'frontend', destination_version: 'v1',
    destination_service: 'frontend.default.svc.cluster.local', response_code: '200', response_flags: '-', request_protocol: 'http',
  });
  assert.equal(dest.length, 1);
  assert.ok(dest[0]!.value >= n);

  // frontend → calculate, source side: destination labels learned from calculate's metadata-exchange response.
  const srcLabels = {
    reporter: 'source', source_workload: 'frontend', source_app: 'frontend', source_version: 'v1',
    destination_service: 'calculate.default.svc.cluster.local', destination_workload: 'calculate-v2', destination_app: 'calculate',
    destination_version: 'v2', response_code: '200',
  };
  const src = find(frontSamples, 'istio_requests_total', srcLabels);
  assert.equal(src.length, 1, 'one source-reporter series for frontend → calculate');
  assert.ok(src[0]!.value >= n);
  const srcHist = find(frontSamples, 'istio_request_duration_milliseconds_count', srcLabels);
  assert.equal(srcHist[0]?.value, src[0]!.value, 'histogram count matches the counter');

  // calculate, destination side: source labels from frontend's metadata-exchange request headers.
  const calcLabels = {
    reporter: 'destination', source_workload: 'frontend', source_app: 'frontend', source_version: 'v1', source_workload_namespace: 'default',
    destination_workload: 'calculate-v2', destination_app: 'calculate', destination_version: 'v2',
    destination_service: 'calculate.default.svc.cluster.local', response_code: '200', connection_security_policy: 'none',
  };
  const calcDest = find(calcSamples, 'istio_requests_total', calcLabels);
  assert.equal(calcDest.length, 1);
  assert.equal(calcDest[0]!.value - base, n);
  const calcHist = find(calcSamples, 'istio_request_duration_milliseconds_count', calcLabels);
  assert.equal(calcHist[0]?.value, calcDest[0]!.value);
  const inf = find(calcSamples, 'istio_request_duration_milliseconds_bucket', { ...calcLabels, le: '+Inf' });
  assert.equal(inf[0]?.value, calcDest[0]!.value);
  // Bodies: the response bytes histogram saw something.
  const bytes = find(calcSamples, 'istio_response_bytes_sum', calcLabels);
  assert.ok(bytes[0]!.value > 0);
});
