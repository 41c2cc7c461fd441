/**
 * calculate (Fastify): v1 (`version: cat-plus`) adds and lives in the "cat and
 * addition room"; v2 (`version: dog-multi`) multiplies, with a dog. The
 * version comes from env VERSION. The same answer is served over gRPC
 * (examples/grpc/calculate.proto, `calculate.Calculate/Calculate`) on a
 * second port, with the mesh's server interceptor. `POST /sleep?ms=N` on the
 * admin port (also `POST /admin/sleep` on the app port) makes every answer
 * wait N ms first (the talk's slow cat); the sleep ends early if the caller
 * gives up, so timed-out calls do not pile up.
 *
 * The HTTP server is `mesh.createServer` (Fastify's serverFactory): mTLS and
 * plaintext on one port per PeerAuthentication, AuthorizationPolicy enforced.
 */
import { Server as GrpcServer, ServerCredentials, status as grpcStatus, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import Fastify from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fastifyPlugin } from '../../../src/http/fastify.js';
import { grpcServerCredentials } from '../../../src/security/index.js';
import { CalculateService, type Operands, type Result } from '../../grpc/proto.js';
import { exitOnSignal, portFromEnv, reportReady } from './runtime.js';
import { startWorkload } from './workload.js';

/** The JSON answer of `GET /calculate`. */
export interface CalculateAnswer {
  version: string;
  pet: 'cat' | 'dog';
  op: 'add' | 'multiply';
  symbol: '+' | '×';
  room: string;
  x: number;
  y: number;
  result: number;
}

const version = process.env.VERSION === 'dog-multi' ? 'dog-multi' : 'cat-plus';
const flavour = version === 'cat-plus'
  ? { pet: 'cat', op: 'add', symbol: '+', room: 'Cat and addition room', apply: (x: number, y: number) => x + y } as const
  : { pet: 'dog', op: 'multiply', symbol: '×', room: 'Dog and multiplication room', apply: (x: number, y: number) => x * y } as const;
let sleepMs = Number(process.env.SLEEP_MS ?? 0) || 0;

const workload = await startWorkload({
  name: version === 'cat-plus' ? 'calculate-v1' : 'calculate-v2',
  labels: { app: 'calculate', version },
  serviceAccount: 'calculate',
}, {
  '/sleep': (query) => {
    sleepMs = Math.max(0, Number(query.get('ms') ?? 0) || 0);
    return { version, sleepMs };
  },
});
const { mesh } = workload;
const app = Fastify({ serverFactory: (handler) => mesh.createServer(handler as (req: IncomingMessage, res: ServerResponse) => void) as unknown as import('node:http').Server });
// Inbound telemetry (SERVER span, reporter="destination" metrics) and policy.
await app.register(fastifyPlugin(workload.mesh));

app.get<{ Querystring: { x?: string; y?: string } }>('/calculate', async (request, reply) => {
  if (sleepMs > 0) {
    const gaveUp = await sleep(sleepMs, request.raw);
    if (gaveUp) return reply.hijack();
  }
  const x = Number(request.query.x ?? 0) || 0;
  const y = Number(request.query.y ?? 0) || 0;
  const answer: CalculateAnswer = { version, pet: flavour.pet, op: flavour.op, symbol: flavour.symbol, room: flavour.room, x, y, result: flavour.apply(x, y) };
  return answer;
});

// Never sleeps: what the console's plaintext probe asks, so a slow cat is not taken for a refusal.
app.get('/healthz', async () => ({ version, ok: true }));

app.post<{ Querystring: { ms?: string } }>('/admin/sleep', async (request) => {
  sleepMs = Math.max(0, Number(request.query.ms ?? 0) || 0);
  return { version, sleepMs };
});

/** Waits ms, or until the caller closes the connection (then resolves true). */
function sleep(ms: number, req: import('node:http').IncomingMessage): Promise<boolean> {
  return new Promise((resolve) => {
    const onClose = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      req.socket.off('close', onClose);
      resolve(false);
    }, ms);
    req.socket.once('close', onClose);
  });
}

// gRPC: the same calculation; a deadline from the caller's mesh (the route timeout) cancels the sleep.
const grpc = new GrpcServer({ interceptors: [mesh.grpc.serverInterceptor] });
grpc.addService(CalculateService, {
  Calculate: (call: ServerUnaryCall<Operands, Result>, done: sendUnaryData<Result>) => {
    const answer = (): void => done(null, { value: flavour.apply(call.request.x, call.request.y), version });
    if (sleepMs <= 0) return answer();
    const timer = setTimeout(answer, sleepMs);
    call.once('cancelled', () => clearTimeout(timer));
  },
  Series: (call: ServerUnaryCall<unknown, unknown> & { emit(e: 'error', err: Error): boolean }) => call.emit('error', Object.assign(new Error('not in the demo'), { code: grpcStatus.UNIMPLEMENTED })),
  Fold: (_call: unknown, done: sendUnaryData<Result>) => done({ code: grpcStatus.UNIMPLEMENTED, details: 'not in the demo' }),
  Pipe: (call: { emit(e: 'error', err: Error): boolean }) => call.emit('error', Object.assign(new Error('not in the demo'), { code: grpcStatus.UNIMPLEMENTED })),
});
// mTLS when the workload has an identity: callers' meshes use it for endpoints labelled tlsMode istio.
// grpc-js cannot share a port between TLS and plaintext, so this port is STRICT whatever PeerAuthentication says.
const grpcCredentials = mesh.identity ? grpcServerCredentials(mesh.identity, { mode: 'STRICT' }) : ServerCredentials.createInsecure();
const grpcPort = await new Promise<number>((resolve, reject) => grpc.bindAsync('127.0.0.1:0', grpcCredentials, (err, port) => (err ? reject(err) : resolve(port))));

await app.listen({ port: portFromEnv(), host: '127.0.0.1' });
reportReady(`calculate ${version}`, (app.server.address() as import('node:net').AddressInfo).port, workload.adminPort, grpcPort);
exitOnSignal(async () => {
  grpc.forceShutdown();
  (app.server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
  await app.close();
  await workload.close();
});
