// Two workloads' telemetry across real loopback HTTP: an inbound request with
// B3 headers enters "client", which calls "calculate"; one trace, both
// reporters' metrics, source_* labels learnt through metadata exchange.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { MeshTelemetry } from '../../src/telemetry/telemetry.js';
import { PEER_METADATA_HEADER } from '../../src/telemetry/peer-metadata.js';
import { find, parseExposition } from './exposition.js';

const TRACE_ID = '80f198ee56343ba864fe8b2a57d3eff7';
const SPAN_ID = 'e457b5a2e4d86bd1';

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function get(port: number, path: string, headers: Record<string, string>): Promise<{ res: IncomingMessage; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ res, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('B3 caller → client → calculate: one trace, both reporters, metadata-exchange labels', async () => {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const clientMesh = new MeshTelemetry({ workload: { name: 'client', namespace: 'default', labels: { app: 'client', version: 'v1' } }, tracerProvider });
  const calcMesh = new MeshTelemetry({ workload: { name: 'calculate-v2', namespace: 'default', labels: { app: 'calculate', version: 'v2' } }, tracerProvider });
  let calcSawPeerHeader: string | undefined = 'not called';

  const calc = createServer((req, res) => {
    const call = calcMesh.inbound.start({ method: req.method!, url: req.url!, headers: req.headers, clientAddress: req.socket.remoteAddress });
    calcSawPeerHeader = req.headers[PEER_METADATA_HEADER] as string | undefined;
    const own = calcMesh.inbound.responseHeaders!;
    res.setHeader('x-envoy-peer-metadata-id', own.id);
    res.setHeader(PEER_METADATA_HEADER, own.value);
    res.end('3');
    calcMesh.inbound.finish(call, { statusCode: 200, responseBytes: 1 });
  });
  const calcPort = await listen(calc);
  const target = clientMesh.outbound.target({ service: 'calculate.default.svc.cluster.local', cluster: 'outbound|8000||calculate.default.svc.cluster.local', route: 'calc' });

  const client = createServer((req, res) => {
    const inbound = clientMesh.inbound.start({ method: req.method!, url: req.url!, headers: req.headers });
    const out = clientMesh.outbound.start(inbound.context, target, {
      method: 'GET', url: `http://calculate.default.svc.cluster.local:8000/add`, serverAddress: 'calculate.default.svc.cluster.local', serverPort: 8000,
    });
    const headers: Record<string, string> = {};
    clientMesh.outbound.injectHeaders(out, headers);
    get(calcPort, '/add', headers).then(({ res: up, body }) => {
      clientMesh.outbound.finish(out, { statusCode: up.statusCode!, responseBytes: body.length, peerMetadata: up.headers[PEER_METADATA_HEADER] });
      res.end(body);
      clientMesh.inbound.finish(inbound, { statusCode: 200, responseBytes: body.length });
    }, (err: unknown) => {
      clientMesh.outbound.finish(out, { statusCode: 0, flags: 'UF', error: err });
      res.statusCode = 503;
      res.end();
      clientMesh.inbound.finish(inbound, { statusCode: 503 });
    });
  });
  const clientPort = await listen(client);
  try {
    for (let i = 0; i < 3; i++) {
      const { res, body } = await get(clientPort, '/compute', { 'x-b3-traceid': TRACE_ID, 'x-b3-spanid': SPAN_ID, 'x-b3-sampled': '1' });
      assert.equal(res.statusCode, 200);
      assert.equal(body, '3');
    }
    assert.equal(calcSawPeerHeader, undefined, 'metadata-exchange headers are stripped before the app');

    const spans = exporter.getFinishedSpans();
    assert.equal(spans.length, 9);
    const first = spans.slice(0, 3); // calculate SERVER, client CLIENT, client SERVER for request 1
    const [calcServer, clientCall, clientServer] = first as [typeof spans[0], typeof spans[0], typeof spans[0]];
    assert.deepEqual([calcServer.kind, clientCall.kind, clientServer.kind], [SpanKind.SERVER, SpanKind.CLIENT, SpanKind.SERVER]);
    for (const s of first) assert.equal(s.spanContext().traceId, TRACE_ID);
    assert.equal(clientServer.parentSpanContext?.spanId, SPAN_ID);
    assert.equal(clientCall.parentSpanContext?.spanId, clientServer.spanContext().spanId);
    assert.equal(calcServer.parentSpanContext?.spanId, clientCall.spanContext().spanId);
    assert.equal(clientCall.attributes['meshlet.cluster'], 'outbound|8000||calculate.default.svc.cluster.local');

    const src = find(parseExposition(await clientMesh.text()), 'istio_requests_total', { reporter: 'source' });
    assert.equal(src.length, 1);
    assert.equal(src[0]!.value, 3);
    assert.deepEqual(pick(src[0]!.labels), {
      source_workload: 'client', source_app: 'client', source_version: 'v1',
      destination_workload: 'calculate-v2', destination_app: 'calculate', destination_version: 'v2',
      destination_service: 'calculate.default.svc.cluster.local', destination_service_name: 'calculate', response_code: '200',
    });
    const dst = find(parseExposition(await calcMesh.text()), 'istio_requests_total', { reporter: 'destination' });
    assert.equal(dst.length, 1);
    assert.equal(dst[0]!.value, 3);
    assert.deepEqual(pick(dst[0]!.labels), {
      source_workload: 'client', source_app: 'client', source_version: 'v1',
      destination_workload: 'calculate-v2', destination_app: 'calculate', destination_version: 'v2',
      destination_service: 'calculate.default.svc.cluster.local', destination_service_name: 'calculate', response_code: '200',
    });
    assert.equal(dst[0]!.labels.connection_security_policy, 'none');
    // The client's own inbound request came from outside the mesh: unknown source.
    const edge = find(parseExposition(await clientMesh.text()), 'istio_requests_total', { reporter: 'destination' });
    assert.equal(edge[0]!.labels.source_workload, 'unknown');
    assert.equal(edge[0]!.labels.destination_service, 'client.default.svc.cluster.local');
  } finally {
    await new Promise((r) => client.close(r));
    await new Promise((r) => calc.close(r));
    clientMesh.close();
    calcMesh.close();
  }
});

function pick(labels: Record<string, string>): Record<string, string> {
  const keys = ['source_workload', 'source_app', 'source_version', 'destination_workload', 'destination_app', 'destination_version',
    'destination_service', 'destination_service_name', 'response_code'];
  return Object.fromEntries(keys.map((k) => [k, labels[k]!]));
}
