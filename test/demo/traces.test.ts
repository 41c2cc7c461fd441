/**
 * The demo's trace store: the user's requests, not the demo's own polling;
 * spans named by method and route; the traces that show a scenario (errors,
 * flags, slow calls) outlive ordinary ones and stay listed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TraceStore } from '../../examples/demo/console/traces.js';
import type { ShippedSpan } from '../../examples/demo/services/workload.js';

let next = 0;
const id = (n: number, width: number): string => n.toString(16).padStart(width, '0');

/** A trace of a gateway CLIENT span and the client's SERVER span under it. */
function trace(path: string, options: { flags?: string; durationMs?: number; status?: number } = {}): ShippedSpan[] {
  const traceId = id(++next, 32);
  const start = next * 10;
  const gateway: ShippedSpan = {
    traceId, spanId: id(next * 2, 16), parentSpanId: undefined, service: 'istio-ingressgateway', name: 'GET', kind: 2, start,
    durationMs: options.durationMs ?? 5, status: options.status ?? 0,
    attributes: { 'url.full': `http://127.0.0.1:40000${path}`, 'meshlet.cluster': 'outbound|8080||client.default.svc.cluster.local', ...(options.flags && { 'meshlet.flags': options.flags }) },
  };
  const server: ShippedSpan = { ...gateway, spanId: id(next * 2 + 1, 16), parentSpanId: gateway.spanId, service: 'client', kind: 1, attributes: { 'url.path': path.split('?')[0]! } };
  return [server, gateway];
}

describe('demo trace store', () => {
  it('drops the demo\'s own traffic: console pages and polling, /metrics, the scenario API, static files', () => {
    const store = new TraceStore();
    for (const path of ['/console/api/graph', '/console/traces', '/metrics/client', '/api/scenarios', '/assets/app.css', '/favicon.ico', '/healthz']) store.add(trace(path));
    store.add(trace('/?x=1&y=2'));
    assert.deepEqual(store.list().map((t) => t.name), ['istio-ingressgateway: GET client /']);
  });

  it('names spans by method and route: the service by its mesh name, not the endpoint address', () => {
    const store = new TraceStore();
    const [server, gateway] = trace('/api/view?x=1');
    store.add([server!, gateway!, { ...server!, spanId: id(999, 16), attributes: { 'url.path': '/pets/cat', 'http.route': '/pets/:name' } }]);
    assert.deepEqual(store.get(gateway!.traceId)!.map((s) => s.name).sort(), ['GET /api/view', 'GET /pets/:name', 'GET client /api/view']);
  });

  it('tags each trace with the scenario in force when it started', () => {
    const store = new TraceStore();
    store.scenario = 'retry';
    store.add(trace('/'));
    store.scenario = 'baseline';
    store.add(trace('/'));
    assert.deepEqual(store.list().map((t) => t.scenario), ['baseline', 'retry']);
  });

  it('keeps traces with a flag, an error or a slow call longest, and lists them past the recent ones', () => {
    const store = new TraceStore(20);
    const retry = trace('/api/view', { flags: 'UT', durationMs: 8000, status: 2 });
    store.add(retry);
    store.add(trace('/', { flags: 'RL' }));
    for (let i = 0; i < 200; i++) store.add(trace('/'));
    const listed = store.list(5);
    assert.equal(listed.length, 7, 'the 5 most recent, then the older notable ones');
    assert.deepEqual(listed.slice(5).map((t) => t.flags), [['RL'], ['UT']]);
    assert.ok(store.get(retry[0]!.traceId), 'the retry trace outlived 200 ordinary ones');
    assert.equal(listed.at(-1)!.notable, true);
  });
});
