/**
 * A meshed calculate client: start both servers (server.ts v1 / v2), then
 * `node --import tsx examples/grpc/client.ts`. It makes 100 calls (about
 * 10 reach v2: the canary) and 5 calls with `version: dog` (all v2: the dark
 * release), all through the VirtualService in mesh.yaml.
 */
import { credentials, Metadata } from '@grpc/grpc-js';
import { fileURLToPath } from 'node:url';
import { createMeshGrpc } from '../../src/grpc/index.js';
import { createMesh } from '../../src/index.js';
import { calculate, CalculateClient } from './proto.js';

const mesh = await createMesh({ workload: { name: 'client', labels: { app: 'client', version: 'v1' } }, config: fileURLToPath(new URL('./mesh.yaml', import.meta.url)) });
const grpc = createMeshGrpc(mesh);
const client = new CalculateClient('calculate.default.svc.cluster.local:9000', credentials.createInsecure(), grpc.clientOptions());

const counts: Record<string, number> = {};
for (let i = 0; i < 100; i++) {
  const r = await calculate(client, { x: 3, y: 4 });
  counts[`${r.version} → ${r.value}`] = (counts[`${r.version} → ${r.value}`] ?? 0) + 1;
}
console.log('canary, 100 calls:', counts);

const dog = new Metadata();
dog.set('version', 'dog');
const dark = await Promise.all(Array.from({ length: 5 }, () => calculate(client, { x: 3, y: 4 }, dog)));
console.log('dark release (version: dog):', dark.map((r) => r.version).join(' '));

client.close();
await grpc.close();
await mesh.close();
