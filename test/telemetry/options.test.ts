import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { request } from 'undici';
import { createMesh } from '../../src/index.js';
import { credentials, Metadata } from '@grpc/grpc-js';
import { CalculateClient } from '../../examples/grpc/proto.js';
import { grpcCalculateService, grpcCalculateSubsets, startGrpcServer } from '../helpers/grpc-servers.js';
import { startServer } from '../helpers/http-servers.js';
import { calculateService, docs } from '../helpers/mesh-config.js';

const seriesLines = (text: string, metric: string): string[] => text.split('\n').filter((l) => l.startsWith(`${metric}{`));

test('createMesh telemetry switches: metrics and metadata exchange off; tracing.recordHeaders records listed headers, never secrets', async () => {
  const upstream = await startServer('v1');
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const config = calculateService([{ port: upstream.port, version: 'v1' }]);
  const quiet = await createMesh({
    config, tracerProvider,
    telemetry: { metrics: false, metadataExchange: false },
    tracing: { recordHeaders: ['x-request-id', 'Authorization'] },
  });
  const standard = await createMesh({ config });
  try {
    const headers = { 'x-request-id': 'req-42', authorization: 'Bearer secret-value' };
    await (await request('http://calculate:8000/', { dispatcher: quiet.dispatcher, headers })).body.dump();
    assert.equal(upstream.lastHeaders?.['x-envoy-peer-metadata'], undefined, 'no metadata exchange when switched off');
    assert.deepEqual(seriesLines(await quiet.metrics(), 'istio_requests_total'), []);

    const [span] = exporter.getFinishedSpans();
    assert.deepEqual(span!.attributes['http.request.header.x-request-id'], ['req-42']);
    assert.equal(span!.attributes['http.request.header.authorization'], undefined);
    assert.ok(!JSON.stringify(span!.attributes).includes('secret-value'));

    await (await request('http://calculate:8000/', { dispatcher: standard.dispatcher })).body.dump();
    assert.equal(typeof upstream.lastHeaders?.['x-envoy-peer-metadata'], 'string', 'metadata exchange is on by default');
    const lines = seriesLines(await standard.metrics(), 'istio_requests_total');
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /reporter="source".*\} 1$/);
  } finally {
    await quiet.close();
    await standard.close();
    await upstream.close();
    await tracerProvider.shutdown();
  }
});

test('tracing.recordHeaders on gRPC calls: listed metadata recorded on the CLIENT span, secrets never', async () => {
  const server = await startGrpcServer('v1');
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const mesh = await createMesh({
    tracerProvider, tracing: { recordHeaders: ['x-request-id', 'authorization'] },
    config: docs(grpcCalculateService([{ port: server.port, version: 'v1' }]), grpcCalculateSubsets()),
  });
  const client = new CalculateClient('calculate.default.svc.cluster.local:9000', credentials.createInsecure(), mesh.grpc.clientOptions());
  try {
    const md = new Metadata();
    md.set('x-request-id', 'grpc-7');
    md.set('authorization', 'Bearer secret-value');
    const result = await new Promise<unknown>((resolve, reject) => client.Calculate({ x: 1, y: 2 }, md, (err: unknown, r: unknown) => (err ? reject(err) : resolve(r))));
    assert.deepEqual((result as { value: number }).value, 3);
    const [span] = exporter.getFinishedSpans();
    assert.deepEqual(span!.attributes['http.request.header.x-request-id'], ['grpc-7']);
    assert.equal(span!.attributes['http.request.header.authorization'], undefined);
    assert.ok(!JSON.stringify(span!.attributes).includes('secret-value'));
  } finally {
    client.close();
    await mesh.close();
    await server.close();
    await tracerProvider.shutdown();
  }
});
