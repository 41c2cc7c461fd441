/**
 * image (Fastify): the pet photos, `GET /pets/cat.svg`. Small hand-written
 * SVGs shipped in ../public/pets/, read once at start.
 */
import Fastify from 'fastify';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { fastifyPlugin } from '../../../src/http/fastify.js';
import { exitOnSignal, portFromEnv, reportReady } from './runtime.js';
import { startWorkload } from './workload.js';

const dir = new URL('../public/pets/', import.meta.url);
const images = new Map<string, Buffer>();
for (const species of ['cat', 'dog']) images.set(species, await readFile(new URL(`${species}.svg`, dir)));

const workload = await startWorkload({ name: 'image', labels: { app: 'image', version: 'v1' }, serviceAccount: 'image' });
// mesh.createServer (Fastify's serverFactory): mTLS per PeerAuthentication, AuthorizationPolicy enforced.
const app = Fastify({ serverFactory: (handler) => workload.mesh.createServer(handler as import('node:http').RequestListener) as unknown as import('node:http').Server });
await app.register(fastifyPlugin(workload.mesh));
app.get<{ Params: { file: string } }>('/pets/:file', async (request, reply) => {
  const image = images.get(request.params.file.replace(/\.svg$/, ''));
  if (!image) return reply.code(404).send({ error: 'no such image' });
  return reply.type('image/svg+xml').header('cache-control', 'no-store').send(image);
});

await app.listen({ port: portFromEnv(), host: '127.0.0.1' });
reportReady('image', (app.server.address() as AddressInfo).port, workload.adminPort);
exitOnSignal(async () => {
  (app.server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
  await app.close();
  await workload.close();
});
