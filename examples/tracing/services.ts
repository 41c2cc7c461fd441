/**
 * The four workloads of the chain, each an ordinary Express or Fastify app
 * with its own mesh. Not one line of trace or header code: the mesh
 * middleware starts the SERVER span and every `mesh.fetch` made while
 * handling the request becomes its child and carries the trace onward.
 *
 *   client (Express) ──► calculate (Fastify) ──► db (Express)
 *                    └─► image (Fastify)
 */
import express from 'express';
import Fastify from 'fastify';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { trace } from '@opentelemetry/api';
import type { Mesh } from '../../src/mesh.js';
import { expressMiddleware } from '../../src/http/express.js';
import { fastifyPlugin } from '../../src/http/fastify.js';

/** A started service: its loopback port and how to stop it. */
export interface Running {
  port: number;
  close(): Promise<void>;
}

async function listenExpress(app: express.Express): Promise<Running> {
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

async function listenFastify(app: ReturnType<typeof Fastify>): Promise<Running> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() };
}

/** client (Express): asks calculate for the result and image for the picture. */
export function startClient(mesh: Mesh): Promise<Running> {
  const app = express();
  app.use(expressMiddleware(mesh)); // the lead exposes this as app.use(mesh.express())
  app.get('/pet', async (req, res) => {
    const x = Number(req.query.x ?? 1);
    const y = Number(req.query.y ?? 2);
    const [calculation, image] = await Promise.all([
      mesh.fetch(`http://calculate.default.svc.cluster.local:8000/calculate?x=${x}&y=${y}`).then((r) => r.json()),
      mesh.fetch('http://image.default.svc.cluster.local:8000/pets/cat.svg').then((r) => r.text()),
    ]);
    res.json({ calculation, imageBytes: image.length });
  });
  return listenExpress(app);
}

/** calculate (Fastify): adds, and records the result in db. */
export async function startCalculate(mesh: Mesh): Promise<Running> {
  const app = Fastify();
  await app.register(fastifyPlugin(mesh)); // fastify.register(mesh.fastify)
  app.get<{ Querystring: { x?: string; y?: string } }>('/calculate', async (request) => {
    const x = Number(request.query.x ?? 0);
    const y = Number(request.query.y ?? 0);
    const result = x + y;
    await mesh.fetch('http://db.default.svc.cluster.local:8000/results', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ x, y, result }),
    });
    return { op: 'add', x, y, result };
  });
  return listenFastify(app);
}

/** db (Express): stores results. Its own span ("db.insert") nests under the mesh's SERVER span. */
export function startDb(mesh: Mesh): Promise<Running> {
  const rows: unknown[] = [];
  const app = express();
  app.use(expressMiddleware(mesh));
  app.use(express.json());
  app.post('/results', (req, res) => {
    // App instrumentation works as usual: the active context is the request's.
    trace.getTracer('db').startActiveSpan('db.insert', (span) => {
      rows.push(req.body);
      span.setAttribute('db.rows', rows.length);
      span.end();
    });
    res.status(201).json({ stored: rows.length });
  });
  return listenExpress(app);
}

/** image (Fastify): a pet picture. */
export async function startImage(mesh: Mesh): Promise<Running> {
  const app = Fastify();
  await app.register(fastifyPlugin(mesh));
  app.get('/pets/:file', async (_request, reply) => {
    return reply.type('image/svg+xml').send('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><circle cx="5" cy="5" r="4"/></svg>');
  });
  return listenFastify(app);
}
