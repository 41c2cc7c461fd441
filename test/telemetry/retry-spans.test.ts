import assert from 'node:assert/strict';
import { test } from 'node:test';
import { credentials, status } from '@grpc/grpc-js';
import { SpanKind } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { request } from 'undici';
import { createMesh, seededRandom } from '../../src/index.js';
import { createMeshGrpc } from '../../src/grpc/index.js';
import { calculate, CalculateClient } from '../../examples/grpc/proto.js';
import { grpcCalculateService, grpcCalculateSubsets, startGrpcServer } from '../helpers/grpc-servers.js';
import { startServer } from '../helpers/http-servers.js';
import { calculateRoutes, calculateService, docs } from '../helpers/mesh-config.js';

function tracing() {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  return { exporter, tracerProvider };
}

/** The parent span id a traceparent header names. */
const parentIdOf = (traceparent: string | undefined): string | undefined => traceparent?.split('-')[2];

/** The request span (no resend_count) and its retry children, checked for shape. */
function requestAndRetries(spans: readonly ReadableSpan[]): { request: ReadableSpan; retries: ReadableSpan[] } {
  const clients = spans.filter((s) => s.kind === SpanKind.CLIENT);
  const request = clients.find((s) => s.attributes['http.request.resend_count'] === undefined);
  assert.ok(request, 'a request span without resend_count');
  const retries = clients.filter((s) => s !== request).sort((a, b) => Number(a.attributes['http.request.resend_count']) - Number(b.attributes['http.request.resend_count']));
  for (const r of retries) {
    assert.equal(r.parentSpanContext?.spanId, request.spanContext().spanId, 'a retry is a child of the request span');
    assert.equal(r.spanContext().traceId, request.spanContext().traceId);
  }
  return { request, retries };
}

test('HTTP: each retry is a CLIENT child of the request span, and the upstream sees the retry as its parent', async () => {
  const seen: Array<string | undefined> = [];
  const upstream = await startServer('v1', (req, res, server) => {
    seen.push(req.headers.traceparent as string | undefined);
    res.statusCode = server.hits <= 2 ? 503 : 200;
    res.end(server.hits <= 2 ? 'warming up' : 'ok');
  });
  const { exporter, tracerProvider } = tracing();
  const mesh = await createMesh({
    random: seededRandom(3), tracerProvider,
    config: docs(calculateService([{ port: upstream.port, version: 'v1' }]), calculateRoutes(`
    - retries: { attempts: 3, retryOn: 5xx }
      route: [{ destination: { host: calculate } }]`)),
  });
  try {
    const res = await request('http://calculate:8000/add', { dispatcher: mesh.dispatcher });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'ok');
    const { request: req, retries } = requestAndRetries(exporter.getFinishedSpans());
    assert.deepEqual(retries.map((r) => r.attributes['http.request.resend_count']), [1, 2]);
    assert.deepEqual(retries.map((r) => r.attributes['http.response.status_code']), [503, 200]);
    assert.equal(req.attributes['http.response.status_code'], 200);
    assert.deepEqual(req.events.map((e) => [e.name, e.attributes?.['meshlet.retry.reason']]), [['meshlet.retry', '503'], ['meshlet.retry', '503']]);
    // First try under the request span; each retry under its own span.
    assert.deepEqual(seen.map(parentIdOf), [req.spanContext().spanId, ...retries.map((r) => r.spanContext().spanId)]);
  } finally {
    await mesh.close();
    await upstream.close();
    await tracerProvider.shutdown();
  }
});

test('HTTP: a request that succeeds first time has one CLIENT span and no retry event', async () => {
  const upstream = await startServer('v1');
  const { exporter, tracerProvider } = tracing();
  const mesh = await createMesh({
    tracerProvider,
    config: docs(calculateService([{ port: upstream.port, version: 'v1' }]), calculateRoutes(`
    - retries: { attempts: 3, retryOn: 5xx }
      route: [{ destination: { host: calculate } }]`)),
  });
  try {
    const res = await request('http://calculate:8000/add', { dispatcher: mesh.dispatcher });
    await res.body.dump();
    const spans = exporter.getFinishedSpans();
    assert.equal(spans.length, 1);
    assert.equal(spans[0]!.events.length, 0);
  } finally {
    await mesh.close();
    await upstream.close();
    await tracerProvider.shutdown();
  }
});

test('gRPC: each retry is a CLIENT child of the call span, carrying its own traceparent', async () => {
  const seen: Array<string | undefined> = [];
  const server = await startGrpcServer('v1', {
    unary: (call, s) => {
      seen.push(call.metadata.get('traceparent')[0] as string | undefined);
      return s.calls <= 1 ? { code: status.UNAVAILABLE, details: 'warming up' } : undefined;
    },
  });
  const { exporter, tracerProvider } = tracing();
  const random = seededRandom(5);
  const mesh = await createMesh({
    random, tracerProvider,
    config: docs(grpcCalculateService([{ port: server.port, version: 'v1' }]), grpcCalculateSubsets(), calculateRoutes(`
    - retries: { attempts: 3, retryOn: unavailable }
      route: [{ destination: { host: calculate, subset: v1 } }]`)),
  });
  const grpc = createMeshGrpc(mesh, { random, telemetry: mesh.telemetry });
  const client = new CalculateClient('calculate.default.svc.cluster.local:9000', credentials.createInsecure(), grpc.clientOptions());
  try {
    assert.equal((await calculate(client, { x: 2, y: 3 })).value, 5);
    const { request: call, retries } = requestAndRetries(exporter.getFinishedSpans());
    assert.equal(retries.length, 1);
    assert.equal(retries[0]!.attributes['http.request.resend_count'], 1);
    assert.equal(retries[0]!.attributes['rpc.grpc.status_code'], status.OK);
    assert.equal(call.events[0]?.attributes?.['meshlet.retry.reason'], 'UNAVAILABLE');
    assert.deepEqual(seen.map(parentIdOf), [call.spanContext().spanId, retries[0]!.spanContext().spanId]);
  } finally {
    client.close();
    await grpc.close(0);
    await mesh.close();
    await server.close();
    await tracerProvider.shutdown();
  }
});
