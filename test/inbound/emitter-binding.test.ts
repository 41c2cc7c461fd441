// Inbound context binding and byte counting are per instance: nothing process-wide changes, and a
// meshed request's listeners behave as on any emitter (once/off/removeListener, events.once).
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { IncomingMessage, ServerResponse, request as httpRequest } from 'node:http';
import { test } from 'node:test';
import { trace } from '@opentelemetry/api';
import express from 'express';
import { createMesh } from '../../src/index.js';
import { listen, memoryTracing } from './setup.js';

const protoMethods = () => ({
  on: IncomingMessage.prototype.on, addListener: IncomingMessage.prototype.addListener, emit: IncomingMessage.prototype.emit,
  prepend: IncomingMessage.prototype.prependListener, write: ServerResponse.prototype.write, end: ServerResponse.prototype.end,
  eeOn: EventEmitter.prototype.on, eeEmit: EventEmitter.prototype.emit,
});

test('mesh.express() changes no prototype; once/off/removeListener and events.once work on a meshed request; body listeners keep the trace', async (t) => {
  const before = protoMethods();
  const { tracerProvider } = memoryTracing();
  const mesh = await createMesh({ workload: { name: 'api', namespace: 'default' }, config: [], tracerProvider });
  t.after(() => mesh.close());
  const seen: Record<string, unknown> = {};
  const app = express();
  app.use(mesh.express());
  app.post('/', async (req, res) => {
    const fn = () => { seen.onceFired = true; };
    const baseline = req.listenerCount('end');
    req.once('end', fn);
    req.removeListener('end', fn);
    seen.onceRemoved = req.listenerCount('end') === baseline;
    req.once('end', fn);
    req.off('end', fn);
    seen.offRemoved = req.listenerCount('end') === baseline;
    // A body read by events.once, and the context inside a 'data' listener (fired from the socket).
    req.on('data', () => { seen.traceInData ??= trace.getActiveSpan()?.spanContext().traceId ?? mesh.context.getStore() !== undefined; });
    const ended = once(req, 'end');
    req.resume();
    await ended;
    seen.listenersAfter = req.listenerCount('end');
    res.send('ok');
  });
  const server = await listen(app);
  t.after(() => server.close());
  const status = await new Promise<number>((resolve, reject) => {
    const r = httpRequest({ host: '127.0.0.1', port: server.port, method: 'POST', path: '/', headers: { 'content-type': 'text/plain' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    r.on('error', reject);
    r.end('hello body');
  });
  assert.equal(status, 200);
  assert.equal(seen.onceRemoved, true, 'removeListener(fn) removes a once listener');
  assert.equal(seen.offRemoved, true, 'off(fn) removes a once listener');
  assert.equal(seen.onceFired, undefined, 'a removed once listener never fires');
  assert.ok(seen.traceInData, 'a data listener runs in the request context');
  assert.deepEqual(protoMethods(), before, 'no prototype was changed');
  // The HTTP client's response above is an IncomingMessage too: it was never bound.
  const metrics = await mesh.metrics();
  // Wire bytes (Envoy's): status line and headers plus the 2-byte body.
  const sum = Number(/istio_response_bytes_sum\{[^}]*reporter="destination"[^}]*\} (\d+)/.exec(metrics)?.[1]);
  assert.ok(sum > 2 + 'HTTP/1.1 200 OK\r\n'.length && sum < 4096, `the response was counted per instance: ${sum} bytes`);
});
