// A real Prometheus (Debian package `prometheus`) scrapes the admin endpoint
// and its query API returns the istio_* series. Skipped when the binary is absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createAdminServer } from '../../src/telemetry/admin.js';
import { IstioMetrics } from '../../src/telemetry/metrics.js';

const hasPrometheus = spawnSync('prometheus', ['--version'], { stdio: 'ignore' }).status === 0;

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

test('prometheus scrapes /stats/prometheus and answers istio_requests_total', { skip: hasPrometheus ? false : 'prometheus binary not found (apt-get install -y prometheus)', timeout: 60_000 }, async () => {
  const metrics = new IstioMetrics();
  const fam = metrics.family({
    reporter: 'destination', source_workload: 'client', source_workload_namespace: 'default',
    destination_workload: 'calculate-v1', destination_service: 'calculate.default.svc.cluster.local', request_protocol: 'http',
  });
  for (let i = 0; i < 7; i++) fam.series(200).record(12, 10, 100);
  fam.series(503, 'UO').record(1, 0, 19);
  const admin = await createAdminServer({ port: 0, handlers: { metrics: () => metrics.text() } });
  const dir = mkdtempSync(join(tmpdir(), 'meshlet-prom-'));
  const promPort = await freePort();
  writeFileSync(join(dir, 'prometheus.yml'), [
    'global: { scrape_interval: 1s, evaluation_interval: 1s }',
    'scrape_configs:',
    '  - job_name: meshlet',
    '    metrics_path: /stats/prometheus',
    `    static_configs: [ { targets: ['127.0.0.1:${admin.port}'] } ]`,
    '',
  ].join('\n'));
  const prom = spawn('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${promPort}`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  prom.stderr.on('data', (d: Buffer) => { if (log.length < 20000) log += d.toString(); });
  const exited = new Promise<void>((resolve) => prom.once('exit', () => resolve()));
  try {
    let series: Array<{ metric: Record<string, string>; value: [number, string] }> = [];
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && series.length < 2) {
      await sleep(500);
      if (prom.exitCode !== null) break;
      try {
        const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=istio_requests_total`);
        const body = (await res.json()) as { status: string; data?: { result: typeof series } };
        if (body.status === 'success') series = body.data!.result;
      } catch { /* not up yet */ }
    }
    assert.equal(series.length, 2, `prometheus returned ${JSON.stringify(series)}\n${log.slice(-2000)}`);
    const ok = series.find((s) => s.metric.response_code === '200')!;
    assert.equal(ok.value[1], '7');
    assert.equal(ok.metric.job, 'meshlet');
    assert.equal(ok.metric.source_workload, 'client');
    assert.equal(ok.metric.destination_workload, 'calculate-v1');
    assert.equal(series.find((s) => s.metric.response_code === '503')!.metric.response_flags, 'UO');
    const hist = await (await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent('istio_request_duration_milliseconds_bucket{le="25",response_code="200"}')}`)).json() as { data: { result: Array<{ value: [number, string] }> } };
    assert.equal(hist.data.result[0]?.value[1], '7');
  } finally {
    prom.kill('SIGTERM');
    const killer = setTimeout(() => prom.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
    await admin.close();
    metrics.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
