import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createMesh, MeshTimeoutError, seededRandom } from '../../src/index.js';
import { startServer, type TestServer } from '../helpers/http-servers.js';
import { calculateRoutes, calculateService, docs } from '../helpers/mesh-config.js';

describe('timeouts and retries with Envoy semantics', () => {
  const servers: TestServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  async function server(handler: Parameters<typeof startServer>[1]): Promise<TestServer> {
    const s = await startServer(`s${servers.length}`, handler);
    servers.push(s);
    return s;
  }

  const slow = (ms: number) => server((_req, res) => {
    const t = setTimeout(() => res.end('late'), ms);
    res.on('close', () => clearTimeout(t));
  });

  it('answers 504 UT between 2 s and 3 s when the route timeout is 2s and upstream takes 20 s', async () => {
    const upstream = await slow(20_000);
    const mesh = await createMesh({ config: docs(calculateService([{ port: upstream.port, version: 'cat-plus' }]), calculateRoutes(`
    - timeout: 2s
      route: [{ destination: { host: calculate } }]`)) });
    try {
      const started = performance.now();
      const res = await mesh.fetch('http://calculate:8000/add');
      const elapsed = performance.now() - started;
      assert.equal(res.status, 504);
      assert.equal(res.headers.get('x-meshlet-flags'), 'UT');
      assert.equal(await res.text(), 'upstream request timeout');
      assert.ok(elapsed >= 2000 && elapsed < 3000, `elapsed ${elapsed}`);
    } finally {
      await mesh.close();
    }
  });

  it('throws MeshTimeoutError instead when localReplies is "throw"', async () => {
    const upstream = await slow(5_000);
    const mesh = await createMesh({ localReplies: 'throw', config: docs(calculateService([{ port: upstream.port, version: 'v' }]), calculateRoutes(`
    - timeout: 100ms
      route: [{ destination: { host: calculate } }]`)) });
    try {
      await assert.rejects(mesh.request('http://calculate:8000/'), (err: unknown) => err instanceof MeshTimeoutError && (err as MeshTimeoutError).flag === 'UT');
    } finally {
      await mesh.close();
    }
  });

  it('retries 503 twice then succeeds: 200 after exactly 3 upstream requests', async () => {
    let n = 0;
    const upstream = await server((_req, res) => {
      n++;
      res.statusCode = n <= 2 ? 503 : 200;
      res.end(n <= 2 ? 'unavailable' : 'ok');
    });
    const mesh = await createMesh({ random: seededRandom(1), config: docs(calculateService([{ port: upstream.port, version: 'v' }]), calculateRoutes(`
    - retries: { attempts: 3, retryOn: 5xx }
      route: [{ destination: { host: calculate } }]`)) });
    try {
      const res = await mesh.request('http://calculate:8000/');
      assert.equal(res.statusCode, 200);
      assert.equal(await res.body.text(), 'ok');
      assert.equal(upstream.hits, 3);
    } finally {
      await mesh.close();
    }
  });

  it("retries a 503 with Istio's default policy (2 retries) when the VirtualService sets none", async () => {
    const upstream = await server((_req, res) => {
      res.statusCode = 503;
      res.end('down');
    });
    const mesh = await createMesh({ config: calculateService([{ port: upstream.port, version: 'v' }]) });
    try {
      const res = await mesh.request('http://calculate:8000/');
      assert.equal(res.statusCode, 503);
      await res.body.text();
      assert.equal(upstream.hits, 3);
    } finally {
      await mesh.close();
    }
  });

  it('attempts 3 with perTryTimeout makes exactly 4 upstream requests, then 504 UT', async () => {
    const upstream = await slow(10_000);
    const mesh = await createMesh({ random: seededRandom(2), config: docs(calculateService([{ port: upstream.port, version: 'v' }]), calculateRoutes(`
    - retries: { attempts: 3, perTryTimeout: 200ms, retryOn: 'gateway-error,connect-failure' }
      route: [{ destination: { host: calculate } }]`)) });
    try {
      const started = performance.now();
      const res = await mesh.fetch('http://calculate:8000/');
      const elapsed = performance.now() - started;
      assert.equal(res.status, 504);
      assert.equal(res.headers.get('x-meshlet-flags'), 'UT');
      await res.text();
      assert.equal(upstream.hits, 4);
      assert.ok(elapsed >= 800 && elapsed < 3000, `elapsed ${elapsed}`);
    } finally {
      await mesh.close();
    }
  });

  it('retries a connect failure on another endpoint, and reports URX when every retry fails', async () => {
    const good = await server((_req, res) => res.end('good'));
    const deadPort = await closedPort();
    const twoEndpoints = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: calculate }
spec:
  hosts: [calculate.default.svc.cluster.local]
  ports: [{ number: 8000, name: http }]
  endpoints:
    - { address: 127.0.0.1, ports: { http: ${deadPort} } }
    - { address: 127.0.0.1, ports: { http: ${good.port} } }`;
    const mesh = await createMesh({ config: twoEndpoints });
    try {
      for (let i = 0; i < 10; i++) {
        const res = await mesh.request('http://calculate:8000/');
        assert.equal(await res.body.text(), 'good');
      }
      await mesh.apply(calculateService([{ port: deadPort, version: 'v' }]));
      const res = await mesh.fetch('http://calculate:8000/');
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('x-meshlet-flags'), 'URX');
    } finally {
      await mesh.close();
    }
  });

  it('replays a POST body on retry, from undici.request and from fetch', async () => {
    const seen: string[] = [];
    let n = 0;
    const upstream = await server((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push(body);
        res.statusCode = ++n % 2 === 1 ? 503 : 200;
        res.end(body);
      });
    });
    const mesh = await createMesh({ config: docs(calculateService([{ port: upstream.port, version: 'v' }]), calculateRoutes(`
    - retries: { attempts: 2, retryOn: '503' }
      route: [{ destination: { host: calculate } }]`)) });
    try {
      const a = await mesh.request('http://calculate:8000/', { method: 'POST', body: 'x=1' });
      assert.equal(await a.body.text(), 'x=1');
      const b = await mesh.fetch('http://calculate:8000/', { method: 'POST', body: 'y=2' });
      assert.equal(b.status, 200);
      assert.equal(await b.text(), 'y=2');
      assert.deepEqual(seen, ['x=1', 'x=1', 'y=2', 'y=2']);
    } finally {
      await mesh.close();
    }
  });

  it('passes a caller abort through and stops the upstream attempt', async () => {
    const upstream = await slow(10_000);
    const mesh = await createMesh({ config: calculateService([{ port: upstream.port, version: 'v' }]) });
    try {
      const controller = new AbortController();
      const pending = mesh.fetch('http://calculate:8000/', { signal: controller.signal });
      setTimeout(() => controller.abort(), 50);
      await assert.rejects(pending, { name: 'AbortError' });
    } finally {
      await mesh.close();
    }
  });
});

async function closedPort(): Promise<number> {
  const s = await startServer('gone');
  const port = s.port;
  await s.close();
  return port;
}
