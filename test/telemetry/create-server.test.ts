/**
 * `mesh.createServer(handler)` gets the inbound telemetry `mesh.express()`
 * has: reporter="destination" series, metadata exchange on the response, and
 * the handler's outbound calls in the caller's trace — on HTTP/1.1 and
 * HTTP/2. And the sizes are Envoy's wire bytes: a raw client counts what it
 * sent and received, and the histograms' sums must say the same.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect as netConnect } from 'node:net';
import { createMesh } from '../../src/index.js';
import { encodePeerMetadata } from '../../src/telemetry/peer-metadata.js';
import { closeServer, listen } from '../security/helpers.js';
import { startServer } from '../helpers/http-servers.js';
import { calculateService } from '../helpers/mesh-config.js';
import { find, parseExposition } from './exposition.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

test('createServer (HTTP/1.1 and h2c): SERVER-side metrics, peer metadata on the response, the handler\'s calls continue the caller\'s trace', async (t) => {
  const downstream = await startServer('calculate');
  const mesh = await createMesh({ workload: { name: 'api', labels: { app: 'api', version: 'v1' } }, config: calculateService([{ port: downstream.port, version: 'v1' }]) });
  const handler = async (_req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const r = await mesh.fetch('http://calculate:8000/add');
    res.end(`via ${await r.text()}`);
  };
  const http = mesh.createServer(handler as never, { http2: true });
  const port = await listen(http);
  t.after(async () => {
    await closeServer(http);
    await mesh.close();
    await downstream.close();
  });

  // HTTP/1.1
  // The caller is meshed: it sends its metadata exchange, which the server answers in kind.
  const caller = encodePeerMetadata({ name: 'shop-v1', namespace: 'default', labels: { app: 'shop' } });
  const exchange = { 'x-envoy-peer-metadata-id': caller.id, 'x-envoy-peer-metadata': caller.value };
  const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { traceparent: `00-${TRACE}-00f067aa0ba902b7-01`, ...exchange } });
  assert.equal(res.status, 200);
  assert.ok(res.headers.get('x-envoy-peer-metadata'), 'our metadata exchange on the response');
  await res.text();
  assert.match(String(downstream.lastHeaders?.traceparent), new RegExp(`^00-${TRACE}-`), 'the handler\'s call is in the caller\'s trace');

  // HTTP/2 prior knowledge
  const session = h2connect(`http://127.0.0.1:${port}`);
  t.after(() => session.close());
  const h2 = await new Promise<{ status: number; peer: unknown }>((resolve, reject) => {
    const stream = session.request({ ':path': '/', traceparent: `00-${TRACE.replace('4b', '5c')}-00f067aa0ba902b7-01`, ...exchange });
    let status = 0;
    let peer: unknown;
    stream.on('response', (h) => { status = Number(h[':status']); peer = h['x-envoy-peer-metadata']; });
    stream.on('data', () => undefined);
    stream.on('end', () => resolve({ status, peer }));
    stream.on('error', reject);
    stream.end();
  });
  assert.equal(h2.status, 200);
  assert.ok(h2.peer, 'HTTP/2 responses carry it too');
  assert.match(String(downstream.lastHeaders?.traceparent), new RegExp(`^00-${TRACE.replace('4b', '5c')}-`));

  const samples = parseExposition(await mesh.metrics());
  const inbound = find(samples, 'istio_requests_total', { reporter: 'destination', response_code: '200' });
  assert.equal(inbound.reduce((n, s) => n + s.value, 0), 2, 'both requests counted, once each');
  assert.equal(inbound[0]!.labels.destination_canonical_service, 'api');
  assert.equal(find(samples, 'istio_requests_total', { reporter: 'source' })[0]?.value, 2);
});

test('istio_request_bytes / istio_response_bytes are the bytes on the wire: a GET is its request line and headers, a byte ≥ 0x80 one byte', async (t) => {
  const mesh = await createMesh({ workload: { name: 'api' }, config: [] });
  const http = mesh.createServer((_req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end('hello');
  });
  const port = await listen(http);
  t.after(async () => {
    await closeServer(http);
    await mesh.close();
  });
  // 'é' goes out as the single byte 0xE9 (latin1), as Node reads and writes header bytes
  const request = Buffer.from('GET /bytes?x=1 HTTP/1.1\r\nHost: api\r\nUser-Agent: raw\r\nX-Name: caf\u00e9\r\nConnection: close\r\n\r\n', 'latin1');
  const received = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = netConnect(port, '127.0.0.1', () => socket.write(request));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
  });
  assert.match(received.toString('latin1'), /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nhello$/);
  const samples = parseExposition(await mesh.metrics());
  assert.equal(find(samples, 'istio_request_bytes_sum', { reporter: 'destination' })[0]?.value, request.length);
  assert.equal(find(samples, 'istio_response_bytes_sum', { reporter: 'destination' })[0]?.value, received.length);
});

test('reporter=source bytes: the request line, headers and body the mesh sent, the status line, headers and body it got', async (t) => {
  let wire = 0;
  const upstream = await startServer('calculate', (req, res) => {
    // What reached the server: request line + raw headers + body.
    let body = 0;
    req.on('data', (c: Buffer) => (body += c.length));
    req.on('end', () => {
      wire = `${req.method} ${req.url} HTTP/1.1\r\n`.length + req.rawHeaders.reduce((n, v, i) => n + v.length + (i % 2 === 0 ? 2 : 2), 0) + 2 + body;
      res.end('ok');
    });
  });
  const mesh = await createMesh({ workload: { name: 'client' }, config: calculateService([{ port: upstream.port, version: 'v1' }]) });
  t.after(async () => {
    await mesh.close();
    await upstream.close();
  });
  const res = await mesh.fetch('http://calculate:8000/add', { method: 'POST', body: 'x=1&y=2' });
  assert.equal(res.status, 200);
  await res.text();
  const samples = parseExposition(await mesh.metrics());
  const sent = find(samples, 'istio_request_bytes_sum', { reporter: 'source' })[0]!.value;
  // undici adds its own framing headers (content-length, connection) after the mesh counted: within a few dozen bytes.
  assert.ok(sent >= wire - 64 && sent <= wire, `counted ${sent}, on the wire ${wire}`);
  assert.ok(sent > 7, 'more than the 7-byte body');
  const got = find(samples, 'istio_response_bytes_sum', { reporter: 'source' })[0]!.value;
  assert.ok(got > 'HTTP/1.1 200 OK\r\n'.length + 2, `response bytes ${got}`);
});
