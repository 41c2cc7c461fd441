import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  InMemorySpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { MeshPropagator } from '../../src/telemetry/propagation.js';
import { redactUrl } from '../../src/telemetry/semconv.js';
import { MeshTracer } from '../../src/telemetry/tracing.js';
import { isSecretHeader } from '../../src/telemetry/headers.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';

function setup(recordHeaders?: string[]) {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  return { exporter, provider, tracer: new MeshTracer({ tracerProvider: provider, recordHeaders }) };
}

test('server span continues the B3 caller, client span is its child, with semantic-convention attributes', () => {
  const { exporter, tracer } = setup();
  const propagator = new MeshPropagator();
  const extracted = propagator.extract({ 'x-b3-traceid': TRACE_ID, 'x-b3-spanid': SPAN_ID, 'x-b3-sampled': '1' });
  const server = tracer.startServerSpan(extracted, {
    method: 'get', path: '/add', query: 'x=1&y=2', serverAddress: 'calculate', serverPort: 8000, clientAddress: '127.0.0.1',
    httpRoute: '/add', headers: { 'user-agent': 'curl/8' },
  });
  const serverCtx = trace.setSpan(extracted, server);
  const client = tracer.startClientSpan(serverCtx, {
    method: 'POST', url: 'http://db.default.svc.cluster.local:8000/rows', serverAddress: 'db.default.svc.cluster.local', serverPort: 8000,
    route: 'db-route', cluster: 'outbound|8000|v1|db.default.svc.cluster.local', protocolVersion: '1.1',
  });
  const headers: Record<string, string> = {};
  propagator.inject(trace.setSpan(serverCtx, client), headers);
  tracer.endClientSpan(client, { statusCode: 503, flags: 'UO' });
  tracer.endServerSpan(server, { statusCode: 200 });

  const [c, s] = exporter.getFinishedSpans();
  assert.ok(c && s);
  assert.equal(s.kind, SpanKind.SERVER);
  assert.equal(s.name, 'GET /add');
  assert.equal(s.spanContext().traceId, TRACE_ID);
  assert.equal(s.parentSpanContext?.spanId, SPAN_ID);
  assert.deepEqual(s.attributes, {
    'http.request.method': 'GET', 'url.path': '/add', 'url.scheme': 'http',
    'url.query': 'x=1&y=2', 'server.address': 'calculate', 'server.port': 8000, 'client.address': '127.0.0.1',
    'http.route': '/add', 'user_agent.original': 'curl/8', 'http.response.status_code': 200,
  });
  assert.equal(s.status.code, SpanStatusCode.UNSET);

  assert.equal(c.kind, SpanKind.CLIENT);
  assert.equal(c.spanContext().traceId, TRACE_ID);
  assert.equal(c.parentSpanContext?.spanId, s.spanContext().spanId);
  assert.equal(c.attributes['url.full'], 'http://db.default.svc.cluster.local:8000/rows');
  assert.equal(c.attributes['server.address'], 'db.default.svc.cluster.local');
  assert.equal(c.attributes['server.port'], 8000);
  assert.equal(c.attributes['network.protocol.version'], '1.1');
  assert.equal(c.attributes['meshlet.route'], 'db-route');
  assert.equal(c.attributes['meshlet.cluster'], 'outbound|8000|v1|db.default.svc.cluster.local');
  assert.equal(c.attributes['meshlet.flags'], 'UO');
  assert.equal(c.attributes['http.response.status_code'], 503);
  assert.equal(c.attributes['error.type'], '503');
  assert.equal(c.status.code, SpanStatusCode.ERROR);
  // The injected headers name the CLIENT span as the next hop's parent.
  assert.equal(headers.traceparent, `00-${TRACE_ID}-${c.spanContext().spanId}-01`);
  assert.equal(headers['x-b3-spanid'], c.spanContext().spanId);
});

test('secret headers are never recorded, even when configured', () => {
  const { exporter, tracer } = setup(['Authorization', 'cookie', 'set-cookie', 'proxy-authorization', 'x-auth-token', 'x-goog-api-key', 'x-request-id', 'content-type']);
  const secret = 'SECRET-VALUE';
  const span = tracer.startClientSpan(ROOT_CONTEXT, {
    method: 'GET', url: `https://user:${secret}@api.example.com/x?sig=${secret}&a=1`, serverAddress: 'api.example.com', serverPort: 443,
    headers: ['Authorization', `Bearer ${secret}`, 'Cookie', secret, 'Proxy-Authorization', secret, 'X-Auth-Token', secret,
      'x-goog-api-key', secret, 'X-Request-Id', 'req-1'],
  });
  tracer.endClientSpan(span, { statusCode: 200, headers: { 'set-cookie': secret, 'content-type': 'text/plain' } });
  const [s] = exporter.getFinishedSpans();
  assert.ok(s);
  assert.equal(s.attributes['url.full'], 'https://REDACTED:REDACTED@api.example.com/x?sig=REDACTED&a=1');
  assert.deepEqual(s.attributes['http.request.header.x-request-id'], ['req-1']);
  assert.deepEqual(s.attributes['http.response.header.content-type'], ['text/plain']);
  assert.ok(!JSON.stringify(s.attributes).includes(secret), JSON.stringify(s.attributes));
  for (const h of ['authorization', 'cookie', 'set-cookie', 'proxy-authorization', 'x-auth-token', 'x-csrf-token', 'x-my-api-key', 'x-client-secret']) {
    assert.ok(isSecretHeader(h), h);
  }
  for (const h of ['x-request-id', 'content-type', 'user-agent', 'version']) assert.ok(!isSecretHeader(h), h);
  assert.equal(redactUrl('http://h/p?Signature=abc&X-Goog-Signature=d#f'), 'http://h/p?Signature=REDACTED&X-Goog-Signature=REDACTED#f');
  assert.equal(redactUrl('http://h/a@b'), 'http://h/a@b');
});

test('sampling decision from the parent is honoured: sampled=0 records nothing but still propagates', () => {
  const { exporter, tracer } = setup();
  const propagator = new MeshPropagator();
  const extracted = propagator.extract({ traceparent: `00-${TRACE_ID}-${SPAN_ID}-00` });
  const server = tracer.startServerSpan(extracted, { method: 'GET', path: '/' });
  const client = tracer.startClientSpan(trace.setSpan(extracted, server), { method: 'GET', url: 'http://a/', serverAddress: 'a', serverPort: 80 });
  assert.equal(server.isRecording(), false);
  const headers: Record<string, string> = {};
  propagator.inject(trace.setSpan(extracted, client), headers);
  tracer.endClientSpan(client, { statusCode: 200 });
  tracer.endServerSpan(server, { statusCode: 200 });
  assert.equal(exporter.getFinishedSpans().length, 0);
  assert.match(headers.traceparent!, new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-00$`));
  assert.equal(headers['x-b3-sampled'], '0');
});

test('events for fault injection, ejection and rate limiting; attempts are CLIENT children with resend_count', () => {
  const { exporter, tracer } = setup();
  const info = { method: 'GET', url: 'http://calc:8000/', serverAddress: 'calc', serverPort: 8000 };
  const req = tracer.startClientSpan(ROOT_CONTEXT, info);
  const reqCtx = trace.setSpan(ROOT_CONTEXT, req);
  const a0 = tracer.startAttemptSpan(reqCtx, info, 0);
  tracer.faultDelay(a0, 250);
  tracer.ejection(a0, '10.0.0.1:8000', 'outbound|8000||calc', 'consecutive_5xx');
  tracer.endClientSpan(a0, { statusCode: 503 });
  const a1 = tracer.startAttemptSpan(reqCtx, info, 1);
  tracer.faultAbort(a1, 418);
  tracer.endClientSpan(a1, { statusCode: 418, flags: 'FI' });
  tracer.rateLimited(req, 'local', 'calculate-limit');
  tracer.endClientSpan(req, { statusCode: 429, flags: 'RL' });
  const spans = exporter.getFinishedSpans();
  assert.equal(spans.length, 3);
  const [s0, s1, r] = spans;
  assert.equal(s0!.parentSpanContext?.spanId, req.spanContext().spanId);
  assert.equal(s1!.parentSpanContext?.spanId, req.spanContext().spanId);
  assert.equal(s0!.attributes['http.request.resend_count'], undefined);
  assert.equal(s1!.attributes['http.request.resend_count'], 1);
  assert.deepEqual(s0!.events.map((e) => e.name), ['meshlet.fault.delay', 'meshlet.outlier.ejection']);
  assert.equal(s0!.events[0]!.attributes?.['meshlet.fault.delay_ms'], 250);
  assert.equal(s0!.events[1]!.attributes?.['meshlet.endpoint'], '10.0.0.1:8000');
  assert.deepEqual(s1!.events.map((e) => e.name), ['meshlet.fault.abort']);
  assert.equal(r!.events[0]!.name, 'meshlet.ratelimit.rejected');
  assert.equal(r!.events[0]!.attributes?.['meshlet.ratelimit.scope'], 'local');
  assert.equal(r!.attributes['meshlet.flags'], 'RL');
});

test('errors: recorded as exception, error.type from the code; server 4xx is not an error', () => {
  const { exporter, tracer } = setup();
  const c = tracer.startClientSpan(ROOT_CONTEXT, { method: 'PURGE', url: 'http://a/', serverAddress: 'a', serverPort: 80 });
  tracer.endClientSpan(c, { statusCode: 0, error: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
  const s = tracer.startServerSpan(ROOT_CONTEXT, { method: 'GET', path: '/missing' });
  tracer.endServerSpan(s, { statusCode: 404 });
  const [cs, ss] = exporter.getFinishedSpans();
  assert.equal(cs!.name, '_OTHER');
  assert.equal(cs!.attributes['http.request.method_original'], 'PURGE');
  assert.equal(cs!.attributes['error.type'], 'ECONNREFUSED');
  assert.equal(cs!.status.code, SpanStatusCode.ERROR);
  assert.equal(cs!.events[0]!.name, 'exception');
  assert.equal(ss!.status.code, SpanStatusCode.UNSET);
  assert.equal(ss!.attributes['error.type'], undefined);
});

test('tracing off (global no-op provider): non-recording spans that keep the parent context', () => {
  const tracer = new MeshTracer();
  const extracted = new MeshPropagator().extract({ traceparent: `00-${TRACE_ID}-${SPAN_ID}-01` });
  const span = tracer.startClientSpan(extracted, { method: 'GET', url: 'http://a/', serverAddress: 'a', serverPort: 80 });
  assert.equal(span.isRecording(), false);
  assert.equal(span.spanContext().traceId, TRACE_ID);
  assert.equal(span.spanContext().spanId, SPAN_ID);
  tracer.faultAbort(span, 500);
  tracer.endClientSpan(span, { statusCode: 500 });
});
