/**
 * compileCluster: endpoints become Host objects reused across compiles, as
 * Envoy keeps a host (and its stats) while its address stays in the
 * ClusterLoadAssignment; lb_endpoints health and weights; policy reuse.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Cluster } from '../../src/config/envoy.js';
import { compileCluster, retireCluster, type CompiledCluster } from '../../src/core/cluster.js';
import { seededRandom } from '../../src/core/random.js';
import { assignment, edsCluster, endpoint } from '../helpers/envoy-resources.js';

const random = seededRandom(1);
const compile = (c: Cluster, eps: ReturnType<typeof endpoint>[], previous?: CompiledCluster) =>
  compileCluster(c, assignment(c.name, eps), previous, random);

describe('endpoints', () => {
  it('hosts are address:port with weight (default 1) and istio labels', () => {
    const c = compile(edsCluster('c'), [endpoint('10.0.0.1', 80, { labels: { version: 'v1' }, weight: 3 }), endpoint('10.0.0.2', 81)]);
    assert.deepEqual(c.hosts.map((h) => [h.id, h.address, h.port, h.weight, h.labels]), [
      ['10.0.0.1:80', '10.0.0.1', 80, 3, { version: 'v1' }],
      ['10.0.0.2:81', '10.0.0.2', 81, 1, {}],
    ]);
  });

  it('HEALTHY and UNKNOWN endpoints are used; UNHEALTHY and DRAINING are not (core.v3.HealthStatus)', () => {
    const c = compile(edsCluster('c'), ['HEALTHY', 'UNKNOWN', 'UNHEALTHY', 'DRAINING'].map((health, i) => endpoint(`10.0.0.${i + 1}`, 80, { health })));
    assert.deepEqual(c.hosts.map((h) => h.id), ['10.0.0.1:80', '10.0.0.2:80']);
  });

  it('a STATIC cluster reads its inline load_assignment', () => {
    const c = compileCluster({ name: 's', type: 'STATIC', load_assignment: assignment('s', [endpoint('127.0.0.1', 9000)]) }, undefined, undefined, random);
    assert.deepEqual(c.hosts.map((h) => h.id), ['127.0.0.1:9000']);
  });
});

describe('host reuse across compiles', () => {
  it('an unchanged endpoint keeps its Host object and live counters', () => {
    const v1 = compile(edsCluster('c'), [endpoint('10.0.0.1', 80, { labels: { v: '1' } })]);
    v1.hosts[0]!.active = 2;
    const v2 = compile(edsCluster('c'), [endpoint('10.0.0.1', 80, { labels: { v: '1' } }), endpoint('10.0.0.2', 80)], v1);
    assert.equal(v2.hosts[0], v1.hosts[0]);
    assert.equal(v2.hosts[1]!.active, 0, 'a new endpoint starts idle');
  });

  it('a changed weight or labels makes a new Host that carries the in-flight count', () => {
    const v1 = compile(edsCluster('c'), [endpoint('10.0.0.1', 80, { labels: { v: '1' } })]);
    v1.hosts[0]!.active = 4;
    const weight = compile(edsCluster('c'), [endpoint('10.0.0.1', 80, { labels: { v: '1' }, weight: 5 })], v1);
    assert.notEqual(weight.hosts[0], v1.hosts[0]);
    assert.equal(weight.hosts[0]!.weight, 5);
    assert.equal(weight.hosts[0]!.active, 4);
    const labels = compile(edsCluster('c'), [endpoint('10.0.0.1', 80, { labels: { v: '2' } })], v1);
    assert.notEqual(labels.hosts[0], v1.hosts[0]);
    assert.deepEqual(labels.hosts[0]!.labels, { v: '2' });
  });

  it('a removed endpoint is gone from the next compile', () => {
    const v1 = compile(edsCluster('c'), [endpoint('10.0.0.1', 80), endpoint('10.0.0.2', 80)]);
    const v2 = compile(edsCluster('c'), [endpoint('10.0.0.2', 80)], v1);
    assert.deepEqual(v2.hosts.map((h) => h.id), ['10.0.0.2:80']);
    assert.equal(v2.hosts[0], v1.hosts[1]);
  });
});

describe('cluster policies', () => {
  it('lb_policy ROUND_ROBIN by default, LEAST_REQUEST and RANDOM as given', () => {
    assert.equal(compile(edsCluster('c'), []).lbPolicy, 'ROUND_ROBIN');
    assert.equal(compile(edsCluster('c', { lb_policy: 'LEAST_REQUEST' }), []).lbPolicy, 'LEAST_REQUEST');
    assert.equal(compile(edsCluster('c', { lb_policy: 'RANDOM' }), []).lbPolicy, 'RANDOM');
  });

  it("connect_timeout defaults to Envoy's 5 s (cluster.proto); translation writes Istio's 10 s itself", () => {
    assert.equal(compile(edsCluster('c'), []).connectTimeoutMs, 5_000);
    assert.equal(compile(edsCluster('c', { connect_timeout: { seconds: 0, nanos: 250_000_000 } }), []).connectTimeoutMs, 250);
  });

  it('the circuit breaker (and its counters) is kept while circuit_breakers is unchanged', () => {
    const cb = { thresholds: [{ max_requests: { value: 5 } }] };
    const v1 = compile(edsCluster('c', { circuit_breakers: cb }), []);
    const v2 = compile(edsCluster('c', { circuit_breakers: cb }), [], v1);
    assert.equal(v2.breaker, v1.breaker);
    const v3 = compile(edsCluster('c', { circuit_breakers: { thresholds: [{ max_requests: { value: 6 } }] } }), [], v2);
    assert.notEqual(v3.breaker, v2.breaker);
    assert.equal(v3.breaker.policy.maxRequests, 6);
  });

  it('outlier detection: ejected hosts leave healthyHosts and pick; the detector follows the hosts across compiles', () => {
    const od = { outlier_detection: { consecutive_5xx: { value: 1 }, max_ejection_percent: { value: 100 } } };
    const v1 = compile(edsCluster('c', od), [endpoint('10.0.0.1', 80), endpoint('10.0.0.2', 80)]);
    v1.outlier!.putHttpStatus('10.0.0.1:80', 500);
    assert.deepEqual(v1.healthyHosts().map((h) => h.id), ['10.0.0.2:80']);
    for (let i = 0; i < 10; i++) assert.equal(v1.pick()!.id, '10.0.0.2:80');
    const v2 = compile(edsCluster('c', od), [endpoint('10.0.0.1', 80), endpoint('10.0.0.2', 80), endpoint('10.0.0.3', 80)], v1);
    assert.equal(v2.outlier, v1.outlier);
    assert.deepEqual(v2.healthyHosts().map((h) => h.id), ['10.0.0.2:80', '10.0.0.3:80']);
    retireCluster(v1, v2);
    assert.equal(v2.outlier!.isEjected('10.0.0.1:80'), true, 'retiring the old cluster keeps a detector the new one uses');
    retireCluster(v2, undefined);
  });

  it('no outlier_detection: every host is healthy', () => {
    const c = compile(edsCluster('c'), [endpoint('10.0.0.1', 80)]);
    assert.equal(c.outlier, undefined);
    assert.equal(c.healthyHosts(), c.hosts);
  });

  it('pick avoids the host of the previous attempt when another is healthy', () => {
    const c = compile(edsCluster('c'), [endpoint('10.0.0.1', 80), endpoint('10.0.0.2', 80)]);
    const first = c.hosts[0]!;
    for (let i = 0; i < 10; i++) assert.notEqual(c.pick(first), first);
    assert.equal(compile(edsCluster('c'), []).pick(), undefined);
  });
});
