// Shared helpers for the mesh-level security tests: a dev CA dir, meshed client and server.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { createMesh, type Mesh, type MeshOptions } from '../../src/mesh.js';
import type { MeshServer } from '../../src/security/mesh-server.js';

export const CALC = 'calculate.default.svc.cluster.local';
export const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/client';
export const CALC_ID = 'spiffe://cluster.local/ns/default/sa/calculate';

export async function tempDir(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'meshlet-sec-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** The client's view of `calculate` (port 8000) on a local port, optionally with a DestinationRule tls block. */
export function clientConfig(port: number, options: { meshed?: boolean; tls?: string } = {}): string {
  const labels = options.meshed === false ? '{ app: calculate }' : '{ app: calculate, security.istio.io/tlsMode: istio }';
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: calculate, namespace: default }
spec:
  hosts: [${CALC}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }]
  endpoints:
    - { address: 127.0.0.1, ports: { http: ${port} }, labels: ${labels}, serviceAccount: calculate }
${options.tls ? `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: calculate, namespace: default }
spec:
  host: ${CALC}
  trafficPolicy:
    tls: ${options.tls}
` : ''}`;
}

/** Answers `<peer id or anonymous> <tls|plain>`. */
export function whoami(mesh: Mesh) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const encrypted = (req.socket as TLSSocket).encrypted === true;
    res.end(`${mesh.peerOf(req) ?? 'anonymous'} ${encrypted ? 'tls' : 'plain'}`);
  };
}

export async function meshFor(name: string, caDir: string | undefined, config: string, extra: Partial<MeshOptions> = {}): Promise<Mesh> {
  return createMesh({
    workload: { name, namespace: 'default', serviceAccount: name, labels: { app: name } },
    config: config.trim() === '' ? [] : config,
    ...(caDir !== undefined && { ca: { dir: caDir } }),
    ...extra,
  });
}

export async function listen(server: MeshServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

export async function closeServer(server: MeshServer): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
