/**
 * db (Express): pet information by species, `GET /pets/cat` → JSON. A tiny
 * in-memory table stands in for the talk's database.
 */
import express from 'express';
import type { AddressInfo } from 'node:net';
import { expressMiddleware } from '../../../src/http/express.js';
import { exitOnSignal, portFromEnv, reportReady } from './runtime.js';
import { startWorkload } from './workload.js';

/** The JSON answer of `GET /pets/:species`. */
export interface PetInfo {
  species: string;
  name: string;
  breed: string;
  age: number;
  likes: string;
}

const pets: Record<string, PetInfo> = {
  cat: { species: 'cat', name: 'Tama', breed: 'Japanese Bobtail', age: 4, likes: 'adding things up, sunny windows' },
  dog: { species: 'dog', name: 'Pochi', breed: 'Shiba Inu', age: 3, likes: 'multiplying treats, long walks' },
};

const workload = await startWorkload({ name: 'db', labels: { app: 'db', version: 'v1' }, serviceAccount: 'db' });
const app = express();
app.use(expressMiddleware(workload.mesh));
app.get('/pets/:species', (req, res) => {
  const pet = pets[req.params.species];
  if (!pet) {
    res.status(404).json({ error: `no pet ${req.params.species}` });
    return;
  }
  res.json(pet);
});

// mesh.createServer: mTLS and plaintext on one port per PeerAuthentication, AuthorizationPolicy enforced.
const server = workload.mesh.createServer(app);
server.listen(portFromEnv(), '127.0.0.1', () => {
  reportReady('db', (server.address() as AddressInfo).port, workload.adminPort);
});
exitOnSignal(async () => {
  await new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  await workload.close();
});
