/**
 * Real grpc-js calculate servers on 127.0.0.1 for gRPC tests: each answers
 * with its version (v1 adds, v2 multiplies), counts calls, records the last
 * metadata, and lets a test override the unary behaviour.
 */
import { meshService } from './mesh-config.js';
import { Server, ServerCredentials, status as Status, type Metadata, type sendUnaryData, type ServerInterceptor, type ServerUnaryCall, type ServerWritableStream, type ServerReadableStream, type ServerDuplexStream } from '@grpc/grpc-js';
import { CalculateService, type Operands, type Result, type SeriesRequest } from '../../examples/grpc/proto.js';

export interface GrpcTestServer {
  readonly version: string;
  readonly port: number;
  /** calls seen so far (any method) */
  calls: number;
  lastMetadata: Metadata | undefined;
  close(): Promise<void>;
}

/** Overrides the unary answer: return a status code to fail with, or undefined to answer normally (after optional delay). */
export type UnaryBehaviour = (call: ServerUnaryCall<Operands, Result>, server: GrpcTestServer) => Promise<{ code: number; details?: string } | undefined> | { code: number; details?: string } | undefined;

export interface GrpcServerOptions {
  unary?: UnaryBehaviour;
  interceptors?: ServerInterceptor[];
  /** Series fails with UNAVAILABLE after writing this many messages. */
  seriesFailAfter?: number;
}

/** Starts a calculate server for `version` (v1 adds, anything else multiplies). */
export async function startGrpcServer(version: string, options: GrpcServerOptions = {}): Promise<GrpcTestServer> {
  const op = version === 'v1' ? (x: number, y: number) => x + y : (x: number, y: number) => x * y;
  const server = new Server(options.interceptors ? { interceptors: options.interceptors } : {});
  const state = { version, port: 0, calls: 0, lastMetadata: undefined as Metadata | undefined, close: async () => undefined } as GrpcTestServer;
  server.addService(CalculateService, {
    Calculate: async (call: ServerUnaryCall<Operands, Result>, cb: sendUnaryData<Result>) => {
      state.calls++;
      state.lastMetadata = call.metadata;
      const override = await options.unary?.(call, state);
      if (override) return cb({ code: override.code, details: override.details ?? 'test failure' });
      cb(null, { value: op(call.request.x, call.request.y), version });
    },
    Series: (call: ServerWritableStream<SeriesRequest, Result>) => {
      state.calls++;
      state.lastMetadata = call.metadata;
      const fail = options.seriesFailAfter;
      for (let i = 0; i < call.request.count; i++) {
        if (i === fail) return call.emit('error', { code: Status.UNAVAILABLE, details: 'stream failed mid-way' });
        call.write({ value: op(call.request.x, call.request.y + i), version });
      }
      call.end();
    },
    Fold: (call: ServerReadableStream<Operands, Result>, cb: sendUnaryData<Result>) => {
      state.calls++;
      state.lastMetadata = call.metadata;
      let acc: number | undefined;
      call.on('data', (m: Operands) => { acc = acc === undefined ? op(m.x, m.y) : op(acc, op(m.x, m.y)); });
      call.on('end', () => cb(null, { value: acc ?? 0, version }));
      call.on('error', () => undefined);
    },
    Pipe: (call: ServerDuplexStream<Operands, Result>) => {
      state.calls++;
      state.lastMetadata = call.metadata;
      call.on('data', (m: Operands) => call.write({ value: op(m.x, m.y), version }));
      call.on('end', () => call.end());
      call.on('error', () => undefined);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  (state as { port: number }).port = port;
  state.close = () => new Promise<void>((resolve) => {
    server.forceShutdown();
    resolve();
  });
  return state;
}

/** A ServiceEntry for calculate on gRPC port 9000 with one endpoint per server. */
export function grpcCalculateService(servers: ReadonlyArray<{ port: number; version: string }>, servicePort = 9000): string {
  return meshService('calculate', servers, servicePort, 'GRPC');
}

/** DestinationRule with subsets v1 and v2 (and an optional trafficPolicy YAML block, indented under spec). */
export function grpcCalculateSubsets(trafficPolicy = ''): string {
  return `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: calculate, namespace: default }
spec:
  host: calculate
${trafficPolicy}
  subsets:
    - { name: v1, labels: { version: v1 } }
    - { name: v2, labels: { version: v2 } }
`;
}

export { Status };
