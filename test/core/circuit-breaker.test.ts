import assert from 'node:assert/strict';
import test from 'node:test';
import { translateConnectionPool } from '../../src/config/translate-resilience.js';
import { CircuitBreaker, compileCircuitBreakers, DEFAULT_CIRCUIT_BREAKERS } from '../../src/core/circuit-breaker.js';

test('maxConnections 1 + http1MaxPendingRequests 1: of 10 concurrent calls 1 runs, 1 waits, 8 overflow at once', () => {
  const policy = compileCircuitBreakers(translateConnectionPool({ tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } }));
  assert.equal(policy.maxConnections, 1);
  assert.equal(policy.maxPendingRequests, 1);
  const cb = new CircuitBreaker(policy);
  const admitted = Array.from({ length: 10 }, () => cb.tryAdmitHttp1());
  assert.deepEqual(admitted.slice(0, 2), ['active', 'pending']);
  assert.equal(admitted.filter((a) => a === undefined).length, 8);
  assert.equal(cb.stats().upstream_rq_pending_overflow, 8);
  assert.equal(cb.stats().rq_pending_open, 1, 'pending breaker open');

  cb.releaseHttp1(); // the active one finished; the pending one took its connection
  assert.equal(cb.requests.count, 1);
  assert.equal(cb.pendingRequests.count, 0);
  assert.equal(cb.tryAdmitHttp1(), 'pending', 'room in the queue again');
  cb.releaseHttp1();
  cb.releaseHttp1();
  assert.equal(cb.requests.count + cb.pendingRequests.count, 0);
  assert.equal(cb.tryAdmitHttp1(), 'active');
});

test('http2MaxRequests caps active streams; overflow counts as Envoy does', () => {
  const cb = new CircuitBreaker(compileCircuitBreakers(translateConnectionPool({ http: { http2MaxRequests: 2 } })));
  assert.equal(cb.tryAcquireRequest(), true);
  assert.equal(cb.tryAcquireRequest(), true);
  assert.equal(cb.tryAcquireRequest(), false);
  cb.releaseRequest();
  assert.equal(cb.tryAcquireRequest(), true);
  assert.equal(cb.stats().remaining_rq, 0);
});

test('connections and retries are bounded and released', () => {
  const cb = new CircuitBreaker(compileCircuitBreakers(translateConnectionPool({ tcp: { maxConnections: 2 }, http: { maxRetries: 1 } })));
  assert.equal(cb.tryAcquireConnection(), true);
  assert.equal(cb.tryAcquireConnection(), true);
  assert.equal(cb.tryAcquireConnection(), false);
  assert.equal(cb.stats().upstream_cx_overflow, 1);
  cb.releaseConnection();
  assert.equal(cb.tryAcquireConnection(), true);
  assert.equal(cb.tryAcquireRetry(), true);
  assert.equal(cb.tryAcquireRetry(), false, 'max_retries 1: the cluster-wide retry budget is spent');
  assert.equal(cb.stats().upstream_rq_retry_overflow, 1);
  cb.releaseRetry();
  assert.equal(cb.tryAcquireRetry(), true);
});

test('Envoy defaults without thresholds; Istio defaults are unlimited', () => {
  assert.equal(compileCircuitBreakers({}), DEFAULT_CIRCUIT_BREAKERS);
  const cb = new CircuitBreaker();
  for (let i = 0; i < 3; i++) assert.equal(cb.tryAcquireRetry(), true);
  assert.equal(cb.tryAcquireRetry(), false, 'Envoy allows 3 concurrent retries by default');
  const istio = compileCircuitBreakers(translateConnectionPool(undefined));
  assert.equal(istio.maxRetries, 4_294_967_295);
  assert.equal(istio.maxConnections, 4_294_967_295);
  assert.equal(compileCircuitBreakers({ circuit_breakers: { thresholds: [{ priority: 'HIGH', max_connections: { value: 1 } }] } }), DEFAULT_CIRCUIT_BREAKERS, 'only DEFAULT priority applies');
});

test('retry budget: a share of outstanding requests, at least min_retry_concurrency', () => {
  const cb = new CircuitBreaker(compileCircuitBreakers({ circuit_breakers: { thresholds: [{ retry_budget: { budget_percent: { value: 25 }, min_retry_concurrency: { value: 1 } } } as never] } }));
  assert.equal(cb.retryLimit(), 1);
  for (let i = 0; i < 12; i++) cb.tryAcquireRequest();
  assert.equal(cb.retryLimit(), 3);
});
