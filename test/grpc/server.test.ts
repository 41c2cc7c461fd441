import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { credentials, Metadata, Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { SpanKind, trace } from '@opentelemetry/api';
import { AlwaysOnSampler, BasicTracerProvider, InMemorySpanExporter, ParentBasedSampler, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Registry } from 'prom-client';
import { createMesh, seededRandom } from '../../src/index.js';
import { createMeshGrpc } from '../../src/grpc/index.js';
import { MeshTelemetry } from '../../src/telemetry/telemetry.js';
import { calculate, CalculateClient, CalculateService, type Operands, type Result } from '../../examples/grpc/proto.js';
import { grpcCalculateService, grpcCalculateSubsets, startGrpcServer } from '../helpers/grpc-servers.js';
import { calculateRoutes, docs } from '../helpers/mesh-config.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

describe('gRPC server interceptor and telemetry', () => {
  it('joins the caller\'s trace: SERVER span, handler context, meshed outbound call with a child CLIENT span, istio_* metrics', async () => {
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }), spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const telemetry = new MeshTelemetry({ workload: { name: 'frontend', namespace: 'default', labels: { app: 'frontend', version: 'v1' } }, tracerProvider, registry: new Registry() });
    const upstream = await startGrpcServer('v2');
    const random = seededRandom(1);
    const mesh = await createMesh({ random, config: docs(grpcCalculateService([{ port: upstream.port, version: 'v2' }]), grpcCalculateSubsets(), calculateRoutes(`
    - route: [{ destination: { host: calculate, subset: v2 } }]`)) });
    const grpc = createMeshGrpc(mesh, { random, telemetry });
    const downstreamClient = new CalculateClient('calculate.default.svc.cluster.local:9000', credentials.createInsecure(), grpc.clientOptions());

    // The gRPC service in the middle: its handler calls calculate through the mesh.
    let handlerTrace: string | undefined;
    const server = new Server({ interceptors: [grpc.serverInterceptor] });
    server.addService(CalculateService, {
      Calculate: (call: ServerUnaryCall<Operands, Result>, cb: sendUnaryData<Result>) => {
        handlerTrace = trace.getSpanContext(grpc.activeContext())?.traceId;
        setTimeout(() => { // an async hop: the context must survive it
          calculate(downstreamClient, call.request).then((r) => cb(null, r), (e) => cb(e));
        }, 1);
      },
      Series: () => undefined, Fold: () => undefined, Pipe: () => undefined,
    });
    const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
    const caller = new CalculateClient(`127.0.0.1:${port}`, credentials.createInsecure());
    try {
      const md = new Metadata();
      md.set('traceparent', `00-${TRACE_ID}-${CALLER_SPAN}-01`); // what an HTTP caller's mesh injects
      const r = await calculate(caller, { x: 3, y: 4 }, md);
      assert.equal(r.value, 12);
      assert.equal(handlerTrace, TRACE_ID);
      const upstreamParent = String(upstream.lastMetadata?.get('traceparent')[0]);
      assert.ok(upstreamParent.startsWith(`00-${TRACE_ID}-`), upstreamParent);
      assert.equal(upstream.lastMetadata?.get('x-b3-traceid')[0], TRACE_ID);

      const spans = exporter.getFinishedSpans();
      const serverSpan = spans.find((s) => s.kind === SpanKind.SERVER)!;
      const clientSpan = spans.find((s) => s.kind === SpanKind.CLIENT)!;
      assert.ok(serverSpan && clientSpan, `spans: ${spans.map((s) => s.name).join(', ')}`);
      assert.equal(serverSpan.spanContext().traceId, TRACE_ID);
      assert.equal(serverSpan.parentSpanContext?.spanId ?? (serverSpan as unknown as { parentSpanId?: string }).parentSpanId, CALLER_SPAN);
      assert.equal(clientSpan.spanContext().traceId, TRACE_ID);
      assert.equal(clientSpan.parentSpanContext?.spanId ?? (clientSpan as unknown as { parentSpanId?: string }).parentSpanId, serverSpan.spanContext().spanId);
      assert.equal(upstreamParent.split('-')[2], clientSpan.spanContext().spanId);

      const text = await telemetry.text();
      const source = text.split('\n').find((l) => l.startsWith('istio_requests_total{') && l.includes('reporter="source"'));
      const destination = text.split('\n').find((l) => l.startsWith('istio_requests_total{') && l.includes('reporter="destination"'));
      assert.ok(source && /request_protocol="grpc"/.test(source) && /grpc_response_status="0"/.test(source) && /destination_service="calculate.default.svc.cluster.local"/.test(source), source);
      assert.ok(destination && /request_protocol="grpc"/.test(destination) && /grpc_response_status="0"/.test(destination), destination);
    } finally {
      caller.close();
      downstreamClient.close();
      server.forceShutdown();
      await grpc.close(0);
      await mesh.close();
      await upstream.close();
      telemetry.close();
    }
  });

  it('runs streaming handlers in the request context too', async () => {
    const mesh = await createMesh();
    const grpc = createMeshGrpc(mesh);
    const seen: Array<string | undefined> = [];
    const server = new Server({ interceptors: [grpc.serverInterceptor] });
    server.addService(CalculateService, {
      Calculate: () => undefined, Series: () => undefined, Fold: () => undefined,
      Pipe: (call: import('@grpc/grpc-js').ServerDuplexStream<Operands, Result>) => {
        call.on('data', (m: Operands) => {
          seen.push(trace.getSpanContext(grpc.activeContext())?.traceId);
          call.write({ value: m.x, version: 'x' });
        });
        call.on('end', () => call.end());
      },
    });
    const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
    const client = new CalculateClient(`127.0.0.1:${port}`, credentials.createInsecure());
    try {
      const md = new Metadata();
      md.set('traceparent', `00-${TRACE_ID}-${CALLER_SPAN}-01`);
      await new Promise<void>((resolve, reject) => {
        const d = client.Pipe(md);
        d.on('data', () => undefined);
        d.on('error', reject);
        d.on('end', resolve);
        for (let i = 0; i < 3; i++) d.write({ x: i, y: 0 });
        d.end();
      });
      assert.deepEqual(seen, [TRACE_ID, TRACE_ID, TRACE_ID]);
    } finally {
      client.close();
      server.forceShutdown();
      await grpc.close(0);
      await mesh.close();
    }
  });
});
