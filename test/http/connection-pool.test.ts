// DestinationRule connectionPool settings enforced as Envoy enforces them, shown by counting what a
// real upstream on 127.0.0.1 sees: sockets opened, requests in its handler at once, who closed a socket.
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { createMesh } from '../../src/index.js';
import { calculateService, docs } from '../helpers/mesh-config.js';

/** An upstream that counts sockets and concurrency; with `hold`, responses wait for `release()`. */
async function countingServer(options: { hold?: boolean; keepAliveTimeoutMs?: number } = {}) {
  const sockets: Socket[] = [];
  const endedByClient = new Set<Socket>();
  const held: ServerResponse[] = [];
  const state = { port: 0, hits: 0, inHandler: 0, maxInHandler: 0, socketOf: [] as number[] };
  const server = createServer((req, res) => {
    state.hits++;
    state.inHandler++;
    state.maxInHandler = Math.max(state.maxInHandler, state.inHandler);
    state.socketOf.push(sockets.indexOf(req.socket));
    res.on('close', () => state.inHandler--);
    if (options.hold) held.push(res);
    else res.end('ok');
  });
  server.keepAliveTimeout = options.keepAliveTimeoutMs ?? 60_000;
  server.on('connection', (s: Socket) => {
    sockets.push(s);
    // 'end' is the peer's FIN: the client (the mesh's pool) closed the connection, not this server.
    s.on('end', () => endedByClient.add(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  return {
    state,
    sockets,
    endedByClient,
    held,
    release() {
      for (const res of held.splice(0)) res.end('ok');
    },
    open: () => sockets.filter((s) => !s.destroyed).length,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const pool = (trafficPolicy: string, extra = '') => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: calculate, namespace: default }
spec:
  host: calculate
  trafficPolicy:
    connectionPool: ${trafficPolicy}${extra}`;

describe('connectionPool: counted at the upstream', () => {
  const closers: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of closers) await c();
  });

  it('maxConnections 3 + http1MaxPendingRequests 3: 3 sockets, 3 requests at the upstream, 3 queued, the rest 503 UO at once', async () => {
    const up = await countingServer({ hold: true });
    closers.push(up.close);
    const mesh = await createMesh({ config: docs(calculateService([{ port: up.state.port, version: 'v' }]), pool('{ tcp: { maxConnections: 3 }, http: { http1MaxPendingRequests: 3 } }')) });
    closers.push(() => mesh.close());
    const order: string[] = [];
    const calls = Array.from({ length: 10 }, async () => {
      const res = await mesh.request('http://calculate:8000/');
      await res.body.text();
      order.push(res.statusCode === 200 ? 'ok' : `${res.statusCode} ${res.headers['x-meshlet-flags']}`);
      return res.statusCode;
    });
    await waitFor(() => up.held.length === 3 && order.length === 4, '3 held at the upstream and 4 overflows');
    assert.deepEqual(order, ['503 UO', '503 UO', '503 UO', '503 UO'], 'overflow answers before anything is released');
    assert.equal(up.sockets.length, 3);
    assert.equal(up.state.maxInHandler, 3);

    // Each release lets the queued requests through on the same three connections.
    await waitFor(() => {
      up.release();
      return order.length === 10;
    }, 'the queued requests');
    const statuses = await Promise.all(calls);
    assert.deepEqual(statuses.filter((s) => s === 200).length, 6);
    assert.equal(up.state.hits, 6);
    assert.equal(up.state.maxInHandler, 3, 'never more than maxConnections requests at the upstream');
    assert.equal(up.sockets.length, 3, 'the queued requests reused the three connections');
    const stats = mesh.clusters().find((c) => c.name.includes('calculate'))!.circuitBreakers;
    assert.equal(stats.upstream_rq_pending_overflow, 4);
  });

  it('a queued request that times out leaves the queue: 504 UT, and it never reaches the upstream', async () => {
    const up = await countingServer({ hold: true });
    closers.push(up.close);
    const mesh = await createMesh({ config: docs(calculateService([{ port: up.state.port, version: 'v' }]), pool('{ tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 5 } }'), `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: calculate, namespace: default }
spec:
  hosts: [calculate]
  http:
    # The request holding the connection has no timeout of its own: when it ends is up to the test.
    - { match: [{ headers: { x-hold: { exact: '1' } } }], route: [{ destination: { host: calculate } }] }
    - { timeout: 300ms, route: [{ destination: { host: calculate } }] }`) });
    closers.push(() => mesh.close());
    const first = mesh.request('http://calculate:8000/', { headers: { 'x-hold': '1' } });
    await waitFor(() => up.held.length === 1, 'the first request at the upstream');
    const queued = await mesh.request('http://calculate:8000/');
    await queued.body.text();
    assert.equal(queued.statusCode, 504);
    assert.equal(queued.headers['x-meshlet-flags'], 'UT');
    up.release();
    const res = await first;
    await res.body.text();
    assert.equal(up.state.hits, 1, 'the timed-out request was never sent');
    const stats = mesh.clusters().find((c) => c.name.includes('calculate'))!.circuitBreakers;
    assert.equal(stats.remaining_pending, 5, 'the queue is empty again');
  });

  it('maxRequestsPerConnection 2: no connection carries more than two of six requests', async () => {
    const up = await countingServer();
    closers.push(up.close);
    const mesh = await createMesh({ config: docs(calculateService([{ port: up.state.port, version: 'v' }]), pool('{ http: { maxRequestsPerConnection: 2 } }')) });
    closers.push(() => mesh.close());
    for (let i = 0; i < 6; i++) {
      const res = await mesh.request('http://calculate:8000/');
      await res.body.text();
    }
    const perSocket = new Map<number, number>();
    for (const s of up.state.socketOf) perSocket.set(s, (perSocket.get(s) ?? 0) + 1);
    assert.ok([...perSocket.values()].every((n) => n <= 2), `requests per connection: ${[...perSocket.values()]}`);
    assert.ok(perSocket.size >= 3);
  });

  it('maxRequestsPerConnection 1: every request on its own connection (keep-alive off)', async () => {
    const up = await countingServer();
    closers.push(up.close);
    const mesh = await createMesh({ config: docs(calculateService([{ port: up.state.port, version: 'v' }]), pool('{ http: { maxRequestsPerConnection: 1 } }')) });
    closers.push(() => mesh.close());
    for (let i = 0; i < 4; i++) {
      const res = await mesh.request('http://calculate:8000/');
      await res.body.text();
    }
    assert.deepEqual(up.state.socketOf, [0, 1, 2, 3]);
  });

  it('idleTimeout: the mesh closes an idle connection itself', async () => {
    const up = await countingServer({ keepAliveTimeoutMs: 600_000 });
    closers.push(up.close);
    const mesh = await createMesh({ config: docs(calculateService([{ port: up.state.port, version: 'v' }]), pool('{ http: { idleTimeout: 200ms } }')) });
    closers.push(() => mesh.close());
    const res = await mesh.request('http://calculate:8000/');
    await res.body.text();
    // The server would keep it for 10 minutes: an 'end' here is the client's FIN.
    await waitFor(() => up.endedByClient.size === 1, 'the client to close the idle connection');
  });

  it('maxConnectionDuration: a connection older than the limit is drained and replaced', async () => {
    const up = await countingServer();
    closers.push(up.close);
    const mesh = await createMesh({ config: docs(calculateService([{ port: up.state.port, version: 'v' }]), pool('{ tcp: { maxConnectionDuration: 100ms } }')) });
    closers.push(() => mesh.close());
    let res = await mesh.request('http://calculate:8000/');
    await res.body.text();
    const firstAt = Date.now();
    // Requests keep the connection busy (never idle) until it is past its age.
    while (Date.now() - firstAt < 300) {
      res = await mesh.request('http://calculate:8000/');
      await res.body.text();
    }
    res = await mesh.request('http://calculate:8000/');
    await res.body.text();
    assert.ok(up.sockets.length >= 2, `${up.sockets.length} connection(s)`);
    await waitFor(() => up.endedByClient.has(up.sockets[0]!), 'the first connection to be closed by the client');
  });
});

describe('pools follow the endpoints', () => {
  it('endpoints that come and go leave no pool behind: 40 pushes, each to a new endpoint', async (t) => {
    const ups: Array<Awaited<ReturnType<typeof countingServer>>> = [];
    t.after(async () => {
      for (const u of ups) await u.close();
    });
    const mesh = await createMesh({ config: calculateService([]) });
    t.after(() => mesh.close());
    for (let i = 0; i < 40; i++) {
      const up = await countingServer({ keepAliveTimeoutMs: 600_000 });
      ups.push(up);
      await mesh.apply(calculateService([{ port: up.state.port, version: `v${i}` }]));
      const res = await mesh.request('http://calculate:8000/');
      await res.body.text();
      assert.equal(res.statusCode, 200);
      // The previous endpoint's server may be closed now: nothing reaches it again.
      if (i > 0) await ups[i - 1]!.close();
    }
    assert.equal(mesh.dispatcher.endpointPools, 1, 'only the current endpoint has a pool');
    // Each retired pool closed its connection itself (the servers would have kept them for 10 minutes).
    await waitFor(() => ups.slice(0, -1).every((u) => u.endedByClient.size === 1 || u.sockets[0]!.destroyed), 'retired pools to close');
  });

  it('a request in flight on an endpoint that leaves finishes on it', async (t) => {
    const up = await countingServer({ hold: true });
    const next = await countingServer();
    t.after(async () => { await up.close(); await next.close(); });
    const mesh = await createMesh({ config: calculateService([{ port: up.state.port, version: 'a' }]) });
    t.after(() => mesh.close());
    const inFlight = mesh.request('http://calculate:8000/');
    await waitFor(() => up.held.length === 1, 'the request at the old endpoint');
    await mesh.apply(calculateService([{ port: next.state.port, version: 'b' }]));
    up.release();
    const res = await inFlight;
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'ok');
    const again = await mesh.request('http://calculate:8000/');
    await again.body.text();
    assert.equal(next.state.hits, 1);
  });

  it('requests timed out against a silent upstream leave no connection behind', async (t) => {
    const silent = await countingServer({ hold: true });
    t.after(silent.close);
    const mesh = await createMesh({ config: docs(calculateService([{ port: silent.state.port, version: 'v' }]), `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: calculate, namespace: default }
spec:
  hosts: [calculate]
  http: [{ timeout: 200ms, route: [{ destination: { host: calculate } }] }]`) });
    t.after(() => mesh.close());
    const results = await Promise.all(Array.from({ length: 100 }, async () => {
      const res = await mesh.request('http://calculate:8000/');
      await res.body.text();
      return res.statusCode;
    }));
    assert.deepEqual([...new Set(results)], [504]);
    t.diagnostic(`${silent.sockets.length} connections for 100 timed-out requests`);
    // A timed-out HTTP/1.1 request cannot be cancelled on its connection: the mesh closes it, and keeps no spare.
    await waitFor(() => silent.sockets.every((s) => silent.endedByClient.has(s) || s.destroyed), 'the timed-out connections to close');
  });
});
