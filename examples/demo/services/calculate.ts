/**
 * calculate (Fastify): v1 (`version: cat-plus`) adds and lives in the "cat and
 * addition room"; v2 (`version: dog-multi`) multiplies, with a dog. The
 * version comes from env VERSION. `POST /admin/sleep?ms=N` makes every answer
 * wait N ms first (the talk's slow cat); the sleep ends early if the caller
 * gives up, so timed-out calls do not pile up.
 */
import Fastify from 'fastify';
import { fastifyPlugin } from '../../../src/http/fastify.js';
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
});
const app = Fastify();
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

await app.listen({ port: portFromEnv(), host: '127.0.0.1' });
reportReady(`calculate ${version}`, (app.server.address() as import('node:net').AddressInfo).port, workload.adminPort);
exitOnSignal(async () => {
  await app.close();
  await workload.close();
});
