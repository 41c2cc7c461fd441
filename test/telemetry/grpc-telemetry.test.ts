/**
 * gRPC telemetry as Istio's sidecars report it: metadata exchange in the
 * initial metadata both ways (so reporter="source" knows its destination),
 * istio_request_messages_total / istio_response_messages_total for streams,
 * and request/response sizes from the frames on the wire.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, Metadata, Server, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { createMesh } from '../../src/index.js';
import { grpcServerCredentials } from '../../src/security/grpc-credentials.js';
import { CalculateClient, CalculateService, type Operands, type Result } from '../../examples/grpc/proto.js';
import { CALC_ID, CLIENT_ID, tempDir } from '../security/helpers.js';
import { grpcCalculateService, startGrpcServer } from '../helpers/grpc-servers.js';
import { find, parseExposition } from './exposition.js';

const TARGET = 'calculate.default.svc.cluster.local:9000';

test('gRPC through two meshes: destination labels on reporter=source, message counters and bytes on both reporters, peer metadata kept from the apps', async (t) => {
  const serverMesh = await createMesh({ workload: { name: 'calculate-v1', labels: { app: 'calculate', version: 'v1' } }, config: [] });
  const upstream = await startGrpcServer('v1', { interceptors: [serverMesh.grpc.serverInterceptor] });
  const clientMesh = await createMesh({ workload: { name: 'client', labels: { app: 'client', version: 'v3' } }, config: grpcCalculateService([{ port: upstream.port, version: 'v1' }]) });
  const client = new CalculateClient(TARGET, credentials.createInsecure(), clientMesh.grpc.clientOptions());
  t.after(async () => {
    client.close();
    await clientMesh.close();
    await upstream.close();
    await serverMesh.close();
  });

  // Server streaming: 1 request message, 5 responses.
  const series: number[] = [];
  const headers: Metadata[] = [];
  await new Promise<void>((resolve, reject) => {
    const s = client.Series({ x: 2, y: 1, count: 5 });
    s.on('metadata', (md: Metadata) => headers.push(md));
    s.on('data', (r: Result) => series.push(r.value));
    s.on('error', reject);
    s.on('end', resolve);
  });
  assert.deepEqual(series, [3, 4, 5, 6, 7]);
  assert.equal(upstream.lastMetadata?.get('x-envoy-peer-metadata').length, 0, 'the handler does not see the caller\'s metadata exchange');
  assert.equal(headers[0]?.get('x-envoy-peer-metadata').length, 0, 'nor does the calling app see the server\'s');
  // Client streaming: 3 requests, 1 response.
  const folded = await new Promise<Result>((resolve, reject) => {
    const w = client.Fold(new Metadata(), {}, (err, r) => (err ? reject(err) : resolve(r!)));
    for (let i = 1; i <= 3; i++) w.write({ x: i, y: 1 });
    w.end();
  });
  assert.equal(folded.value, 2 + 3 + 4);

  const out = parseExposition(await clientMesh.metrics());
  const [sourceCount] = find(out, 'istio_requests_total', { reporter: 'source', request_protocol: 'grpc' });
  assert.equal(sourceCount?.value, 2);
  assert.equal(sourceCount!.labels.destination_workload, 'calculate-v1', 'learnt from the response headers');
  assert.equal(sourceCount!.labels.destination_app, 'calculate');
  assert.equal(sourceCount!.labels.destination_version, 'v1');
  assert.equal(sourceCount!.labels.destination_canonical_service, 'calculate');
  assert.equal(sourceCount!.labels.destination_canonical_revision, 'v1');
  assert.equal(sourceCount!.labels.destination_cluster, 'Kubernetes');
  assert.equal(sourceCount!.labels.grpc_response_status, '0');
  assert.equal(find(out, 'istio_request_messages_total', { reporter: 'source' })[0]?.value, 1 + 3);
  assert.equal(find(out, 'istio_response_messages_total', { reporter: 'source' })[0]?.value, 5 + 1);
  const sentBytes = find(out, 'istio_request_bytes_sum', { reporter: 'source' })[0]!.value;
  const gotBytes = find(out, 'istio_response_bytes_sum', { reporter: 'source' })[0]!.value;
  // Every message is a 5-byte prefix plus its encoding; metadata adds more.
  assert.ok(sentBytes > (1 + 3) * 5, `request bytes ${sentBytes}`);
  assert.ok(gotBytes > (5 + 1) * 5, `response bytes ${gotBytes}`);

  const inbound = parseExposition(await serverMesh.metrics());
  const [destCount] = find(inbound, 'istio_requests_total', { reporter: 'destination', request_protocol: 'grpc' });
  assert.equal(destCount?.value, 2);
  assert.equal(destCount!.labels.source_workload, 'client');
  assert.equal(destCount!.labels.source_canonical_revision, 'v3');
  assert.equal(destCount!.labels.source_cluster, 'Kubernetes');
  assert.equal(find(inbound, 'istio_request_messages_total', { reporter: 'destination' })[0]?.value, 1 + 3);
  assert.equal(find(inbound, 'istio_response_messages_total', { reporter: 'destination' })[0]?.value, 5 + 1);
  assert.ok(find(inbound, 'istio_request_bytes_sum', { reporter: 'destination' })[0]!.value > (1 + 3) * 5);
  assert.ok(find(inbound, 'istio_response_bytes_sum', { reporter: 'destination' })[0]!.value > (5 + 1) * 5);
  // The message counters are gRPC's: HTTP series do not carry them (as in Istio).
  assert.equal(find(out, 'istio_request_messages_total', { request_protocol: 'http' }).length, 0);
});

test('gRPC over ISTIO_MUTUAL: principals of both ends on both reporters, mutual_tls on the server', async (t) => {
  const ca = await tempDir();
  const serverMesh = await createMesh({ workload: { name: 'calculate', serviceAccount: 'calculate', labels: { app: 'calculate' } }, config: [], ca: { dir: ca.dir } });
  const grpcServer = new Server({ interceptors: [serverMesh.grpc.serverInterceptor] });
  grpcServer.addService(CalculateService, {
    Calculate: (call: ServerUnaryCall<Operands, Result>, cb: sendUnaryData<Result>) => cb(null, { value: call.request.x + call.request.y, version: 'v1' }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync('127.0.0.1:0', grpcServerCredentials(serverMesh.identity!, { mode: 'STRICT' }), (err, p) => (err ? reject(err) : resolve(p))));
  const clientMesh = await createMesh({
    workload: { name: 'client', serviceAccount: 'client', labels: { app: 'client' } }, ca: { dir: ca.dir },
    config: `${grpcCalculateService([{ port, version: 'v1' }])}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: calculate, namespace: default }
spec: { host: calculate.default.svc.cluster.local, trafficPolicy: { tls: { mode: ISTIO_MUTUAL } } }`,
  });
  const client = new CalculateClient(TARGET, credentials.createInsecure(), clientMesh.grpc.clientOptions());
  t.after(async () => {
    client.close();
    await clientMesh.close();
    grpcServer.forceShutdown();
    await serverMesh.close();
    await ca.remove();
  });
  const r = await new Promise<Result>((resolve, reject) => client.Calculate({ x: 1, y: 2 }, (err, v) => (err ? reject(err) : resolve(v!))));
  assert.equal(r.value, 3);
  const [source] = find(parseExposition(await clientMesh.metrics()), 'istio_requests_total', { reporter: 'source' });
  assert.equal(source!.labels.source_principal, CLIENT_ID);
  assert.equal(source!.labels.destination_principal, CALC_ID);
  assert.equal(source!.labels.destination_workload, 'calculate');
  const [dest] = find(parseExposition(await serverMesh.metrics()), 'istio_requests_total', { reporter: 'destination' });
  assert.equal(dest!.labels.source_principal, CLIENT_ID);
  assert.equal(dest!.labels.destination_principal, CALC_ID);
  assert.equal(dest!.labels.connection_security_policy, 'mutual_tls');
});
