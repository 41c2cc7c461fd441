// Issue #16 item 7: slow clients on the servers meshlet creates. A real
// slowloris on loopback trickles its request headers a byte every 50 ms, for
// at most 200 bytes (10 s); with a short configured requestHeadersTimeout the
// server closes the connection while the client is still sending. Before the
// fix mesh.createServer's inner servers never checked header timeouts at all
// (node only starts that check on 'listening'), so the trickle ran to its end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { createMesh } from '../../src/index.js';
import { createGateway } from '../../src/gateway/index.js';
import { startDebugServer } from '../../src/control-plane/debug-server.js';
import { resolveServerTimeouts } from '../../src/security/server-timeouts.js';
import { gatewayDoc } from '../gateway/helpers.js';

const TRICKLE_BYTES = 200;
const TRICKLE_EVERY_MS = 50;

interface Trickle {
  /** Bytes sent before the server closed the connection (TRICKLE_BYTES when it never did). */
  sent: number;
  closedByServer: boolean;
  response: string;
}

/** Opens a connection, sends `head`, then one byte per tick until the server closes it or the budget runs out. */
function slowloris(port: number, head: string): Promise<Trickle> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let sent = 0;
    let response = '';
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      socket.destroy();
      resolve({ sent, closedByServer, response });
    };
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (response += d));
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('connect', () => {
      socket.write(head);
      timer = setInterval(() => {
        if (sent >= TRICKLE_BYTES) return finish(false);
        sent++;
        socket.write('a');
      }, TRICKLE_EVERY_MS);
    });
  });
}

const HEAD = 'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ';

test('mesh.createServer closes a slowloris after requestHeadersTimeout (408)', async (t) => {
  const mesh = await createMesh({ workload: { name: 'calc' }, config: [] });
  const server = mesh.createServer((_req, res) => res.end('ok'), { timeouts: { requestHeadersTimeout: 300 } });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await mesh.close();
  });
  const port = (server.address() as { port: number }).port;
  const r = await slowloris(port, HEAD);
  assert.ok(r.closedByServer && r.sent < TRICKLE_BYTES, `closed while the client was still sending (sent ${r.sent})`);
  assert.match(r.response, /^HTTP\/1\.1 408 /);
  // A normal client on the same server is unaffected.
  const ok = await fetch(`http://127.0.0.1:${port}/`);
  assert.equal(await ok.text(), 'ok');
});

test('mesh.createServer with http2 closes a slowloris on its HTTP/1.1 path too', async (t) => {
  const mesh = await createMesh({ workload: { name: 'calc' }, config: [] });
  const server = mesh.createServer((_req, res) => res.end('ok'), { http2: true, timeouts: { requestHeadersTimeout: 300 } });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await mesh.close();
  });
  const r = await slowloris((server.address() as { port: number }).port, HEAD);
  assert.ok(r.closedByServer && r.sent < TRICKLE_BYTES, `sent ${r.sent}`);
});

test('a request that stops sending its body is closed after streamIdleTimeout', async (t) => {
  const mesh = await createMesh({ workload: { name: 'calc' }, config: [] });
  const server = mesh.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  }, { timeouts: { streamIdleTimeout: 300 } });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await mesh.close();
  });
  const port = (server.address() as { port: number }).port;
  // Headers complete, 10 of 100 body bytes, then silence: only the idle timeout can end it.
  const closed = await new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789'));
    socket.on('close', () => resolve(true));
    socket.on('error', () => undefined);
  });
  assert.equal(closed, true);
});

test('the gateway closes a slowloris after its requestHeadersTimeout', async (t) => {
  const gw = await createGateway({ config: gatewayDoc(), port: 0, serverPort: 80, timeouts: { requestHeadersTimeout: 300 } });
  t.after(() => gw.close());
  const r = await slowloris(gw.port, HEAD);
  assert.ok(r.closedByServer && r.sent < TRICKLE_BYTES, `sent ${r.sent}`);
  assert.match(r.response, /^HTTP\/1\.1 408 /);
});

test('the control plane debug server closes a slowloris after its requestHeadersTimeout', async (t) => {
  const sources = { syncz: () => [], status: () => ({}), configDump: () => ({}), configStatus: () => [] };
  const { server, port } = await startDebugServer(sources, 0, '127.0.0.1', { requestHeadersTimeout: 300 });
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  const r = await slowloris(port, HEAD);
  assert.ok(r.closedByServer && r.sent < TRICKLE_BYTES, `sent ${r.sent}`);
});

test('timeouts: defaults as documented, 0 disables, bad values refused', () => {
  assert.deepEqual(resolveServerTimeouts(), { requestHeadersTimeout: 10_000, requestTimeout: 300_000, streamIdleTimeout: 300_000, keepAliveTimeout: 5_000 });
  assert.equal(resolveServerTimeouts({ streamIdleTimeout: 0 }).streamIdleTimeout, 0);
  assert.throws(() => resolveServerTimeouts({ requestHeadersTimeout: -1 }), /requestHeadersTimeout/);
  assert.throws(() => resolveServerTimeouts({ requestTimeout: Number.NaN }), /requestTimeout/);
});
