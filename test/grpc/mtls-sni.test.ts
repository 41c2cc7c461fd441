// gRPC over mTLS to an endpoint given by IP: the TLS server name is the service's host (node refuses
// an IP as SNI and warns DEP0123), and the call succeeds with the peer checked by its SPIFFE id.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { credentials, Server } from '@grpc/grpc-js';
import { createMesh } from '../../src/index.js';
import { grpcServerCredentials } from '../../src/security/index.js';
import { calculate, CalculateClient, CalculateService } from '../../examples/grpc/proto.js';

test('gRPC mTLS to an IP endpoint answers, with no DEP0123 (IP as TLS server name) warning', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'meshlet-grpc-sni-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const warnings: string[] = [];
  const onWarning = (w: Error & { code?: string }) => void warnings.push(`${w.code ?? ''} ${w.message}`);
  process.on('warning', onWarning);
  t.after(() => void process.off('warning', onWarning));

  const server = await createMesh({ workload: { name: 'calculate', namespace: 'default', serviceAccount: 'calculate' }, ca: { dir }, config: [] });
  t.after(() => server.close());
  const grpc = new Server();
  grpc.addService(CalculateService, {
    Calculate: (call: { request: { x: number; y: number }; getAuthContext(): unknown }, cb: (e: null, r: { value: number; version: string }) => void) => cb(null, { value: call.request.x + call.request.y, version: 'v1' }),
  });
  const creds = grpcServerCredentials(server.identity!, { mode: 'STRICT' });
  const port = await new Promise<number>((resolve, reject) => grpc.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
  t.after(() => grpc.forceShutdown());

  const client = await createMesh({
    workload: { name: 'client', namespace: 'default', serviceAccount: 'client' }, ca: { dir },
    config: `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: calculate, namespace: default }
spec:
  hosts: [calculate.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9000, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.1, ports: { grpc: ${port} }, labels: { security.istio.io/tlsMode: istio } }]
`,
  });
  t.after(() => client.close());
  const stub = new CalculateClient('calculate.default.svc.cluster.local:9000', credentials.createInsecure(), client.grpc.clientOptions());
  t.after(() => stub.close());
  const answer = await calculate(stub, { x: 2, y: 3 });
  assert.equal(answer.value, 5);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(warnings.filter((w) => w.includes('DEP0123')), []);
});
