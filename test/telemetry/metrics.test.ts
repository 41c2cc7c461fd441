import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Registry, register as globalRegistry } from 'prom-client';
import { BYTE_BUCKETS, DURATION_BUCKETS_MS, ISTIO_LABELS, IstioMetrics } from '../../src/telemetry/metrics.js';
import { find, parseExposition } from './exposition.js';

const peer = {
  reporter: 'source', source_workload: 'client', source_workload_namespace: 'default', source_app: 'client', source_version: 'v1',
  destination_service: 'calculate.default.svc.cluster.local', destination_service_name: 'calculate',
  destination_service_namespace: 'default', request_protocol: 'http', connection_security_policy: 'unknown',
};

test('istio_requests_total and the three histograms carry exactly the Istio labels and the right counts', async () => {
  const m = new IstioMetrics();
  const fam = m.family(peer);
  const ok = fam.series(200);
  assert.equal(fam.series(200), ok, 'series are cached per response');
  m.record(ok, 3, 100, 2000);
  m.record(ok, 700, 0, 5);
  fam.series(503, 'UO').record(0.2, 10, 91);
  const samples = parseExposition(await m.text());

  const total = find(samples, 'istio_requests_total');
  assert.equal(total.length, 2);
  const t200 = find(samples, 'istio_requests_total', { response_code: '200' })[0]!;
  assert.equal(t200.value, 2);
  assert.deepEqual(Object.keys(t200.labels).sort(), [...ISTIO_LABELS].sort());
  assert.equal(t200.labels.response_flags, '-');
  assert.equal(t200.labels.grpc_response_status, '');
  assert.equal(t200.labels.destination_workload, 'unknown');
  assert.equal(t200.labels.source_principal, 'unknown');
  assert.equal(find(samples, 'istio_requests_total', { response_code: '503', response_flags: 'UO' })[0]!.value, 1);

  const buckets = find(samples, 'istio_request_duration_milliseconds_bucket', { response_code: '200' });
  assert.deepEqual(buckets.map((b) => b.labels.le), [...DURATION_BUCKETS_MS.map(String), '+Inf']);
  const le = (name: string, bound: string, code = '200') => find(samples, name, { response_code: code, le: bound })[0]!.value;
  assert.equal(le('istio_request_duration_milliseconds_bucket', '1'), 0);
  assert.equal(le('istio_request_duration_milliseconds_bucket', '5'), 1);
  assert.equal(le('istio_request_duration_milliseconds_bucket', '1000'), 2);
  assert.equal(le('istio_request_duration_milliseconds_bucket', '+Inf'), 2);
  assert.equal(le('istio_request_duration_milliseconds_bucket', '0.5', '503'), 1);
  assert.equal(find(samples, 'istio_request_duration_milliseconds_sum', { response_code: '200' })[0]!.value, 703);
  assert.equal(find(samples, 'istio_request_duration_milliseconds_count', { response_code: '200' })[0]!.value, 2);
  assert.equal(find(samples, 'istio_request_bytes_bucket', { response_code: '200' }).length, BYTE_BUCKETS.length + 1);
  assert.equal(le('istio_request_bytes_bucket', '1'), 1, 'an empty body counts in the first bucket');
  assert.equal(le('istio_response_bytes_bucket', '10'), 1);
  assert.equal(le('istio_response_bytes_bucket', '10000'), 2);
  assert.equal(find(samples, 'istio_response_bytes_sum', { response_code: '200' })[0]!.value, 2005);
  m.close();
});

test('user registry: metrics registered alongside the user\'s own, removed on close; global default untouched', async () => {
  const registry = new Registry();
  const mine = new Counter({ name: 'app_things_total', help: 'x', registers: [registry] });
  mine.inc();
  const m = new IstioMetrics({ registry });
  m.series({ ...peer, response_code: '200' }).record(1, 1, 1);
  const all = parseExposition(await registry.metrics());
  assert.equal(find(all, 'app_things_total')[0]!.value, 1);
  assert.equal(find(all, 'istio_requests_total')[0]!.value, 1);
  const own = parseExposition(await m.text());
  assert.equal(find(own, 'app_things_total').length, 0, 'text() is the istio_* metrics only');
  assert.equal(globalRegistry.getSingleMetric('istio_requests_total'), undefined);
  m.close();
  m.close();
  assert.equal(registry.getSingleMetric('istio_requests_total'), undefined);
  assert.ok(registry.getSingleMetric('app_things_total'));
  // Two meshes in one process, each with its own registry, do not collide.
  const a = new IstioMetrics();
  const b = new IstioMetrics();
  assert.notEqual(a.registry, b.registry);
  a.close();
  b.close();
});

test('cardinality is capped: past maxSeries new label sets collapse into overflow', async () => {
  const m = new IstioMetrics({ maxSeries: 10 });
  for (let i = 0; i < 50; i++) {
    m.family({ ...peer, destination_service: `svc-${i}.default.svc.cluster.local`, destination_service_name: `svc-${i}` }).series(200).record(1, 1, 1);
  }
  // Responses codes on a known family past the cap collapse too.
  m.family(peer).series(201).record(1, 1, 1);
  const samples = find(parseExposition(await m.text()), 'istio_requests_total');
  assert.equal(samples.length, 12, '10 real series + overflow series for 200 and 201');
  const overflow = samples.filter((s) => s.labels.destination_service === 'overflow');
  assert.deepEqual(overflow.map((s) => [s.labels.response_code, s.value]), [['200', 40], ['201', 1]]);
  assert.equal(overflow[0]!.labels.reporter, 'source');
  assert.equal(overflow[0]!.labels.request_protocol, 'http');
  assert.equal(overflow[0]!.labels.source_workload, 'overflow');
  assert.equal(samples.reduce((n, s) => n + s.value, 0), 51);
  assert.equal(m.size, 12);
  m.close();
});

test('label values are escaped; canonical labels optional; reset zeroes', async () => {
  const m = new IstioMetrics({ canonicalLabels: true });
  m.family({ ...peer, source_app: 'we"ird\\app\nx', source_canonical_service: 'client' }).series(200).record(1, 1, 1);
  let s = find(parseExposition(await m.text()), 'istio_requests_total')[0]!;
  assert.equal(s.labels.source_app, 'we"ird\\app\nx');
  assert.equal(s.labels.source_canonical_service, 'client');
  assert.equal(s.labels.destination_canonical_revision, 'unknown');
  m.reset();
  s = find(parseExposition(await m.text()), 'istio_requests_total')[0]!;
  assert.equal(s.value, 0);
  m.close();
});

test('grpc status is a separate series label', async () => {
  const m = new IstioMetrics();
  const fam = m.family({ ...peer, request_protocol: 'grpc' });
  fam.series(200, '-', 0).record(1, 1, 1);
  fam.series(200, '-', 14).record(1, 1, 1);
  const samples = find(parseExposition(await m.text()), 'istio_requests_total', { request_protocol: 'grpc' });
  assert.deepEqual(samples.map((x) => x.labels.grpc_response_status).sort(), ['0', '14']);
  m.close();
});
