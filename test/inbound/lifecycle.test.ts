/**
 * The edges of an inbound request: the caller leaving before the response
 * (Envoy's DC), response byte counting, metadata-exchange response headers,
 * and requests with no trace headers starting a new trace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind } from '@opentelemetry/api';
import express from 'express';
import Fastify from 'fastify';
import { request } from 'undici';
import { createMesh } from '../../src/mesh.js';
import { expressMiddleware } from '../../src/http/express.js';
import { fastifyPlugin } from '../../src/http/fastify.js';
import { decodePeerMetadata, encodePeerMetadata } from '../../src/telemetry/peer-metadata.js';
import { find, parseExposition } from '../telemetry/exposition.js';
import { listen, listenFastify, memoryTracing } from './setup.js';

test('a caller that leaves early is recorded as response_code 0 with flag DC; the span ends', async (t) => {
  const { exporter, tracerProvider } = memoryTracing();
  const mesh = await createMesh({ workload: { name: 'slow', labels: { app: 'slow' } }, tracerProvider });
  let closed!: () => void;
  const sawClose = new Promise<void>((r) => (closed = r));
  const app = express();
  app.use(expressMiddleware(mesh));
  app.get('/hang', (req) => req.on('close', () => closed())); // never answers
  const server = await listen(app);
  t.after(async () => {
    await server.close();
    await mesh.close();
  });
  const ac = new AbortController();
  const pending = request(`http://127.0.0.1:${server.port}/hang`, { signal: ac.signal });
  setTimeout(() => ac.abort(), 50).unref();
  await assert.rejects(pending);
  await sawClose;
  await new Promise((r) => setTimeout(r, 20));
  const dc = find(parseExposition(await mesh.metrics()), 'istio_requests_total', { reporter: 'destination', response_code: '0', response_flags: 'DC' });
  assert.equal(dc[0]?.value, 1);
  const span = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER);
  assert.ok(span, 'the SERVER span ended');
  assert.equal(span.attributes['meshlet.flags'], 'DC');
});

test('Fastify: metadata-exchange response headers, response bytes, a new trace without headers, 404s without route labels', async (t) => {
  const { exporter, tracerProvider } = memoryTracing();
  const mesh = await createMesh({ workload: { name: 'calculate-v1', labels: { app: 'calculate', version: 'v1' } }, tracerProvider });
  const app = Fastify();
  await app.register(fastifyPlugin(mesh));
  app.get('/users/:id', async () => 'x'.repeat(1234));
  const server = await listenFastify(app);
  t.after(async () => {
    await server.close();
    await mesh.close();
  });
  // A meshed caller sends its metadata exchange; Envoy's peer_metadata filter answers in kind, and a caller that sent
  // none gets none (istio/proxy source/extensions/filters/http/peer_metadata/filter.cc, MXPropagationMethod::inject).
  const caller = encodePeerMetadata({ name: 'shop-v1', namespace: 'default', labels: { app: 'shop' } });
  const res = await request(`http://127.0.0.1:${server.port}/users/42`, { headers: { 'x-envoy-peer-metadata-id': caller.id, 'x-envoy-peer-metadata': caller.value } });
  assert.equal((await res.body.text()).length, 1234);
  const meta = decodePeerMetadata(String(res.headers['x-envoy-peer-metadata']));
  assert.equal(meta?.workloadName, 'calculate-v1');
  assert.equal(meta?.labels?.version, 'v1');
  assert.match(String(res.headers['x-envoy-peer-metadata-id']), /^sidecar~/);
  const missing = await request(`http://127.0.0.1:${server.port}/nope/${Math.random()}`);
  assert.equal(missing.statusCode, 404);
  await missing.body.dump();
  await new Promise((r) => setTimeout(r, 20));

  const samples = parseExposition(await mesh.metrics());
  const bytes = find(samples, 'istio_response_bytes_sum', { reporter: 'destination', response_code: '200' });
  // Envoy's wire bytes: the status line and headers (metadata exchange among them) on top of the 1234-byte body.
  assert.ok(bytes[0]!.value > 1234 + 'HTTP/1.1 200 OK\r\n'.length && bytes[0]!.value < 1234 + 4096, `response wire bytes ${bytes[0]?.value}`);
  assert.equal(find(samples, 'istio_requests_total', { response_code: '404' })[0]?.value, 1);
  assert.ok(samples.every((s) => !Object.values(s.labels).some((v) => v.includes('nope'))), 'paths never become labels');
  const spans = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER);
  assert.equal(spans.length, 2);
  assert.equal(spans[0]!.parentSpanContext, undefined, 'no trace headers: a new root trace');
  assert.equal(spans[0]!.name, 'GET /users/:id');
  assert.equal(spans[0]!.attributes['http.route'], '/users/:id');
  assert.equal(spans[1]!.attributes['http.route'], undefined);
  const plain = await request(`http://127.0.0.1:${server.port}/users/1`);
  await plain.body.dump();
  assert.equal(plain.headers['x-envoy-peer-metadata'], undefined);
  assert.equal(plain.headers['x-envoy-peer-metadata-id'], undefined);
});
