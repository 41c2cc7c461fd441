import assert from 'node:assert/strict';
import test from 'node:test';
import { TYPE_URL } from '../../src/config/envoy.js';
import { translateFault } from '../../src/config/translate-resilience.js';
import { compileFault, decideFault, grpcStatusForHttp, NO_FAULT } from '../../src/core/fault.js';
import { seededRandom } from '../../src/core/random.js';
import { MeshConfigError } from '../../src/errors.js';
import { normalize } from '../../src/xds/protos.js';

test('abort 50% aborts 50% ± 4 points over 2,000 seeded draws', () => {
  const policy = compileFault(translateFault({ abort: { httpStatus: 503, percentage: { value: 50 } } }));
  assert.ok(policy);
  const random = seededRandom(42);
  let aborted = 0;
  for (let i = 0; i < 2000; i++) {
    const d = decideFault(policy, random);
    if (d.abortHttpStatus !== undefined) {
      assert.equal(d.abortHttpStatus, 503);
      assert.equal(d.delayMs, 0);
      aborted++;
    } else {
      assert.equal(d, NO_FAULT);
    }
  }
  const share = (aborted / 2000) * 100;
  assert.ok(Math.abs(share - 50) <= 4, `abort share ${share}%`);
});

test('a fractional percentage keeps MILLION precision (0.1% ≈ 1 in 1,000)', () => {
  const policy = compileFault(translateFault({ abort: { httpStatus: 400, percentage: { value: 0.1 } } }))!;
  assert.equal(policy.abortProbability, 0.001);
  const random = seededRandom(7);
  let aborted = 0;
  for (let i = 0; i < 100_000; i++) if (decideFault(policy, random).abortHttpStatus) aborted++;
  assert.ok(aborted > 60 && aborted < 140, `aborted ${aborted} of 100000`);
});

test('delay 100% of 300ms applies to every request, with no draw needed', () => {
  const policy = compileFault(translateFault({ delay: { fixedDelay: '300ms', percentage: { value: 100 } } }))!;
  let draws = 0;
  const random = () => { draws++; return 0.5; };
  for (let i = 0; i < 10; i++) assert.deepEqual(decideFault(policy, random), { delayMs: 300 });
  assert.equal(draws, 0);
});

test('delay and abort together are independent and reuse preallocated decisions', () => {
  const policy = compileFault(translateFault({ delay: { fixedDelay: '1s' }, abort: { httpStatus: 500 } }))!;
  const a = decideFault(policy, Math.random);
  const b = decideFault(policy, Math.random);
  assert.equal(a, b, 'same object: no allocation per request');
  assert.deepEqual({ ...a }, { delayMs: 1000, abortHttpStatus: 500, abortGrpcStatus: undefined });
});

test('compiles the xDS-decoded form identically (round trip through the protobuf type)', () => {
  const any = translateFault({ delay: { fixedDelay: '2.5s', percentage: { value: 25 } }, abort: { grpcStatus: 'UNAVAILABLE', percentage: { value: 10 } } })!;
  const decoded = normalize(TYPE_URL.fault, any) as typeof any;
  const a = compileFault(any)!;
  const b = compileFault({ ...decoded, '@type': TYPE_URL.fault })!;
  for (const p of [a, b]) {
    assert.equal(p.delayMs, 2500);
    assert.equal(p.delayProbability, 0.25);
    assert.equal(p.abortGrpcStatus, 14);
    assert.equal(p.abortHttpStatus, undefined);
    assert.equal(p.abortProbability, 0.1);
  }
});

test('Envoy semantics: an absent percentage is 0%, so nothing is injected', () => {
  assert.equal(compileFault({ '@type': TYPE_URL.fault, abort: { http_status: 503 } }), undefined);
  assert.equal(compileFault(undefined), undefined);
  assert.equal(decideFault(undefined, Math.random), NO_FAULT);
  const capped = compileFault({ '@type': TYPE_URL.fault, abort: { http_status: 503, percentage: { numerator: 150 } } })!;
  assert.equal(capped.abortProbability, 1, 'numerator above the denominator is 100%');
});

test('rejects a wrong type URL and an impossible status', () => {
  assert.throws(() => compileFault({ '@type': TYPE_URL.router }), MeshConfigError);
  assert.throws(() => compileFault({ '@type': TYPE_URL.fault, abort: { http_status: 700, percentage: { numerator: 1 } } }), (e: unknown) => e instanceof MeshConfigError && e.path === 'abort.http_status');
});

test('HTTP abort statuses map to gRPC statuses as Envoy does', () => {
  assert.equal(grpcStatusForHttp(503), 14);
  assert.equal(grpcStatusForHttp(429), 14);
  assert.equal(grpcStatusForHttp(404), 12);
  assert.equal(grpcStatusForHttp(401), 16);
  assert.equal(grpcStatusForHttp(418), 2);
});
