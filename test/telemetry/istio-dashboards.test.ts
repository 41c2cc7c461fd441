/**
 * Istio's Grafana service and workload dashboards, against a real Prometheus
 * scraping two meshed workloads that talk over mTLS (mesh.fetch →
 * mesh.createServer): each panel's PromQL, copied unchanged from istio/istio
 * (test/fixtures/istio/dashboards.ts), comes back non-empty — request volume,
 * success rate, durations, sizes and the mTLS panels — and the non-mTLS panel
 * stays empty, as it does for a sidecar mesh under mTLS. Grafana's variables
 * are substituted as Grafana does (a multi-value `$qrep` becomes a regex
 * alternation). Skipped without the `prometheus` binary.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createMesh } from '../../src/index.js';
import { ISTIO_DASHBOARD_QUERIES, type DashboardQuery } from '../fixtures/istio/dashboards.js';
import { hasPrometheus, startPrometheus, type PromSeries } from '../helpers/prometheus.js';
import { CALC, clientConfig, closeServer, listen, tempDir } from '../security/helpers.js';

/** What a user picks on the dashboards: the calculate service / workload, both reporters, every source. */
const VARIABLES: Record<string, string> = {
  service: CALC, workload: 'calculate', namespace: 'default', srcwl: '.*', srcns: '.*', dstwl: '.*', dstns: '.*',
  // Grafana's $__rate_interval is at least four scrape intervals (1 s here); 30s leaves irate two samples.
  __rate_interval: '30s',
};

function grafana(q: DashboardQuery, qrep: string): string {
  return q.expr.replace(/\$(\w+)/g, (_, name: string) => (name === 'qrep' ? qrep : VARIABLES[name] ?? `$${name}`));
}

/** The non-mTLS panel: empty under mTLS on the destination reporter (the dashboard's default), as behind sidecars. */
const NON_MTLS = (q: DashboardQuery): boolean => q.expr.includes('connection_security_policy!="mutual_tls"');

test('Istio\'s service and workload dashboards over a real Prometheus: every panel has data, mTLS traffic in the mTLS panels', { skip: hasPrometheus ? false : 'prometheus binary not found', timeout: 120_000 }, async (t) => {
  const ca = await tempDir();
  const server = await createMesh({ workload: { name: 'calculate', serviceAccount: 'calculate', labels: { app: 'calculate', version: 'v1' } }, config: [], ca: { dir: ca.dir }, admin: { port: 0 } });
  const http = server.createServer((req: IncomingMessage, res: ServerResponse) => {
    res.statusCode = req.url === '/fail' ? 503 : 200;
    res.end('4');
  });
  const port = await listen(http);
  const client = await createMesh({
    workload: { name: 'client', serviceAccount: 'client', labels: { app: 'client', version: 'v1' } },
    config: clientConfig(port, { tls: '{ mode: ISTIO_MUTUAL }' }), ca: { dir: ca.dir }, admin: { port: 0 },
  });
  const prom = await startPrometheus([server.admin!.port, client.admin!.port]);
  t.after(async () => {
    await prom.stop();
    await client.close();
    await closeServer(http);
    await server.close();
    await ca.remove();
  });

  // Both reporters for the panels that take $qrep; the destination reporter (the dashboards' default) otherwise.
  const panels = ISTIO_DASHBOARD_QUERIES.flatMap((q) => (q.expr.includes('$qrep') && !NON_MTLS(q)
    ? [{ q, qrep: 'source|destination' }, { q, qrep: 'destination' }]
    : [{ q, qrep: 'destination' }]));
  const results = new Map<string, PromSeries[]>();
  const missing = (): string[] => panels.filter(({ q }) => !NON_MTLS(q)).map(({ q, qrep }) => `${q.dashboard}: ${q.title} (${q.refId}, ${qrep})`)
    .filter((key) => (results.get(key) ?? []).length === 0);
  const codesBySource = (): string[] => (results.get('service: Incoming Requests By Source And Response Code (A, destination)') ?? [])
    .map((s) => `${s.metric.source_workload}.${s.metric.source_workload_namespace} ${s.metric.response_code}`).sort();
  // Traffic flows while Prometheus comes up and gathers the samples irate() needs; bounded in count and time.
  const deadline = Date.now() + 90_000;
  for (let i = 0; i < 150 && Date.now() < deadline && !prom.exited; i++) {
    for (const path of ['/add', '/add', '/fail']) await (await client.fetch(`http://${CALC}:8000${path}`)).text();
    for (const { q, qrep } of panels) {
      const key = `${q.dashboard}: ${q.title} (${q.refId}, ${qrep})`;
      // NaN (a quantile of nothing) and the `or on () vector(1)` fallback alone are no data.
      results.set(key, (await prom.query(grafana(q, qrep))).filter((s) => Number.isFinite(Number(s.value[1]))));
    }
    if (missing().length === 0 && codesBySource().length === 2) break;
    await sleep(500);
  }
  assert.deepEqual(missing(), [], `panels without data\n${prom.log()}`);

  const nonMtls = panels.filter(({ q }) => NON_MTLS(q)).map(({ q, qrep }) => results.get(`${q.dashboard}: ${q.title} (${q.refId}, ${qrep})`) ?? []);
  assert.deepEqual(nonMtls.flat(), [], 'no mTLS traffic in the non-mTLS panel');
  assert.deepEqual(codesBySource(), ['client.default 200', 'client.default 503'], 'the mTLS panel has the caller, with both codes');
  const success = Number(results.get('service: Server Success Rate (non-5xx responses) (A, destination)')![0]!.value[1]);
  assert.ok(success > 0 && success <= 1, `a success ratio: ${success}`);
});
