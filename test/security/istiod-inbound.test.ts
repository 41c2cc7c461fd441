// Inbound policy exactly as istiod's grpc generator sends it (test/fixtures/istio/grpcgen-inbound.ts),
// delivered over ADS: STRICT from the filter chain's DownstreamTlsContext refuses plaintext, and the RBAC
// filters deny and permit on an HTTP server (mesh.createServer) and on gRPC servers (serverInterceptor).
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { test } from 'node:test';
import { credentials, Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { parseAllDocuments } from 'yaml';
import { calculate, CalculateClient, CalculateService, type Operands, type Result } from '../../examples/grpc/proto.js';
import { TYPE_URL } from '../../src/config/envoy.js';
import { translateAuthorizationPolicy } from '../../src/config/translate-rbac.js';
import { translateInbound } from '../../src/config/translate-inbound.js';
import { inboundListenersOf } from '../../src/core/inbound-listener.js';
import { createMesh, type Mesh } from '../../src/index.js';
import { grpcServerCredentials } from '../../src/security/index.js';
import { normalize } from '../../src/xds/protos.js';
import { ALLOW_POLICIES, DENY_POLICIES, ISTIO_CONFIG, grpcgenInboundListener } from '../fixtures/istio/grpcgen-inbound.js';
import { startFakeAds } from '../xds/fake-ads-server.js';
import { CALC, closeServer, listen, tempDir, whoami } from './helpers.js';

const istioConfig = parseAllDocuments(ISTIO_CONFIG).map((d) => d.toJS() as { kind: string; metadata: { name: string; namespace: string }; spec: Record<string, unknown> });
const GRPC_HOST = 'calculate-grpc.default.svc.cluster.local';

test('our translator writes the RBAC policies istiod writes for the same AuthorizationPolicies; the wire form reads as STRICT', () => {
  const policies = istioConfig.filter((r) => r.kind === 'AuthorizationPolicy').map((r) => translateAuthorizationPolicy(r));
  // Same bodies; the names differ only by istiod's two naming schemes (grpcgen `<ns>-<name>-<i>`, builder `ns[…]-policy[…]-rule[…]`).
  assert.deepEqual(policies[0]!.policies['ns[default]-policy[deny-admin]-rule[0]'], DENY_POLICIES['default-deny-admin-0']);
  assert.deepEqual(policies[1]!.policies['ns[default]-policy[allow-client]-rule[0]'], ALLOW_POLICIES['default-allow-client-0']);
  const wire = normalize(TYPE_URL.listener, grpcgenInboundListener('127.0.0.1', 8080));
  const resources = { listeners: [wire as never], routes: [], clusters: [], endpoints: [] };
  assert.equal(inboundListenersOf(resources).modeFor(8080), 'STRICT');
  assert.equal(inboundListenersOf(resources).modeFor(undefined), 'STRICT', 'a single per-port listener is the workload default');
  const plain = { listeners: [normalize(TYPE_URL.listener, grpcgenInboundListener('127.0.0.1', 8080, 'DISABLE')) as never], routes: [], clusters: [], endpoints: [] };
  assert.equal(inboundListenersOf(plain).modeFor(8080), 'DISABLE');
  // Our own listener for the same config: one mTLS chain requiring a client certificate, the same filter order.
  const ours = translateInbound(istioConfig as never, { name: 'calculate', namespace: 'default', labels: { app: 'calculate' } });
  const chains = ours.filter_chains as Array<{ name: string; transport_socket?: unknown; filters: Array<{ typed_config: { http_filters: Array<{ name: string }> } }> }>;
  assert.deepEqual(chains.map((c) => c.name), ['inbound-mtls']);
  assert.deepEqual(chains[0]!.filters[0]!.typed_config.http_filters.map((f) => f.name), ['envoy.filters.http.rbac.DENY', 'envoy.filters.http.rbac', 'envoy.filters.http.router']);
});

/** A plaintext GET on a fresh connection; resolves with the status or rejects when the server drops it. */
function plainGet(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function clientConfig(httpPort: number, grpcPort: number): string {
  const entry = (name: string, host: string, port: number, protocol: string, target: number) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: default }
spec:
  hosts: [${host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: p, protocol: ${protocol} }]
  endpoints: [{ address: 127.0.0.1, ports: { p: ${target} }, labels: { app: calculate, security.istio.io/tlsMode: istio }, serviceAccount: calculate }]
`;
  return `${entry('calculate', CALC, 8000, 'HTTP', httpPort)}---${entry('calculate-grpc', GRPC_HOST, 9000, 'GRPC', grpcPort)}`;
}

function grpcServer(mesh: Mesh, handled: { count: number }): Server {
  const server = new Server({ interceptors: [mesh.grpc.serverInterceptor] });
  server.addService(CalculateService, {
    Calculate: (call: ServerUnaryCall<Operands, Result>, cb: sendUnaryData<Result>) => {
      handled.count++;
      cb(null, { value: call.request.x + call.request.y, version: 'v1' } as Result);
    },
    Series: () => undefined, Fold: () => undefined, Pipe: () => undefined,
  });
  return server;
}

const bind = (server: Server, creds: Parameters<Server['bindAsync']>[1]) =>
  new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));

test('istiod inbound listeners over ADS: STRICT refuses plaintext; its RBAC filters deny and permit on HTTP and gRPC servers', async (t) => {
  const ca = await tempDir();
  t.after(() => ca.remove());
  const ads = await startFakeAds();
  t.after(() => ads.close());
  const mesh = createMesh({ workload: { name: 'calculate', namespace: 'default', serviceAccount: 'calculate', labels: { app: 'calculate' } }, ca: { dir: ca.dir }, xds: { server: `127.0.0.1:${ads.port}` } });
  await ads.next((r) => r.type_url === TYPE_URL.listener);
  ads.respond(TYPE_URL.listener, '1', 'n1', []);
  const server = await mesh;
  t.after(() => server.close());

  const http = server.createServer(whoami(server));
  const httpPort = await listen(http);
  t.after(() => closeServer(http));
  const handled = { count: 0 };
  const grpcTls = grpcServer(server, handled);
  const grpcPort = await bind(grpcTls, grpcServerCredentials(server.identity!, { mode: 'STRICT' }));
  t.after(() => grpcTls.forceShutdown());
  // An app-built plaintext gRPC server: the listener says STRICT, so the interceptor refuses its calls.
  const grpcPlain = grpcServer(server, handled);
  const plainPort = await bind(grpcPlain, ServerCredentials.createInsecure());
  t.after(() => grpcPlain.forceShutdown());

  // What istiod sends when asked for xds.istio.io/grpc/lds/inbound/127.0.0.1:<port>, one listener per port.
  ads.respond(TYPE_URL.listener, '2', 'n2', [httpPort, grpcPort, plainPort].map((p) => grpcgenInboundListener('127.0.0.1', p)));
  const ack = await ads.next((r) => r.type_url === TYPE_URL.listener && r.response_nonce === 'n2');
  assert.equal(ack.version_info, '2', `the listeners are ACKed, not NACKed: ${ack.error_detail?.message ?? ''}`);
  assert.equal(server.security.modeFor(httpPort), 'STRICT');

  const client = await createMesh({ workload: { name: 'client', namespace: 'default', serviceAccount: 'client' }, ca: { dir: ca.dir }, config: clientConfig(httpPort, grpcPort) });
  t.after(() => client.close());
  const other = await createMesh({ workload: { name: 'other', namespace: 'default', serviceAccount: 'other' }, ca: { dir: ca.dir }, config: clientConfig(httpPort, grpcPort) });
  t.after(() => other.close());

  // HTTP: STRICT and the ALLOW / DENY filters.
  await assert.rejects(plainGet(httpPort), /ECONNRESET|socket hang up/);
  const ok = await client.fetch(`http://${CALC}:8000/`);
  assert.equal(ok.status, 200);
  assert.equal(await ok.text(), 'spiffe://cluster.local/ns/default/sa/client tls');
  const admin = await client.fetch(`http://${CALC}:8000/admin/users`);
  assert.deepEqual([admin.status, admin.headers.get('x-meshlet-flags'), await admin.text()], [403, 'RBAC', 'RBAC: access denied'], 'DENY before ALLOW');
  const stranger = await other.fetch(`http://${CALC}:8000/`);
  assert.deepEqual([stranger.status, await stranger.text()], [403, 'RBAC: access denied'], 'ALLOW matches only the client principal');
  const del = await client.fetch(`http://${CALC}:8000/`, { method: 'DELETE' });
  assert.equal(del.status, 403, 'ALLOW names GET and POST only');
  await del.text();

  // gRPC: the same filters, through the server interceptor.
  const stub = new CalculateClient(`${GRPC_HOST}:9000`, credentials.createInsecure(), client.grpc.clientOptions());
  t.after(() => stub.close());
  assert.equal((await calculate(stub, { x: 2, y: 3 })).value, 5);
  const otherStub = new CalculateClient(`${GRPC_HOST}:9000`, credentials.createInsecure(), other.grpc.clientOptions());
  t.after(() => otherStub.close());
  await assert.rejects(calculate(otherStub, { x: 1, y: 1 }), (err: { code?: number; details?: string }) => {
    assert.deepEqual([err.code, err.details], [status.PERMISSION_DENIED, 'RBAC: access denied']);
    return true;
  });
  const plainStub = new CalculateClient(`127.0.0.1:${plainPort}`, credentials.createInsecure());
  t.after(() => plainStub.close());
  await assert.rejects(calculate(plainStub, { x: 1, y: 1 }), (err: { code?: number; details?: string }) => {
    assert.equal(err.code, status.UNAVAILABLE);
    assert.match(err.details ?? '', /mutual TLS required/);
    return true;
  });
  assert.equal(handled.count, 1, 'only the allowed call reached a handler');
});
