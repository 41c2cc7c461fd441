import assert from 'node:assert/strict';
import test from 'node:test';
import type { Cluster } from '../../src/config/envoy.js';
import { translateOutlierDetection } from '../../src/config/translate-resilience.js';
import { compileOutlierDetection, compilePanicThreshold, inPanic, OutlierDetector, type OutlierDetectionPolicy } from '../../src/core/outlier-detection.js';
import type { OutlierDetectionSettings } from '../../src/config/istio-types.js';
import { MeshConfigError } from '../../src/errors.js';

const CAT = '10.0.0.1:8000';
const DOG = '10.0.0.2:8000';

/** The seed's circuit-breaker DestinationRule, through translation and compilation. */
function fromIstio(od: OutlierDetectionSettings): { policy: OutlierDetectionPolicy; panic: number } {
  const fields = translateOutlierDetection(od);
  const cluster: Cluster = { name: 'outbound|8000||calculate', ...fields };
  return { policy: compileOutlierDetection(cluster)!, panic: compilePanicThreshold(cluster) };
}

function detector(od: OutlierDetectionSettings, hosts: string[], clock: { now: number }): OutlierDetector {
  const { policy, panic } = fromIstio(od);
  return new OutlierDetector({ policy, hosts, panicThreshold: panic, now: () => clock.now, timer: false, random: () => 0.5 });
}

const seed: OutlierDetectionSettings = { consecutive5xxErrors: 3, interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: 100 };

test('the seed scenario: exactly 3 consecutive timeouts eject cat; it returns on the first sweep after 30 s', () => {
  const clock = { now: 1_000_000 };
  const d = detector(seed, [CAT, DOG], clock);
  const hosts = [CAT, DOG];
  d.putLocalOrigin(CAT, 'timeout');
  d.putLocalOrigin(CAT, 'timeout');
  assert.equal(d.isEjected(CAT), false, 'two failures are not enough');
  assert.deepEqual(d.healthyHosts(hosts), hosts);
  d.putLocalOrigin(CAT, 'timeout');
  assert.equal(d.isEjected(CAT), true, 'the third ejects');
  assert.deepEqual(d.healthyHosts(hosts), [DOG], 'only dogs');
  assert.equal(d.healthyHosts(hosts), d.healthyHosts(hosts), 'cached: no allocation per request');

  const row = d.state().hosts.find((h) => h.host === CAT)!;
  assert.equal(row.reason, 'CONSECUTIVE_5XX');
  assert.equal(row.ejectedAtMs, 1_000_000);
  assert.equal(row.ejectedUntilMs, 1_030_000);
  assert.equal(row.timesEjected, 1);

  clock.now += 20_000;
  d.sweep();
  assert.equal(d.isEjected(CAT), true, 'not before the ejection time');
  clock.now += 10_000;
  d.sweep();
  assert.equal(d.isEjected(CAT), false, 'back on the sweep after 30 s');
  assert.deepEqual(d.healthyHosts(hosts), hosts);
  assert.equal(d.state().hosts.find((h) => h.host === CAT)!.consecutive5xx, 0, 'counters restart on return');
});

test('ejection time grows with the number of times ejected and shrinks while healthy', () => {
  const clock = { now: 0 };
  const d = detector(seed, [CAT, DOG], clock);
  const fail3 = () => { for (let i = 0; i < 3; i++) d.putHttpStatus(CAT, 500); };
  fail3();
  clock.now = 30_000;
  d.sweep();
  assert.equal(d.isEjected(CAT), false);
  fail3();
  assert.equal(d.state().hosts.find((h) => h.host === CAT)!.ejectedUntilMs, 30_000 + 60_000, 'second ejection: 2 × 30 s');
  clock.now = 30_000 + 59_999;
  d.sweep();
  assert.equal(d.isEjected(CAT), true);
  clock.now = 30_000 + 60_000;
  d.sweep();
  assert.equal(d.isEjected(CAT), false);
  // Three healthy sweeps, each a full interval after the return, bring the multiplier from 2 to 0.
  for (let i = 1; i <= 3; i++) {
    clock.now += 10_000;
    d.sweep();
  }
  fail3();
  const row = d.state().hosts.find((h) => h.host === CAT)!;
  assert.equal(row.ejectedUntilMs! - row.ejectedAtMs!, 30_000, 'back to the base ejection time');
  assert.equal(row.timesEjected, 3);
});

test('ejection time is capped by max_ejection_time (default max(300 s, base))', () => {
  const clock = { now: 0 };
  const d = detector({ ...seed, baseEjectionTime: '100s' }, [CAT, DOG], clock);
  const durations: number[] = [];
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 3; i++) d.putHttpStatus(CAT, 503);
    const row = d.state().hosts.find((h) => h.host === CAT)!;
    durations.push(row.ejectedUntilMs! - row.ejectedAtMs!);
    clock.now = row.ejectedUntilMs!;
    d.sweep();
  }
  assert.deepEqual(durations, [100_000, 200_000, 300_000, 300_000, 300_000]);
});

test('a success resets the consecutive counter; 4xx counts as success', () => {
  const clock = { now: 0 };
  const d = detector(seed, [CAT, DOG], clock);
  d.putHttpStatus(CAT, 500);
  d.putHttpStatus(CAT, 500);
  d.putHttpStatus(CAT, 404);
  d.putHttpStatus(CAT, 500);
  d.putHttpStatus(CAT, 500);
  assert.equal(d.isEjected(CAT), false);
  d.putHttpStatus(CAT, 500);
  assert.equal(d.isEjected(CAT), true);
});

test('max_ejection_percent: Envoy default 10% never ejects one host of two; always_eject_one_host does', () => {
  const clock = { now: 0 };
  const d = detector({ consecutive5xxErrors: 3 }, [CAT, DOG], clock);
  for (let i = 0; i < 3; i++) d.putHttpStatus(CAT, 500);
  assert.equal(d.isEjected(CAT), false);
  assert.equal(d.state().ejectionsOverflow, 1);

  const cluster: Cluster = { name: 'c', outlier_detection: { consecutive_5xx: { value: 3 }, always_eject_one_host: { value: true } } as Cluster['outlier_detection'] };
  const d2 = new OutlierDetector({ policy: compileOutlierDetection(cluster)!, hosts: [CAT, DOG], timer: false, now: () => 0 });
  for (let i = 0; i < 3; i++) d2.putHttpStatus(CAT, 500);
  for (let i = 0; i < 3; i++) d2.putHttpStatus(DOG, 500);
  assert.equal(d2.isEjected(CAT), true, 'the first host is always ejectable');
  assert.equal(d2.isEjected(DOG), false, 'the second is over 10%');
});

test('max_ejection_percent 50 of 4 hosts: two ejections, the third overflows', () => {
  const hosts = ['a:1', 'b:1', 'c:1', 'd:1'];
  const d = detector({ consecutive5xxErrors: 1, maxEjectionPercent: 50 }, hosts, { now: 0 });
  for (const h of hosts.slice(0, 3)) d.putHttpStatus(h, 502);
  assert.deepEqual(hosts.map((h) => d.isEjected(h)), [true, true, false, false]);
  assert.equal(d.state().ejectionsOverflow, 1);
  assert.equal(d.state().ejectionsActive, 2);
});

test('panic threshold: below it the balancer uses every host; Istio minHealthPercent 0 disables it', () => {
  const hosts = ['a:1', 'b:1', 'c:1'];
  const panicking = detector({ consecutive5xxErrors: 1, maxEjectionPercent: 100, minHealthPercent: 50 }, hosts, { now: 0 });
  panicking.putHttpStatus('a:1', 500);
  assert.deepEqual(panicking.healthyHosts(hosts), ['b:1', 'c:1'], '67% healthy: no panic');
  panicking.putHttpStatus('b:1', 500);
  assert.deepEqual(panicking.healthyHosts(hosts), hosts, '33% < 50%: panic, all hosts');

  const strict = detector({ consecutive5xxErrors: 1, maxEjectionPercent: 100 }, hosts, { now: 0 });
  for (const h of hosts) strict.putHttpStatus(h, 500);
  assert.deepEqual(strict.healthyHosts(hosts), [], 'all ejected and no panic: no healthy upstream (UH)');

  assert.equal(compilePanicThreshold({}), 50, 'Envoy default');
  assert.equal(inPanic(3, 4, 80), false, '75% × 1.4 ≥ 100%: never panics');
  assert.equal(inPanic(2, 4, 80), true);
  assert.equal(inPanic(0, 2, 0), false);
});

test('healthyHosts works on endpoint objects through an id function', () => {
  const eps = [{ id: CAT, name: 'cat' }, { id: DOG, name: 'dog' }];
  const d = detector({ consecutive5xxErrors: 1, maxEjectionPercent: 100 }, [CAT, DOG], { now: 0 });
  d.putHttpStatus(CAT, 500);
  assert.deepEqual(d.healthyHosts(eps, (e) => e.id).map((e) => e.name), ['dog']);
});

test('gateway failures: enforced only when configured (Envoy default 0%); a plain 500 resets the gateway counter', () => {
  const clock = { now: 0 };
  const noGateway = new OutlierDetector({
    policy: compileOutlierDetection({ name: 'c', outlier_detection: { consecutive_gateway_failure: { value: 2 }, consecutive_5xx: { value: 100 }, max_ejection_percent: { value: 100 } } })!,
    hosts: [CAT, DOG], timer: false, now: () => clock.now,
  });
  noGateway.putHttpStatus(CAT, 502);
  noGateway.putHttpStatus(CAT, 502);
  assert.equal(noGateway.isEjected(CAT), false);
  assert.equal(noGateway.state().ejectionsDetected.CONSECUTIVE_GATEWAY_FAILURE, 1, 'detected but not enforced');

  const d = detector({ consecutiveGatewayErrors: 2, consecutive5xxErrors: 0, maxEjectionPercent: 100 }, [CAT, DOG], clock);
  d.putHttpStatus(CAT, 502);
  d.putHttpStatus(CAT, 500);
  d.putHttpStatus(CAT, 503);
  assert.equal(d.isEjected(CAT), false, '500 broke the run of gateway errors');
  d.putHttpStatus(CAT, 504);
  assert.equal(d.isEjected(CAT), true);
  assert.equal(d.state().hosts.find((h) => h.host === CAT)!.reason, 'CONSECUTIVE_GATEWAY_FAILURE');
});

test('splitExternalLocalOriginErrors: connect failures count apart from 5xx', () => {
  const d = detector({ splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 2, consecutive5xxErrors: 2, maxEjectionPercent: 100 }, [CAT, DOG], { now: 0 });
  d.putHttpStatus(CAT, 500);
  d.putLocalOrigin(CAT, 'connect_failed');
  assert.equal(d.isEjected(CAT), false, 'one of each is not two of either');
  d.putLocalOrigin(CAT, 'connect_success');
  d.putLocalOrigin(CAT, 'timeout');
  assert.equal(d.isEjected(CAT), false, 'connect success reset the local-origin counter');
  d.putLocalOrigin(CAT, 'reset');
  assert.equal(d.isEjected(CAT), true);
  assert.equal(d.state().hosts.find((h) => h.host === CAT)!.reason, 'CONSECUTIVE_LOCAL_ORIGIN_FAILURE');
  // Without the split, a connect failure is a 503 and counts toward both 5xx and gateway errors.
  const joined = detector({ consecutive5xxErrors: 2, maxEjectionPercent: 100 }, [CAT, DOG], { now: 0 });
  joined.putHttpStatus(CAT, 500);
  joined.putLocalOrigin(CAT, 'connect_failed');
  assert.equal(joined.isEjected(CAT), true);
});

test('host set updates keep monitors of staying hosts and forget removed ones', () => {
  const d = detector({ consecutive5xxErrors: 1, maxEjectionPercent: 100 }, [CAT, DOG], { now: 0 });
  d.putHttpStatus(CAT, 500);
  assert.equal(d.state().ejectionsActive, 1);
  d.setHosts([DOG, '10.0.0.3:8000']);
  assert.equal(d.state().ejectionsActive, 0);
  assert.deepEqual(d.state().hosts.map((h) => h.host), [DOG, '10.0.0.3:8000']);
  d.putHttpStatus(CAT, 500); // unknown host: ignored
});

test('the interval timer runs the sweep (mocked timers) and close() stops it', (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: 0 });
  const { policy } = fromIstio({ consecutive5xxErrors: 1, interval: '1s', baseEjectionTime: '3s', maxEjectionPercent: 100 });
  const d = new OutlierDetector({ policy, hosts: [CAT, DOG] });
  const events: string[] = [];
  const sub = d.onChange((host, ejected) => events.push(`${host}:${ejected}`));
  d.putHttpStatus(CAT, 500);
  t.mock.timers.tick(2000);
  assert.equal(d.isEjected(CAT), true);
  t.mock.timers.tick(1000);
  assert.equal(d.isEjected(CAT), false, 'returned by the 3 s sweep');
  assert.deepEqual(events, [`${CAT}:true`, `${CAT}:false`]);
  sub.dispose();
  d.close();
  d.close();
});

test('compile: Envoy defaults, validation', () => {
  const p = compileOutlierDetection({ name: 'c', outlier_detection: {} })!;
  assert.deepEqual({ ...p }, {
    consecutive5xx: 5, enforcingConsecutive5xx: 100, consecutiveGatewayFailure: 5, enforcingConsecutiveGatewayFailure: 0,
    consecutiveLocalOriginFailure: 5, enforcingConsecutiveLocalOriginFailure: 100, splitExternalLocalOriginErrors: false,
    intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionTimeMs: 300_000, maxEjectionTimeJitterMs: 0,
    maxEjectionPercent: 10, alwaysEjectOneHost: false,
  });
  assert.equal(compileOutlierDetection({ name: 'c' }), undefined);
  assert.throws(() => compileOutlierDetection({ name: 'c', outlier_detection: { base_ejection_time: { seconds: 60 }, max_ejection_time: { seconds: 30 } } as Cluster['outlier_detection'] }), MeshConfigError);
});
