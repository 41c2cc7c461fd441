/**
 * Istio's full label set with Istio's values, on both reporters, between two
 * meshed workloads over mTLS (mesh.fetch → mesh.createServer): what Kiali's
 * graph and health queries select. Label list and defaults from istio/proxy's
 * stats filter (source/extensions/filters/http/istio_stats/istio_stats.cc);
 * canonical-service derivation from istio/istio pkg/kube/labels/labels.go
 * (commit 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CALC, CALC_ID, CLIENT_ID, clientConfig, closeServer, listen, tempDir } from '../security/helpers.js';
import { createMesh } from '../../src/index.js';
import { ISTIO_LABELS } from '../../src/telemetry/metrics.js';
import { find, parseExposition } from './exposition.js';

const ISTIO_MUTUAL = '{ mode: ISTIO_MUTUAL }';

test('mTLS mesh.fetch → mesh.createServer: every istio_* series has Istio\'s labels with real canonical, cluster and principal values on both reporters', async (t) => {
  const ca = await tempDir();
  const server = await createMesh({
    workload: { name: 'calculate-v2', namespace: 'default', serviceAccount: 'calculate', labels: { 'app.kubernetes.io/name': 'calculate', app: 'calc-legacy', version: 'v2' } },
    config: [], ca: { dir: ca.dir },
  });
  const seen: { peer?: string } = {};
  const http = server.createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.peer = server.peerOf(req);
    res.end('4');
  });
  const port = await listen(http);
  const client = await createMesh({
    workload: { name: 'client', namespace: 'default', serviceAccount: 'client', labels: { app: 'client', 'service.istio.io/canonical-revision': 'r7' } },
    config: clientConfig(port, { tls: ISTIO_MUTUAL }), ca: { dir: ca.dir },
  });
  t.after(async () => {
    await client.close();
    await closeServer(http);
    await server.close();
    await ca.remove();
  });

  const res = await client.fetch(`http://${CALC}:8000/add?x=1&y=3`);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), '4');
  assert.equal(seen.peer, CLIENT_ID);
  assert.equal(res.headers.get('x-envoy-peer-metadata'), null, 'metadata exchange is the mesh\'s, not the app\'s');

  const inbound = find(parseExposition(await server.metrics()), 'istio_requests_total', { reporter: 'destination' });
  assert.equal(inbound.length, 1, 'mesh.createServer records reporter="destination"');
  assert.deepEqual(Object.keys(inbound[0]!.labels).sort(), [...ISTIO_LABELS].sort());
  assert.deepEqual({ ...inbound[0]!.labels }, {
    reporter: 'destination',
    source_workload: 'client', source_canonical_service: 'client', source_canonical_revision: 'r7',
    source_workload_namespace: 'default', source_principal: CLIENT_ID, source_app: 'client', source_version: 'unknown',
    source_cluster: 'Kubernetes',
    destination_workload: 'calculate-v2', destination_workload_namespace: 'default', destination_principal: CALC_ID,
    destination_app: 'calc-legacy', destination_version: 'v2',
    // istiod's order: app.kubernetes.io/name before app.
    destination_service: 'calc-legacy.default.svc.cluster.local', destination_canonical_service: 'calculate', destination_canonical_revision: 'v2',
    destination_service_name: 'calc-legacy', destination_service_namespace: 'default', destination_cluster: 'Kubernetes',
    request_protocol: 'http', response_code: '200', grpc_response_status: '', response_flags: '-', connection_security_policy: 'mutual_tls',
  });
  assert.equal(inbound[0]!.value, 1);

  const outbound = find(parseExposition(await client.metrics()), 'istio_requests_total', { reporter: 'source' });
  assert.equal(outbound.length, 1);
  assert.deepEqual({ ...outbound[0]!.labels }, {
    reporter: 'source',
    source_workload: 'client', source_canonical_service: 'client', source_canonical_revision: 'r7',
    source_workload_namespace: 'default', source_principal: CLIENT_ID, source_app: 'client', source_version: 'unknown',
    source_cluster: 'Kubernetes',
    destination_workload: 'calculate-v2', destination_workload_namespace: 'default', destination_principal: CALC_ID,
    destination_app: 'calc-legacy', destination_version: 'v2',
    destination_service: CALC, destination_canonical_service: 'calculate', destination_canonical_revision: 'v2',
    destination_service_name: 'calculate', destination_service_namespace: 'default', destination_cluster: 'Kubernetes',
    // The stats filter's client side does not know the server's policy.
    request_protocol: 'http', response_code: '200', grpc_response_status: '', response_flags: '-', connection_security_policy: 'unknown',
  });

  // istio_build, as every Istio proxy reports it.
  assert.deepEqual(find(parseExposition(await client.metrics()), 'istio_build').map((s) => ({ ...s.labels, value: s.value })), [{ component: 'proxy', tag: '1.24.0', value: 1 }]);
});

test('createMesh({ clusterId }) is the *_cluster labels and CLUSTER_ID; canonicalLabels: false leaves Istio\'s canonical labels out', async (t) => {
  const server = await createMesh({ workload: { name: 'calculate', labels: { app: 'calculate' } }, config: [], clusterId: 'east', telemetry: { canonicalLabels: false } });
  const http = server.createServer((_req: IncomingMessage, res: ServerResponse) => void res.end('ok'));
  const port = await listen(http);
  const client = await createMesh({ workload: { name: 'client', labels: { app: 'client' } }, config: clientConfig(port, { meshed: false }), clusterId: 'west' });
  t.after(async () => {
    await client.close();
    await closeServer(http);
    await server.close();
  });
  const res = await client.fetch(`http://${CALC}:8000/`);
  assert.equal(res.status, 200);
  await res.text();
  const [inbound] = find(parseExposition(await server.metrics()), 'istio_requests_total', { reporter: 'destination' });
  assert.equal(inbound!.labels.source_cluster, 'west', 'the caller\'s CLUSTER_ID, from metadata exchange');
  assert.equal(inbound!.labels.destination_cluster, 'east');
  assert.equal(inbound!.labels.source_canonical_service, undefined);
  assert.equal(inbound!.labels.connection_security_policy, 'none');
  assert.equal(inbound!.labels.source_principal, 'unknown');
  const [outbound] = find(parseExposition(await client.metrics()), 'istio_requests_total', { reporter: 'source' });
  assert.equal(outbound!.labels.source_cluster, 'west');
  assert.equal(outbound!.labels.destination_cluster, 'east');
  assert.equal(outbound!.labels.destination_canonical_service, 'calculate');
  assert.equal(outbound!.labels.destination_canonical_revision, 'latest', 'no version label: istiod\'s `latest`');
});
