// A real Prometheus (Debian package `prometheus`) scrapes the admin endpoint
// and its query API returns the istio_* series. Skipped when the binary is absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { hasPrometheus, startPrometheus, type PromSeries } from '../helpers/prometheus.js';
import { createAdminServer } from '../../src/telemetry/admin.js';
import { IstioMetrics } from '../../src/telemetry/metrics.js';

test('prometheus scrapes /stats/prometheus and answers istio_requests_total', { skip: hasPrometheus ? false : 'prometheus binary not found (apt-get install -y prometheus)', timeout: 60_000 }, async () => {
  const metrics = new IstioMetrics();
  const fam = metrics.family({
    reporter: 'destination', source_workload: 'client', source_workload_namespace: 'default',
    destination_workload: 'calculate-v1', destination_service: 'calculate.default.svc.cluster.local', request_protocol: 'http',
  });
  for (let i = 0; i < 7; i++) fam.series(200).record(12, 10, 100);
  fam.series(503, 'UO').record(1, 0, 19);
  const admin = await createAdminServer({ port: 0, handlers: { metrics: () => metrics.text() } });
  const prom = await startPrometheus([admin.port]);
  try {
    let series: PromSeries[] = [];
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && series.length < 2) {
      await sleep(500);
      if (prom.exited) break;
      series = await prom.query('istio_requests_total');
    }
    assert.equal(series.length, 2, `prometheus returned ${JSON.stringify(series)}\n${prom.log()}`);
    const ok = series.find((s) => s.metric.response_code === '200')!;
    assert.equal(ok.value[1], '7');
    assert.equal(ok.metric.job, 'meshlet');
    assert.equal(ok.metric.source_workload, 'client');
    assert.equal(ok.metric.destination_workload, 'calculate-v1');
    assert.equal(series.find((s) => s.metric.response_code === '503')!.metric.response_flags, 'UO');
    const hist = await prom.query('istio_request_duration_milliseconds_bucket{le="25",response_code="200"}');
    assert.equal(hist[0]?.value[1], '7');
  } finally {
    await prom.stop();
    await admin.close();
    metrics.close();
  }
});
