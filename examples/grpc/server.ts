/**
 * A calculate server: `node --import tsx examples/grpc/server.ts v1 50061`
 * (v1 adds, v2 multiplies). Runs with the mesh's server interceptor so
 * inbound calls get a SERVER span context and destination metrics.
 */
import { Server, ServerCredentials, type sendUnaryData, type ServerDuplexStream, type ServerReadableStream, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import { createMeshGrpc } from '../../src/grpc/index.js';
import { createMesh } from '../../src/index.js';
import { CalculateService, type Operands, type Result, type SeriesRequest } from './proto.js';

const version = process.argv[2] ?? 'v1';
const port = Number(process.argv[3] ?? (version === 'v1' ? 50061 : 50062));
const op = version === 'v1' ? (x: number, y: number) => x + y : (x: number, y: number) => x * y;

const mesh = await createMesh({ workload: { name: `calculate-${version}`, labels: { app: 'calculate', version } } });
const grpc = createMeshGrpc(mesh);
const server = new Server({ interceptors: [grpc.serverInterceptor] });
server.addService(CalculateService, {
  Calculate: (call: ServerUnaryCall<Operands, Result>, cb: sendUnaryData<Result>) => cb(null, { value: op(call.request.x, call.request.y), version }),
  Series: (call: ServerWritableStream<SeriesRequest, Result>) => {
    for (let i = 0; i < call.request.count; i++) call.write({ value: op(call.request.x, call.request.y + i), version });
    call.end();
  },
  Fold: (call: ServerReadableStream<Operands, Result>, cb: sendUnaryData<Result>) => {
    let acc: number | undefined;
    call.on('data', (m: Operands) => { acc = acc === undefined ? op(m.x, m.y) : op(acc, op(m.x, m.y)); });
    call.on('end', () => cb(null, { value: acc ?? 0, version }));
  },
  Pipe: (call: ServerDuplexStream<Operands, Result>) => {
    call.on('data', (m: Operands) => call.write({ value: op(m.x, m.y), version }));
    call.on('end', () => call.end());
  },
});
server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
  console.log(`calculate ${version} listening on 127.0.0.1:${port}`);
});
process.on('SIGINT', () => {
  server.forceShutdown();
  void grpc.close(0).then(() => mesh.close());
});
