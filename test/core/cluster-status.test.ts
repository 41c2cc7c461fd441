/**
 * clusterStatuses: the JSON `mesh.clusters()` and the admin endpoint serve, in
 * the spirit of Envoy's admin /clusters (per-host rq_active, outlier ejection,
 * circuit-breaker remaining counts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { retireCluster } from '../../src/core/cluster.js';
import { clusterStatuses } from '../../src/core/cluster-status.js';
import { compileSnapshot, emptySnapshot } from '../../src/core/snapshot.js';
import { assignment, edsCluster, endpoint, resources } from '../helpers/envoy-resources.js';

const snapshot = (outlier: boolean) => compileSnapshot(resources([], [
  edsCluster('outbound|80||a', {
    circuit_breakers: { thresholds: [{ max_connections: { value: 10 }, max_pending_requests: { value: 20 }, max_requests: { value: 30 }, max_retries: { value: 4 } }] },
    ...(outlier && { outlier_detection: { consecutive_5xx: { value: 1 }, max_ejection_percent: { value: 100 } } }),
  }),
], [assignment('outbound|80||a', [endpoint('10.0.0.1', 80, { labels: { version: 'v1' } }), endpoint('10.0.0.2', 80)])]), 'v1');

describe('clusterStatuses', () => {
  it('no clusters: an empty list', () => {
    assert.deepEqual(clusterStatuses(emptySnapshot), []);
  });

  it('one entry per cluster with its hosts, labels, in-flight requests and breaker counters', () => {
    const s = snapshot(false);
    s.clusters.get('outbound|80||a')!.hosts[1]!.active = 2;
    const [status, ...rest] = clusterStatuses(s);
    assert.equal(rest.length, 0);
    assert.equal(status!.name, 'outbound|80||a');
    assert.deepEqual(status!.hosts, [
      { address: '10.0.0.1:80', labels: { version: 'v1' }, activeRequests: 0, ejected: false, timesEjected: 0 },
      { address: '10.0.0.2:80', labels: {}, activeRequests: 2, ejected: false, timesEjected: 0 },
    ]);
    const cb = status!.circuitBreakers;
    assert.equal(cb.remaining_cx, 10);
    assert.equal(cb.remaining_pending, 20);
    assert.equal(cb.remaining_rq, 30);
    assert.equal(cb.remaining_retries, 4);
    assert.equal(cb.rq_open, 0);
  });

  it('an ejected host shows its reason, when it returns (ISO time) and how often it was ejected', () => {
    const s = snapshot(true);
    const cluster = s.clusters.get('outbound|80||a')!;
    const before = Date.now();
    cluster.outlier!.putHttpStatus('10.0.0.1:80', 503);
    const [status] = clusterStatuses(s);
    const [ejected, healthy] = status!.hosts;
    assert.equal(ejected!.ejected, true);
    assert.equal(ejected!.ejectionReason, 'CONSECUTIVE_5XX');
    assert.equal(ejected!.timesEjected, 1);
    const until = Date.parse(ejected!.ejectedUntil!);
    assert.match(ejected!.ejectedUntil!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(until >= before + 30_000, 'base_ejection_time 30 s (Envoy default) from now');
    assert.deepEqual(healthy, { address: '10.0.0.2:80', labels: {}, activeRequests: 0, ejected: false, timesEjected: 0 });
    assert.equal('ejectionReason' in healthy!, false, 'no ejection fields on a healthy host');
    retireCluster(cluster, undefined);
  });

  it('the output is plain data: editing it does not touch the live hosts', () => {
    const s = snapshot(false);
    const [status] = clusterStatuses(s);
    status!.hosts[0]!.labels.version = 'changed';
    assert.deepEqual(s.clusters.get('outbound|80||a')!.hosts[0]!.labels, { version: 'v1' });
    assert.doesNotThrow(() => JSON.stringify(clusterStatuses(s)));
  });
});
