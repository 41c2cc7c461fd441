/**
 * Helpers for control-plane tests: temp config directories, tiny gRPC echo
 * servers that say which version answered, and polling with a deadline.
 */
import * as grpc from '@grpc/grpc-js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A JSON-over-gRPC unary method: no .proto needed. */
const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown,
};

/** The echo service: `Who` answers with the server's version name. */
export const echoService: grpc.ServiceDefinition = {
  Who: {
    path: '/meshlet.test.Echo/Who',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};

/** Client class for {@link echoService}. */
export const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');

/** Starts an echo server on 127.0.0.1 that answers `{ version }`. */
export async function startEcho(version: string): Promise<{ port: number; close(): void }> {
  const server = new grpc.Server();
  server.addService(echoService, {
    Who: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { version }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { port, close: () => server.forceShutdown() };
}

/** A temp config directory. */
export async function configDir(files: Record<string, string>): Promise<{ dir: string; write(name: string, text: string): Promise<void>; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'meshlet-cp-'));
  const write = (name: string, text: string) => writeFile(join(dir, name), text);
  for (const [name, text] of Object.entries(files)) await write(name, text);
  return { dir, write, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Polls `check` every 10 ms until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(check: () => T | undefined | false, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Service + subsets + a VirtualService with a header route and a weighted split. */
export function calculateYaml(ports: { v1: number; v2: number }, weights: { v1: number; v2: number }): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: calculate, namespace: default }
spec:
  hosts: [calculate.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9000, name: grpc, protocol: GRPC }]
  endpoints:
    - { address: 127.0.0.1, ports: { grpc: ${ports.v1} }, labels: { app: calculate, version: v1 } }
    - { address: 127.0.0.1, ports: { grpc: ${ports.v2} }, labels: { app: calculate, version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: calculate, namespace: default }
spec:
  host: calculate
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: calculate, namespace: default }
spec:
  hosts: [calculate]
  http:
    - match: [{ headers: { version: { exact: dog } } }]
      route: [{ destination: { host: calculate, subset: v2 } }]
    - route:
        - { destination: { host: calculate, subset: v1 }, weight: ${weights.v1} }
        - { destination: { host: calculate, subset: v2 }, weight: ${weights.v2} }
`;
}

/**
 * One service of namespace `ns` as three documents: a ServiceEntry with v1/v2 endpoints (a third with
 * `extra`), its DestinationRule with both subsets, a VirtualService splitting by `v2` % (10 by
 * default) and mirroring to the next service.
 */
export function serviceYaml(ns: string, i: number, opts: { v2?: number; extra?: boolean; lb?: string } = {}): string {
  const host = `svc-${i}.${ns}.svc.cluster.local`;
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: svc-${i}, namespace: ${ns} }
spec:
  hosts: [${host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  endpoints:
    - { address: 10.0.${i}.1, ports: { http: 9000 }, labels: { version: v1 } }
    - { address: 10.0.${i}.2, ports: { http: 9000 }, labels: { version: v2 } }${opts.extra ? `
    - { address: 10.0.${i}.3, ports: { http: 9000 }, labels: { version: v2 } }` : ''}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: svc-${i}, namespace: ${ns} }
spec:
  host: ${host}
  trafficPolicy: { loadBalancer: { simple: ${opts.lb ?? 'ROUND_ROBIN'} } }
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: svc-${i}, namespace: ${ns} }
spec:
  hosts: [svc-${i}]
  http:
    - route:
        - { destination: { host: svc-${i}, subset: v1 }, weight: ${100 - (opts.v2 ?? 10)} }
        - { destination: { host: svc-${i}, subset: v2 }, weight: ${opts.v2 ?? 10} }
      mirror: { host: svc-${(i + 1) % 3}.${ns}.svc.cluster.local }
`;
}
