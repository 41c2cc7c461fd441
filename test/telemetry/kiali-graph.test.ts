/**
 * Kiali's graph, against a real Prometheus scraping two meshed workloads'
 * admin endpoints. The query is Kiali's "internal traffic" query and the
 * label checks are the ones its populateTrafficMap applies before drawing an
 * edge (kiali/kiali graph/telemetry/istio/istio.go, commit
 * 00d47bbb0e623b5952473e96a03e60cc99ce728a: every label present, source
 * workload/namespace/canonical service not `unknown`, the destination
 * service/workload known). The health query selects `destination_cluster`
 * as Kiali does with istiod's default cluster id. Skipped without the
 * `prometheus` binary.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { hasPrometheus, startPrometheus, type PromSeries } from '../helpers/prometheus.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createMesh } from '../../src/index.js';
import { CALC, clientConfig, closeServer, listen } from '../security/helpers.js';

// kiali/kiali graph/telemetry/istio/istio.go: groupBy and query 3 (traffic from inside the namespace).
const GROUP_BY = 'source_workload_namespace,source_workload,source_canonical_service,source_canonical_revision,destination_service_namespace,destination_service,destination_service_name,destination_workload_namespace,destination_workload,destination_canonical_service,destination_canonical_revision,request_protocol,response_code,grpc_response_status,response_flags';
const KIALI_INTERNAL = `sum(rate(istio_requests_total{reporter="source",source_workload_namespace="default"} [30s])) by (${GROUP_BY})`;
const KIALI_HEALTH = 'sum(rate(istio_requests_total{reporter="destination",destination_cluster="Kubernetes",destination_workload_namespace="default",destination_workload="calculate"}[30s])) by (source_cluster,destination_cluster)';
const REQUIRED = ['source_workload_namespace', 'source_workload', 'source_canonical_service', 'source_canonical_revision', 'destination_service_namespace', 'destination_service', 'destination_service_name', 'destination_workload_namespace', 'destination_workload', 'destination_canonical_service', 'destination_canonical_revision', 'request_protocol', 'response_code', 'response_flags'];


test('Kiali\'s graph query over a real Prometheus draws the client → calculate edge; its health query finds the workload', { skip: hasPrometheus ? false : 'prometheus binary not found', timeout: 90_000 }, async (t) => {
  const server = await createMesh({ workload: { name: 'calculate', labels: { app: 'calculate', version: 'v1' } }, config: [], admin: { port: 0 } });
  const http = server.createServer((_req: IncomingMessage, res: ServerResponse) => void res.end('4'));
  const port = await listen(http);
  const client = await createMesh({ workload: { name: 'client', labels: { app: 'client', version: 'v1' } }, config: clientConfig(port, { meshed: false }), admin: { port: 0 } });
  const prom = await startPrometheus([server.admin!.port, client.admin!.port]);
  t.after(async () => {
    await prom.stop();
    await client.close();
    await closeServer(http);
    await server.close();
  });
  const query = prom.query;
  // Traffic keeps flowing while Prometheus comes up and gathers two scrapes for rate(): bounded in count and time.
  // Both targets are scraped on their own schedules: wait until each query has two samples to rate.
  let edges: PromSeries[] = [];
  let health: PromSeries[] = [];
  const deadline = Date.now() + 60_000;
  for (let i = 0; i < 120 && Date.now() < deadline && !prom.exited; i++) {
    const res = await client.fetch(`http://${CALC}:8000/add`);
    await res.text();
    edges = (await query(KIALI_INTERNAL)).filter((s) => Number(s.value[1]) > 0);
    health = (await query(KIALI_HEALTH)).filter((s) => Number(s.value[1]) > 0);
    if (edges.length > 0 && health.length > 0) break;
    await sleep(500);
  }
  assert.equal(edges.length, 1, `Kiali's query returned ${JSON.stringify(edges)}\n${prom.log()}`);
  const m = edges[0]!.metric;
  for (const label of REQUIRED) assert.ok(m[label] !== undefined, `Kiali skips a series without ${label}`);
  for (const label of ['source_workload_namespace', 'source_workload', 'source_canonical_service']) assert.notEqual(m[label], 'unknown', `Kiali's IsBadSourceTelemetry: ${label}`);
  assert.deepEqual(
    { src: m.source_workload, srcApp: m.source_canonical_service, srcVer: m.source_canonical_revision, dst: m.destination_workload, dstApp: m.destination_canonical_service, dstVer: m.destination_canonical_revision, svc: m.destination_service, code: m.response_code },
    { src: 'client', srcApp: 'client', srcVer: 'v1', dst: 'calculate', dstApp: 'calculate', dstVer: 'v1', svc: CALC, code: '200' },
  );
  assert.equal(health.length, 1, `health query returned ${JSON.stringify(health)}`);
  assert.deepEqual(health[0]!.metric, { source_cluster: 'Kubernetes', destination_cluster: 'Kubernetes' });
});
