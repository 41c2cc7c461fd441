import assert from 'node:assert/strict';
import test from 'node:test';
import { translateConnectionPool } from '../../src/config/translate-resilience.js';
import { CircuitBreaker, compileCircuitBreakers, DEFAULT_CIRCUIT_BREAKERS } from '../../src/core/circuit-breaker.js';

/** A request as the breaker sees it; records when it was let through. */
function request(log: string[], name: string) {
  return { queued: false, onAdmitted: () => void log.push(name) };
}

test('maxConnections 1 + http1MaxPendingRequests 1: of 10 concurrent calls 1 runs, 1 waits, 8 overflow at once', () => {
  const policy = compileCircuitBreakers(translateConnectionPool({ tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } }));
  assert.equal(policy.maxConnections, 1);
  assert.equal(policy.maxPendingRequests, 1);
  const cb = new CircuitBreaker(policy);
  const log: string[] = [];
  const requests = Array.from({ length: 10 }, (_, i) => request(log, `r${i}`));
  const admitted = requests.map((r) => cb.admitHttp1(r));
  assert.deepEqual(admitted.slice(0, 2), ['active', 'pending']);
  assert.equal(admitted.filter((a) => a === undefined).length, 8);
  assert.equal(cb.stats().upstream_rq_pending_overflow, 8);
  assert.equal(cb.stats().rq_pending_open, 1, 'pending breaker open');
  assert.deepEqual(log, [], 'the pending one waits');

  cb.releaseHttp1(requests[0]!); // the active one finished; the pending one takes its connection
  assert.deepEqual(log, ['r1']);
  assert.equal(cb.requests.count, 1);
  assert.equal(cb.pendingRequests.count, 0);
  const late = request(log, 'late');
  assert.equal(cb.admitHttp1(late), 'pending', 'room in the queue again');
  cb.releaseHttp1(requests[1]!);
  assert.deepEqual(log, ['r1', 'late']);
  cb.releaseHttp1(late);
  assert.equal(cb.requests.count + cb.pendingRequests.count, 0);
  assert.equal(cb.admitHttp1(request(log, 'x')), 'active');
});

test('the pending queue is FIFO, a cancelled request leaves it, and nobody jumps it', () => {
  const cb = new CircuitBreaker(compileCircuitBreakers(translateConnectionPool({ tcp: { maxConnections: 2 }, http: { http1MaxPendingRequests: 100 } })));
  const log: string[] = [];
  const rs = Array.from({ length: 6 }, (_, i) => request(log, `r${i}`));
  assert.deepEqual(rs.map((r) => cb.admitHttp1(r)), ['active', 'active', 'pending', 'pending', 'pending', 'pending']);
  cb.releaseHttp1(rs[3]!); // r3 gave up while waiting (a route timeout): it leaves the queue, no slot moves
  assert.equal(cb.pendingRequests.count, 3);
  assert.deepEqual(log, []);
  cb.releaseHttp1(rs[0]!);
  cb.releaseHttp1(rs[1]!);
  assert.deepEqual(log, ['r2', 'r4'], 'oldest first, r3 skipped');
  // a newcomer queues behind r5 even though r2 and r4 are the only active ones
  const newcomer = request(log, 'new');
  assert.equal(cb.admitHttp1(newcomer), 'pending');
  cb.releaseHttp1(rs[2]!);
  assert.deepEqual(log, ['r2', 'r4', 'r5']);
  cb.releaseHttp1(rs[4]!);
  assert.deepEqual(log, ['r2', 'r4', 'r5', 'new']);
  cb.releaseHttp1(rs[5]!);
  cb.releaseHttp1(newcomer);
  assert.equal(cb.requests.count + cb.pendingRequests.count, 0);
});

test('many cancelled waiters do not grow the queue without bound', () => {
  const cb = new CircuitBreaker(compileCircuitBreakers(translateConnectionPool({ tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 10 } })));
  const log: string[] = [];
  const holder = request(log, 'holder');
  cb.admitHttp1(holder);
  for (let i = 0; i < 10_000; i++) {
    const r = request(log, `r${i}`);
    assert.equal(cb.admitHttp1(r), 'pending');
    cb.releaseHttp1(r);
  }
  const queued = (cb as unknown as { queue: unknown[]; queueHead: number });
  assert.ok(queued.queue.length - queued.queueHead < 100, `queue holds ${queued.queue.length - queued.queueHead} entries`);
  cb.releaseHttp1(holder);
  assert.deepEqual(log, []);
  assert.equal(cb.requests.count + cb.pendingRequests.count, 0);
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
