/**
 * The router session's state machine over a fake transport (the one place a
 * fake is right: these tests are about the decisions, not the I/O). Every
 * table runs twice, with HTTP semantics and with gRPC semantics, since the
 * HTTP exchange and the gRPC call are both this session.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { Cluster, Route } from '../../src/config/envoy.js';
import { TYPE_URL } from '../../src/config/envoy.js';
import { compileCluster, type CompiledCluster } from '../../src/core/cluster.js';
import { Deadlines } from '../../src/core/deadlines.js';
import type { GlobalLimitPolicy } from '../../src/core/global-rate-limit.js';
import type { Host } from '../../src/core/load-balancer.js';
import type { MirrorPolicy } from '../../src/core/mirror.js';
import { seededRandom, type RandomSource } from '../../src/core/random.js';
import { backoffDelay } from '../../src/core/retry.js';
import { RouterAttempt } from '../../src/core/router-attempt.js';
import { RouterSession, Verdict, type GlobalLimitDecision, type RouterContext } from '../../src/core/router-session.js';
import { compileRoute, type CompiledRoute } from '../../src/core/route.js';
import type { CompiledVirtualHost, Snapshot } from '../../src/core/snapshot.js';
import { RateLimitOutcome } from '../../src/core/token-bucket.js';
import type { ResponseFlag } from '../../src/errors.js';

interface Reply { flag: ResponseFlag | undefined; status: number; grpcStatus: number; message: string; headers: Record<string, string> | undefined }

/** A transport that records what the session asks of it. */
class FakeSession extends RouterSession {
  readonly attempts: RouterAttempt[] = [];
  readonly cancelled: RouterAttempt[] = [];
  readonly mirrored: string[] = [];
  reply: Reply | undefined;
  downstreamError: Error | undefined;
  endedWith: Error | undefined | 'not yet' = 'not yet';
  connectError: Error | undefined;

  constructor(router: RouterContext, snapshot: Snapshot, grpc: boolean, vhost: CompiledVirtualHost, route: CompiledRoute, private readonly headers: Record<string, string> = {}) {
    super(router, snapshot, !grpc, grpc);
    this.selectRoute(vhost, route);
  }
  begin(): this {
    this.run();
    return this;
  }
  requestHeader(name: string): string | undefined {
    return this.headers[name];
  }
  createAttempt(host: Host): RouterAttempt | Error {
    return this.connectError ?? new RouterAttempt(this, host);
  }
  sendAttempt(attempt: RouterAttempt): void {
    this.attempts.push(attempt);
  }
  cancelAttempt(attempt: RouterAttempt): void {
    this.cancelled.push(attempt);
  }
  sendLocalReply(flag: ResponseFlag | undefined, status: number, grpcStatus: number, message: string, headers: Record<string, string> | undefined): void {
    this.reply = { flag, status, grpcStatus, message, headers };
  }
  failDownstream(error: Error): void {
    this.downstreamError = error;
  }
  mirror(policy: MirrorPolicy): void {
    this.mirrored.push(policy.cluster);
  }
  ended(error: Error | undefined): void {
    this.endedWith = error;
  }
  get last(): RouterAttempt {
    return this.attempts.at(-1)!;
  }
  /** A try answered with headers (HTTP) or a final status (gRPC, trailers-only). */
  respond(status: number, grpcStatus?: number): Verdict {
    const a = this.last;
    const verdict = this.attemptResponse(a, status, grpcStatus);
    if (verdict !== Verdict.DROP) this.attemptEnd(a);
    return verdict;
  }
}

/** Outlier detection calls, recorded. */
function recorder(): { calls: string[]; putHttpStatus(id: string, s: number): void; putLocalOrigin(id: string, kind: string): void; healthyHosts<T>(h: T[]): T[] } {
  const calls: string[] = [];
  return {
    calls,
    putHttpStatus: (id, s) => calls.push(`${id} ${s}`),
    putLocalOrigin: (id, kind) => calls.push(`${id} ${kind}`),
    healthyHosts: (h) => h,
  };
}

interface World {
  router: RouterContext;
  snapshot: Snapshot;
  cluster: CompiledCluster;
  outlier: ReturnType<typeof recorder>;
  vhost: CompiledVirtualHost;
  globalAnswers: GlobalLimitDecision[];
}

function world(opts: { hosts?: number; random?: RandomSource; cluster?: Partial<Cluster>; vhost?: Partial<CompiledVirtualHost> } = {}): World {
  const random = opts.random ?? seededRandom(7);
  const endpoints = Array.from({ length: opts.hosts ?? 3 }, (_, i) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 9000 + i } } } }));
  const real = compileCluster({ name: 'outbound|80||svc.default.svc.cluster.local', ...opts.cluster } as Cluster, { cluster_name: 'c', endpoints: [{ lb_endpoints: endpoints }] } as never, undefined, random);
  const outlier = recorder();
  const cluster = Object.assign(Object.create(real) as CompiledCluster, { outlier });
  const globalAnswers: GlobalLimitDecision[] = [];
  const router: RouterContext = {
    random,
    deadlines: new Deadlines(() => Date.now()),
    tracer: undefined,
    overGlobalLimit: async () => globalAnswers.shift() ?? { overLimit: false },
  };
  const snapshot = { clusters: new Map([[cluster.name, cluster]]) } as unknown as Snapshot;
  const vhost = { name: 'svc', routes: [], routeConfig: '80', localLimiter: undefined, globalLimit: undefined, ...opts.vhost } as CompiledVirtualHost;
  return { router, snapshot, cluster, outlier, vhost, globalAnswers };
}

function route(action: Record<string, unknown> = {}, extra: Partial<Route> = {}): CompiledRoute {
  return compileRoute({ name: 'r', match: { prefix: '/' }, route: { cluster: 'outbound|80||svc.default.svc.cluster.local', ...action }, ...extra } as Route, 0);
}

const retryOn = (on: string, extra: Record<string, unknown> = {}) => route({ retry_policy: { retry_on: on, num_retries: { value: 2 }, retry_back_off: { base_interval: { nanos: 0 } }, ...extra } });
const fault = (f: Record<string, unknown>) => ({ typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': TYPE_URL.fault, ...f } } }) as Partial<Route>;
const ALL = { numerator: 100, denominator: 'HUNDRED' };

function timers(t: TestContext): void {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
}

for (const grpc of [false, true]) {
  const kind = grpc ? 'gRPC semantics' : 'HTTP semantics';
  const ok = (s: FakeSession) => (grpc ? s.respond(200, 0) : s.respond(200));
  const fail503 = (s: FakeSession) => (grpc ? s.respond(200, 14) : s.respond(503));

  describe(`router session, ${kind}: local replies`, () => {
    it('FI: a 100% abort answers with its status and never sends', () => {
      const w = world();
      const s = new FakeSession(w.router, w.snapshot, grpc, w.vhost, route({}, fault({ abort: { http_status: 503, percentage: ALL } }))).begin();
      assert.deepEqual([s.reply?.flag, s.reply?.status, s.reply?.grpcStatus, s.attempts.length], ['FI', 503, 14, 0]);
    });

    it('FI with grpc_status: only a gRPC caller is aborted', () => {
      const w = world();
      const s = new FakeSession(w.router, w.snapshot, grpc, w.vhost, route({}, fault({ abort: { grpc_status: 8, percentage: ALL } }))).begin();
      if (grpc) assert.deepEqual([s.reply?.flag, s.reply?.status, s.reply?.grpcStatus], ['FI', 200, 8]);
      else assert.equal(s.attempts.length, 1);
    });

    it('DI: the delay runs on the deadline queue, then the request goes with flag DI', (t) => {
      timers(t);
      const w = world();
      const s = new FakeSession(w.router, w.snapshot, grpc, w.vhost, route({}, fault({ delay: { fixed_delay: { nanos: 200_000_000 }, percentage: ALL } }))).begin();
      assert.equal(s.attempts.length, 0);
      t.mock.timers.tick(199);
      assert.equal(s.attempts.length, 0);
      t.mock.timers.tick(2);
      assert.equal(s.attempts.length, 1);
      assert.equal(ok(s), Verdict.COMMIT);
      assert.equal(s.flags, 'DI');
    });

    it('UH: no healthy endpoint', () => {
      const w = world({ hosts: 0 });
      const s = new FakeSession(w.router, w.snapshot, grpc, w.vhost, route()).begin();
      assert.deepEqual([s.reply?.flag, s.reply?.status, s.reply?.grpcStatus], ['UH', 503, 14]);
    });

    it('NC: the route names a cluster the snapshot does not have', () => {
      const w = world();
      const s = new FakeSession(w.router, w.snapshot, grpc, w.vhost, compileRoute({ match: { prefix: '/' }, route: { cluster: 'gone' } } as Route, 0)).begin();
      assert.deepEqual([s.reply?.flag, s.reply?.status], ['NC', 503]);
    });

    it('UO: past max_requests (gRPC) / past max_connections and an empty pending queue (HTTP/1.1)', () => {
      const w = world({ cluster: { circuit_breakers: { thresholds: [{ max_requests: { value: 1 }, max_connections: { value: 1 }, max_pending_requests: { value: 1 } }] } } as Partial<Cluster> });
      const first = new FakeSession(w.router, w.snapshot, grpc, w.vhost, route()).begin();
      const second = new FakeSession(w.router, w.snapshot, grpc, w.vhost, route()).begin();
      const third = new FakeSession(w.router, w.snapshot, grpc, w.vhost, route()).begin();
      assert.equal(first.attempts.length, 1);
      if (grpc) {
        assert.equal(second.reply?.flag, 'UO');
      } else {
        // HTTP/1.1: the second waits in the pending queue and goes when the first ends.
        assert.deepEqual([second.attempts.length, second.reply, third.reply?.flag], [0, undefined, 'UO']);
        ok(first);
        assert.equal(second.attempts.length, 1);
      }
    });

    it('RL (local): the token bucket refuses, with its status and x-ratelimit headers', () => {
      const limiter = { check: () => RateLimitOutcome.Limited, policy: { status: 429 }, xRateLimitHeaders: () => ({ 'x-ratelimit-limit': '1' }) };
      const w = world({ vhost: { localLimiter: limiter as never } });
      const s = new FakeSession(w.router, w.snapshot, grpc, w.vhost, route()).begin();
      assert.deepEqual([s.reply?.flag, s.reply?.status, s.reply?.grpcStatus, s.reply?.headers?.['x-ratelimit-limit']], ['RL', 429, 14, '1']);
    });

    it('RL (global): the injected check says over limit; under limit the request goes', async () => {
      const policy: GlobalLimitPolicy = { domain: 'd', failureModeDeny: false, timeoutMs: 20, statusOnError: 500, cluster: 'rls', stage: 0, rateLimits: [[{ kind: 'header', header: 'user', key: 'user', skipIfAbsent: false }]] };
      const w = world({ vhost: { globalLimit: policy } });
      w.globalAnswers.push({ overLimit: true, headers: { 'x-ratelimit-remaining': '0' } }, { overLimit: false });
      const limited = new FakeSession(w.router, w.snapshot, grpc, w.vhost, route(), { user: 'ann' }).begin();
      const allowed = new FakeSession(w.router, w.snapshot, grpc, w.vhost, route(), { user: 'bob' }).begin();
      const noDescriptor = new FakeSession(w.router, w.snapshot, grpc, w.vhost, route()).begin();
      assert.equal(noDescriptor.attempts.length, 1, 'no descriptor: no ask, sent at once');
      await new Promise((r) => setImmediate(r));
      assert.deepEqual([limited.reply?.flag, limited.reply?.status, limited.reply?.headers?.['x-envoy-ratelimited'], limited.reply?.headers?.['x-ratelimit-remaining']], ['RL', 429, 'true', '0']);
      assert.equal(allowed.attempts.length, 1);
    });

    it('UT: the route timeout covers every try and the back-off between them', (t) => {
      timers(t);
      const w = world();
      const r = route({ timeout: { nanos: 300_000_000 }, retry_policy: { retry_on: '5xx,internal', num_retries: { value: 5 }, retry_back_off: { base_interval: { nanos: 100_000_000 } } } });
      const s = new FakeSession(w.router, w.snapshot, grpc, w.vhost, r).begin();
      for (let i = 0; i < 20 && s.reply === undefined; i++) {
        if (s.attempt !== undefined) grpc ? s.respond(200, 13) : s.respond(500);
        t.mock.timers.tick(50);
      }
      assert.deepEqual([s.reply?.flag, s.reply?.status, s.reply?.grpcStatus], ['UT', 504, 4]);
      assert.ok(s.attempts.length >= 2, `${s.attempts.length} tries`);
      assert.equal(Date.now() - 1_000_000 >= 300, true);
    });

    it('UT after the response started: the downstream is failed with MESH_TIMEOUT', (t) => {
      timers(t);
      const w = world();
      const s = new FakeSession(w.router, w.snapshot, grpc, w.vhost, route({ timeout: { nanos: 100_000_000 } })).begin();
      assert.equal(s.attemptResponse(s.last, 200, grpc ? undefined : undefined), Verdict.COMMIT);
      t.mock.timers.tick(101);
      assert.equal((s.downstreamError as { code?: string }).code, 'MESH_TIMEOUT');
      assert.equal(s.flags, 'UT');
      assert.deepEqual(s.cancelled, [s.attempts[0]]);
      assert.ok(w.outlier.calls.includes('127.0.0.1:9000 timeout'));
    });

    it('UF, then URX once retried, on connect failures; UC on a reset', () => {
      const w = world();
      const single = new FakeSession(w.router, w.snapshot, grpc, w.vhost, route()).begin();
      single.attemptFailed(single.last, 'connect-failure', Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }));
      assert.deepEqual([single.reply?.flag, single.reply?.status], ['UF', 503]);
      assert.match(single.reply!.message, /connection failure \(ECONNREFUSED\)/);
      const retried = new FakeSession(w.router, w.snapshot, grpc, w.vhost, retryOn('connect-failure')).begin();
      for (let i = 0; i < 3; i++) retried.attemptFailed(retried.last, 'connect-failure', undefined);
      assert.deepEqual([retried.attempts.length, retried.reply?.flag], [3, 'URX']);
      const reset = new FakeSession(w.router, w.snapshot, grpc, w.vhost, route()).begin();
      reset.attemptFailed(reset.last, 'reset', undefined);
      assert.equal(reset.reply?.flag, 'UC');
    });

    it('UF without a try: the transport cannot make a connection (credentials); NC when the mesh closed', () => {
      const w = world();
      const s = new FakeSession(w.router, w.snapshot, grpc, w.vhost, route());
      s.connectError = new Error('bad TLS settings');
      s.begin();
      assert.deepEqual([s.reply?.flag, s.reply?.message], ['UF', 'upstream connect error: bad TLS settings']);
      const closed = new FakeSession(w.router, w.snapshot, grpc, w.vhost, route());
      closed.connectError = Object.assign(new Error('the mesh is closed'), { code: 'MESH_CLOSED' });
      closed.begin();
      assert.equal(closed.reply?.flag, 'NC');
    });

    it('DC: the caller cancels; the try is cancelled and the session ends once', () => {
      const w = world();
      const s = new FakeSession(w.router, w.snapshot, grpc, w.vhost, route()).begin();
      const err = new Error('caller went away');
      assert.equal(s.cancel(err), true);
      assert.equal(s.cancel(err), false);
      assert.deepEqual([s.flags, s.endedWith, s.cancelled.length], ['DC', err, 1]);
      // What the cancelled try reports later is ignored.
      assert.equal(s.attemptResponse(s.attempts[0]!, 200, undefined), Verdict.DROP);
      assert.equal(s.last.host.active, 1, 'its host slot is held until the transport reports its end');
      s.attemptEnd(s.last);
      assert.equal(s.last.host.active, 0);
    });
  });

  describe(`router session, ${kind}: retries`, () => {
    const cases: Array<[string, string, (s: FakeSession) => Verdict | void, boolean]> = [
      ['5xx', '5xx', (s) => (grpc ? s.respond(503) : s.respond(503)), true],
      ['5xx does not retry a 4xx', '5xx', (s) => s.respond(404), false],
      ['gateway-error retries a 502', 'gateway-error', (s) => s.respond(502), true],
      ['gateway-error does not retry a 500', 'gateway-error', (s) => s.respond(500), false],
      ['retriable-status-codes', 'retriable-status-codes', (s) => s.respond(409), true],
      ['connect-failure', 'connect-failure', (s) => s.attemptFailed(s.last, 'connect-failure', undefined), true],
      ['reset', 'reset', (s) => s.attemptFailed(s.last, 'reset', undefined), true],
      ['connect-failure does not retry a reset', 'connect-failure', (s) => s.attemptFailed(s.last, 'reset', undefined), false],
      ['unavailable (gRPC code)', 'unavailable', (s) => s.respond(200, 14), true],
      ['resource-exhausted (gRPC code)', 'resource-exhausted', (s) => s.respond(200, 8), true],
      ['unavailable does not retry INTERNAL', 'unavailable', (s) => s.respond(200, 13), false],
    ];
    for (const [name, on, outcome, retries] of cases) {
      it(`${name}: ${retries ? 'retried' : 'not retried'}`, () => {
        const w = world();
        const s = new FakeSession(w.router, w.snapshot, grpc, w.vhost, retryOn(on, { retriable_status_codes: [409] })).begin();
        outcome(s);
        assert.equal(s.attempts.length, retries ? 2 : 1);
      });
    }

    it('stops after num_retries and commits the last answer', () => {
      const w = world();
      const s = new FakeSession(w.router, w.snapshot, grpc, w.vhost, retryOn('5xx,unavailable')).begin();
      assert.equal(fail503(s), Verdict.RETRY);
      assert.equal(fail503(s), Verdict.RETRY);
      assert.equal(fail503(s), Verdict.COMMIT);
      assert.equal(s.attempts.length, 3);
      assert.equal(s.endedWith, undefined);
    });

    it('an unreplayable request is not retried', () => {
      const w = world();
      const s = new FakeSession(w.router, w.snapshot, grpc, w.vhost, retryOn('5xx,unavailable')).begin();
      s.replayable = false;
      assert.equal(fail503(s), Verdict.COMMIT);
    });

    it('the retry budget (max_retries) is shared by the cluster: exhausted, the request is not retried', () => {
      const w = world({ cluster: { circuit_breakers: { thresholds: [{ max_retries: { value: 1 } }] } } as Partial<Cluster> });
      const a = new FakeSession(w.router, w.snapshot, grpc, w.vhost, retryOn('5xx,unavailable')).begin();
      const b = new FakeSession(w.router, w.snapshot, grpc, w.vhost, retryOn('5xx,unavailable')).begin();
      assert.equal(fail503(a), Verdict.RETRY);
      assert.equal(fail503(b), Verdict.COMMIT, 'b finds the budget taken by a');
      assert.equal(w.cluster.breaker.stats().upstream_rq_retry_overflow, 1);
      ok(a);
      const c = new FakeSession(w.router, w.snapshot, grpc, w.vhost, retryOn('5xx,unavailable')).begin();
      assert.equal(fail503(c), Verdict.RETRY, 'a gave its slot back when it ended');
    });

    it('per-try timeout: the try is cancelled and retried on another host, then UT', (t) => {
      timers(t);
      const w = world();
      const s = new FakeSession(w.router, w.snapshot, grpc, w.vhost, retryOn(grpc ? 'deadline-exceeded' : 'reset', { per_try_timeout: { nanos: 100_000_000 }, num_retries: { value: 1 } })).begin();
      t.mock.timers.tick(101);
      assert.deepEqual([s.attempts.length, s.cancelled[0], s.attempts[0]!.timedOut], [2, s.attempts[0], true]);
      t.mock.timers.tick(101);
      assert.deepEqual([s.reply?.flag, s.reply?.status, s.reply?.grpcStatus], ['UT', 504, 4]);
      assert.deepEqual(w.outlier.calls.map((c) => c.split(' ')[1]), ['timeout', 'timeout']);
    });

    it('a committed try outlives its per-try timeout', (t) => {
      timers(t);
      const w = world();
      const s = new FakeSession(w.router, w.snapshot, grpc, w.vhost, retryOn('5xx', { per_try_timeout: { nanos: 100_000_000 } })).begin();
      assert.equal(s.attemptResponse(s.last, 200, undefined), Verdict.COMMIT);
      t.mock.timers.tick(500);
      assert.deepEqual([s.cancelled.length, s.reply], [0, undefined]);
    });

    it('back-off: the next try waits the jittered delay drawn from the seeded source', (t) => {
      timers(t);
      const w = world({ random: seededRandom(42) });
      const r = route({ retry_policy: { retry_on: '5xx,unavailable', num_retries: { value: 3 }, retry_back_off: { base_interval: { nanos: 100_000_000 } } } });
      const s = new FakeSession(w.router, w.snapshot, grpc, w.vhost, r).begin();
      // The same draws the session will make: one for the cluster pick (none for a single cluster), then the jitter.
      const replay = seededRandom(42);
      const expected = backoffDelay(r.retry!, 1, replay);
      fail503(s);
      if (expected > 0) {
        assert.equal(s.attempts.length, 1);
        t.mock.timers.tick(expected - 1);
        assert.equal(s.attempts.length, 1);
      }
      t.mock.timers.tick(1);
      assert.equal(s.attempts.length, 2);
    });

    it('previous_hosts: a retry avoids the host that failed', () => {
      const w = world();
      const s = new FakeSession(w.router, w.snapshot, grpc, w.vhost, retryOn('5xx,unavailable', { retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts' }] })).begin();
      for (let i = 0; i < 2; i++) {
        const failed = s.last.host;
        fail503(s);
        assert.notEqual(s.last.host, failed);
      }
    });

    it('outlier detection hears every try: statuses (gRPC: Envoy\'s HTTP mapping) and local-origin failures', () => {
      const w = world({ hosts: 1 });
      const s = new FakeSession(w.router, w.snapshot, grpc, w.vhost, retryOn('5xx,unavailable,connect-failure')).begin();
      s.attemptFailed(s.last, 'connect-failure', undefined);
      fail503(s);
      ok(s);
      assert.deepEqual(w.outlier.calls, ['127.0.0.1:9000 connect_failed', '127.0.0.1:9000 503', '127.0.0.1:9000 200']);
    });

    it('mirrors go out once, before the first try, through the injected callback', () => {
      const w = world();
      const r = route({ request_mirror_policies: [{ cluster: 'shadow' }] });
      const s = new FakeSession(w.router, w.snapshot, grpc, w.vhost, r).begin();
      fail503(s);
      assert.deepEqual(s.mirrored, ['shadow']);
    });
  });
}

describe('router session: gRPC specifics', () => {
  it('a response committed by its first message reports its final status to outlier detection once', () => {
    const w = world({ hosts: 1 });
    const s = new FakeSession(w.router, w.snapshot, true, w.vhost, retryOn('unavailable')).begin();
    assert.equal(s.commitAttempt(s.last), true);
    assert.equal(s.attemptEnd(s.last, 14), true, 'after commit, no retry: the status goes to the caller');
    assert.deepEqual(w.outlier.calls, ['127.0.0.1:9000 503']);
  });

  it('a per-try timeout is retried under deadline-exceeded', (t) => {
    timers(t);
    const w = world();
    const s = new FakeSession(w.router, w.snapshot, true, w.vhost, retryOn('deadline-exceeded', { per_try_timeout: { nanos: 50_000_000 } })).begin();
    t.mock.timers.tick(51);
    assert.equal(s.attempts.length, 2);
  });
});
