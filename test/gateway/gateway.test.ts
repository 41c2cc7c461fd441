import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { seededRandom } from '../../src/index.js';
import { startServer, tally, type TestServer } from '../helpers/http-servers.js';
import { backendService, boundRoutes, call, docs, gatewayDoc, startGateway } from './helpers.js';

describe('ingress gateway over loopback backends', () => {
  let client: TestServer;
  let api: TestServer;
  let echo: TestServer;
  let services: string;

  before(async () => {
    client = await startServer('client');
    api = await startServer('api');
    // Echo: sha256 and size of the request body; GET /big streams 4 MiB back.
    echo = await startServer('echo', (req, res) => {
      if (req.url === '/big') {
        const chunk = Buffer.alloc(64 * 1024, 7);
        let left = 64;
        const pump = (): void => {
          while (left > 0) {
            left--;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        return pump();
      }
      const hash = createHash('sha256');
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        hash.update(c);
      });
      req.on('end', () => res.end(`${size} ${hash.digest('hex')}`));
    });
    services = docs(backendService('client', client.port), backendService('api', api.port), backendService('echo', echo.port));
  });
  after(async () => {
    await Promise.all([client.close(), api.close(), echo.close()]);
  });

  const shop = boundRoutes('[shop.example.com]', `
    - match: [{ uri: { prefix: /api } }]
      route: [{ destination: { host: api } }]
    - route: [{ destination: { host: client, port: { number: 8080 } } }]`);
  const upload = boundRoutes('[upload.example.com]', `
    - route: [{ destination: { host: echo } }]`, 'upload');

  it('routes by host and path, 404 NR for an unknown host', async () => {
    const config = docs(services, gatewayDoc(), shop, upload);
    const gw = await startGateway(config);
    try {
      const root = await call(gw, 'shop.example.com', '/index.html');
      assert.equal(root.status, 200);
      assert.equal(root.body, 'client');
      assert.equal(client.lastUrl, '/index.html');
      // The upstream sees the client's authority and Envoy's forwarding headers.
      assert.equal(client.lastHeaders?.host, 'shop.example.com');
      assert.equal(client.lastHeaders?.['x-forwarded-proto'], 'http');
      assert.match(String(client.lastHeaders?.['x-forwarded-for']), /127\.0\.0\.1/);
      assert.match(String(client.lastHeaders?.['x-request-id']), /^[0-9a-f-]{36}$/);

      const apiCall = await call(gw, 'shop.example.com:8080', '/api/pets?x=1');
      assert.equal(apiCall.body, 'api');
      assert.equal(api.lastUrl, '/api/pets?x=1');

      const unknown = await call(gw, 'nobody.example.com', '/');
      assert.equal(unknown.status, 404);
      assert.equal(unknown.headers['x-meshlet-flags'], 'NR');
      assert.equal((await call(gw, '', '/')).status, 404);
    } finally {
      await gw.close();
    }
  });

  it('only serves the hosts the Gateway server allows (host intersection)', async () => {
    const config = docs(services, gatewayDoc('["default/shop.example.com"]'), shop, upload);
    const gw = await startGateway(config);
    try {
      assert.equal((await call(gw, 'shop.example.com', '/')).body, 'client');
      const denied = await call(gw, 'upload.example.com', '/');
      assert.equal(denied.status, 404);
      assert.equal(denied.headers['x-meshlet-flags'], 'NR');
    } finally {
      await gw.close();
    }
  });

  it('splits by weight through the gateway (75/25 within ±7 points over 400 requests)', async () => {
    const config = docs(services, gatewayDoc(), boundRoutes('["*"]', `
    - route:
        - { destination: { host: client }, weight: 75 }
        - { destination: { host: api }, weight: 25 }`));
    const gw = await startGateway(config, { random: seededRandom(11) });
    try {
      const bodies: string[] = [];
      for (let i = 0; i < 400; i += 40) {
        bodies.push(...(await Promise.all(Array.from({ length: 40 }, async () => (await call(gw, 'any.example.com', '/')).body))));
      }
      const counts = tally(bodies);
      assert.equal((counts.client ?? 0) + (counts.api ?? 0), 400);
      assert.ok(Math.abs((counts.client ?? 0) / 400 - 0.75) <= 0.07, JSON.stringify(counts));
    } finally {
      await gw.close();
    }
  });

  it('streams a 3 MiB POST body to the backend intact and a 4 MiB response back', async () => {
    const gw = await startGateway(docs(services, gatewayDoc(), upload));
    try {
      const hash = createHash('sha256');
      let sent = 0;
      async function* body(): AsyncGenerator<Buffer> {
        for (let i = 0; i < 48; i++) {
          const chunk = Buffer.alloc(64 * 1024, i);
          hash.update(chunk);
          sent += chunk.length;
          yield chunk;
        }
      }
      const res = await call(gw, 'upload.example.com', '/upload', { method: 'POST', body: body() });
      assert.equal(res.status, 200);
      assert.equal(res.body, `${sent} ${hash.digest('hex')}`);
      assert.equal(sent, 3 * 1024 * 1024);

      const big = await call(gw, 'upload.example.com', '/big');
      assert.equal(big.status, 200);
      assert.equal(Buffer.byteLength(big.body), 4 * 1024 * 1024);
    } finally {
      await gw.close();
    }
  });

  it('drains: an in-flight slow request completes while new connections are refused', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let arrived!: () => void;
    const inFlight = new Promise<void>((resolve) => (arrived = resolve));
    const slow = await startServer('slow', (_req, res) => {
      arrived();
      void released.then(() => res.end('slow done'));
    });
    const gw = await startGateway(docs(backendService('slow', slow.port), gatewayDoc(), boundRoutes('["*"]', `
    - route: [{ destination: { host: slow } }]`)), { drainTimeout: 10_000 });
    try {
      const pending = call(gw, 'slow.example.com', '/');
      await inFlight;
      assert.equal(gw.inFlight, 1);
      const closed = gw.close();
      const refused = await new Promise<string>((resolve) => {
        const socket = connect(gw.port, '127.0.0.1');
        socket.once('connect', () => {
          socket.destroy();
          resolve('connected');
        });
        socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      });
      assert.equal(refused, 'ECONNREFUSED');
      release();
      const res = await pending;
      assert.equal(res.status, 200);
      assert.equal(res.body, 'slow done');
      assert.equal(res.headers.connection, 'close');
      await closed;
      assert.equal(gw.inFlight, 0);
    } finally {
      release();
      await gw.close();
      await slow.close();
    }
  });

  it('cuts requests still running when the drain timeout ends', async () => {
    const stuck = await startServer('stuck', () => undefined);
    const gw = await startGateway(docs(backendService('stuck', stuck.port), gatewayDoc(), boundRoutes('["*"]', `
    - route: [{ destination: { host: stuck } }]`)), { drainTimeout: 100 });
    try {
      const pending = call(gw, 'x', '/').then(() => 'answered', () => 'cut');
      while (stuck.hits === 0) await new Promise((r) => setTimeout(r, 5));
      await gw.close();
      assert.equal(await pending, 'cut');
    } finally {
      await stuck.close();
    }
  });
});
