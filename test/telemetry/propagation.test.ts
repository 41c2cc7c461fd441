import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_CONTEXT, TraceFlags, propagation, trace } from '@opentelemetry/api';
import { MeshPropagator, TRACE_HEADERS, stripTraceHeaders, type PropagationFormat } from '../../src/telemetry/propagation.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';

function injected(p: MeshPropagator, headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  p.inject(p.extract(headers), out);
  return out;
}

test('W3C-only caller: traceparent and tracestate are extracted and re-injected in W3C and B3', () => {
  const p = new MeshPropagator();
  const ctx = p.extract({ traceparent: `00-${TRACE_ID}-${SPAN_ID}-01`, tracestate: 'vendor=a,other=b' });
  const sc = trace.getSpanContext(ctx)!;
  assert.equal(sc.traceId, TRACE_ID);
  assert.equal(sc.spanId, SPAN_ID);
  assert.equal(sc.isRemote, true);
  assert.equal(sc.traceFlags & TraceFlags.SAMPLED, TraceFlags.SAMPLED);
  const out: Record<string, string> = {};
  p.inject(ctx, out);
  assert.deepEqual(out, {
    traceparent: `00-${TRACE_ID}-${SPAN_ID}-01`,
    tracestate: 'vendor=a,other=b',
    'x-b3-traceid': TRACE_ID,
    'x-b3-spanid': SPAN_ID,
    'x-b3-sampled': '1',
  });
});

test('B3 multi caller, sampled=0: decision carried to both formats', () => {
  const out = injected(new MeshPropagator(), { 'x-b3-traceid': TRACE_ID, 'x-b3-spanid': SPAN_ID, 'x-b3-sampled': '0', 'x-b3-parentspanid': 'aaaaaaaaaaaaaaaa' });
  assert.equal(out.traceparent, `00-${TRACE_ID}-${SPAN_ID}-00`);
  assert.equal(out['x-b3-sampled'], '0');
});

test('B3 multi debug flag survives as x-b3-flags', () => {
  const out = injected(new MeshPropagator(), { 'x-b3-traceid': TRACE_ID, 'x-b3-spanid': SPAN_ID, 'x-b3-flags': '1' });
  assert.equal(out['x-b3-flags'], '1');
  assert.equal(out['x-b3-sampled'], undefined);
  assert.equal(out.traceparent, `00-${TRACE_ID}-${SPAN_ID}-01`);
});

test('B3 single caller with a 64-bit trace id: padded to 128 bits', () => {
  const p = new MeshPropagator({ inject: ['w3c', 'b3'] });
  const out = injected(p, { b3: `a3ce929d0e0e4736-${SPAN_ID}-1` });
  assert.equal(out.traceparent, `00-0000000000000000a3ce929d0e0e4736-${SPAN_ID}-01`);
  assert.equal(out.b3, `0000000000000000a3ce929d0e0e4736-${SPAN_ID}-1`);
  assert.equal(out['x-b3-traceid'], undefined, 'b3multi not configured');
});

test('W3C wins when a request carries both formats', () => {
  const other = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
  const ctx = new MeshPropagator().extract({ traceparent: `00-${TRACE_ID}-${SPAN_ID}-01`, 'x-b3-traceid': other, 'x-b3-spanid': SPAN_ID });
  assert.equal(trace.getSpanContext(ctx)?.traceId, TRACE_ID);
});

test('no or invalid trace headers: base context returned, nothing injected', () => {
  const p = new MeshPropagator();
  assert.equal(p.extract({ accept: '*/*' }), ROOT_CONTEXT);
  const ctx = p.extract({ traceparent: '00-00000000000000000000000000000000-0000000000000000-01' });
  assert.equal(trace.getSpanContext(ctx), undefined);
  const out: Record<string, string> = {};
  p.inject(ctx, out);
  assert.deepEqual(out, {});
});

test('fast inject writes exactly what the OTel composite propagator writes', () => {
  const cases: Array<Record<string, string>> = [
    { traceparent: `00-${TRACE_ID}-${SPAN_ID}-01`, tracestate: 'k=v' },
    { traceparent: `00-${TRACE_ID}-${SPAN_ID}-00` },
    { 'x-b3-traceid': TRACE_ID, 'x-b3-spanid': SPAN_ID, 'x-b3-flags': '1' },
    { b3: `${TRACE_ID}-${SPAN_ID}-0` },
    { b3: `${TRACE_ID}-${SPAN_ID}-d` },
  ];
  const sets: PropagationFormat[][] = [['w3c'], ['b3multi'], ['b3'], ['w3c', 'b3multi'], ['w3c', 'b3multi', 'b3']];
  for (const formats of sets) {
    const p = new MeshPropagator({ inject: formats });
    for (const headers of cases) {
      const ctx = p.extract(headers);
      const fast: Record<string, string> = {};
      const otel: Record<string, string> = {};
      p.inject(ctx, fast);
      p.injectWithOtel(ctx, otel);
      assert.deepEqual(fast, otel, `${formats.join('+')} ${JSON.stringify(headers)}`);
    }
  }
});

test('array carriers (undici raw headers): values appended, existing trace headers replaced', () => {
  const p = new MeshPropagator({ inject: ['w3c'] });
  const ctx = p.extract({ traceparent: `00-${TRACE_ID}-${SPAN_ID}-01` });
  const headers = ['content-type', 'text/plain', 'Traceparent', 'stale'];
  p.inject(ctx, headers);
  assert.deepEqual(headers, ['content-type', 'text/plain', 'Traceparent', `00-${TRACE_ID}-${SPAN_ID}-01`]);
});

test('the global propagator is never set', () => {
  new MeshPropagator();
  assert.deepEqual(propagation.fields(), []);
});

test('rejects unknown formats; stripTraceHeaders removes every trace header', () => {
  assert.throws(() => new MeshPropagator({ inject: ['jaeger' as PropagationFormat] }), TypeError);
  const h: Record<string, string> = { host: 'x' };
  for (const name of TRACE_HEADERS) h[name] = '1';
  stripTraceHeaders(h);
  assert.deepEqual(h, { host: 'x' });
});
