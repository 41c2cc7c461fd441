import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createMesh, seededRandom } from '../../src/index.js';
import { startServer, tally, type TestServer } from '../helpers/http-servers.js';
import { calculateRoutes, calculateService, docs } from '../helpers/mesh-config.js';

describe('resilience on the HTTP path (real loopback servers)', () => {
  const servers: TestServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });
  async function server(name: string, handler?: Parameters<typeof startServer>[1]): Promise<TestServer> {
    const s = await startServer(name, handler);
    servers.push(s);
    return s;
  }
  const sleeper = (name: string, ms: number) => server(name, (_req, res) => {
    const t = setTimeout(() => res.end(name), ms);
    res.on('close', () => clearTimeout(t));
  });

  it('aborts 50% with 503/FI within ±4 points over 2,000 requests; the upstream never sees them', async () => {
    const up = await server('up');
    const mesh = await createMesh({ random: seededRandom(7), config: docs(calculateService([{ port: up.port, version: 'v' }]), calculateRoutes(`
    - fault: { abort: { httpStatus: 503, percentage: { value: 50 } } }
      retries: { attempts: 0 }
      route: [{ destination: { host: calculate } }]`)) });
    try {
      let aborted = 0;
      for (let i = 0; i < 2000; i += 100) {
        const results = await Promise.all(Array.from({ length: 100 }, async () => {
          const res = await mesh.request('http://calculate:8000/');
          await res.body.text();
          return res.statusCode === 503 && res.headers['x-meshlet-flags'] === 'FI';
        }));
        aborted += results.filter(Boolean).length;
      }
      assert.ok(Math.abs(aborted / 2000 - 0.5) <= 0.04, `aborted share ${aborted / 2000}`);
      assert.equal(up.hits, 2000 - aborted);
    } finally {
      await mesh.close();
    }
  });

  it('delays 100% by 300 ms and flags DI', async () => {
    const up = await server('up');
    const mesh = await createMesh({ config: docs(calculateService([{ port: up.port, version: 'v' }]), calculateRoutes(`
    - fault: { delay: { fixedDelay: 300ms, percentage: { value: 100 } } }
      route: [{ destination: { host: calculate } }]`)) });
    try {
      const started = performance.now();
      const res = await mesh.fetch('http://calculate:8000/');
      assert.equal(await res.text(), 'up');
      assert.ok(performance.now() - started >= 300);
      assert.equal(res.headers.get('x-meshlet-flags'), 'DI');
    } finally {
      await mesh.close();
    }
  });

  it("reproduces the seed's circuit breaker: cat ejected after exactly 3 timeouts, only dog until the ejection ends", async () => {
    const cat = await sleeper('cat', 5000);
    const dog = await server('dog');
    const mesh = await createMesh({ config: docs(
      calculateService([{ port: cat.port, version: 'cat-plus' }, { port: dog.port, version: 'dog-multi' }]),
      calculateRoutes(`
    - timeout: 500ms
      route: [{ destination: { host: calculate } }]`),
      `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: calculate }
spec:
  host: calculate
  trafficPolicy:
    outlierDetection: { consecutive5xxErrors: 3, interval: 100ms, baseEjectionTime: 1s, maxEjectionPercent: 100 }`) });
    try {
      const seen: string[] = [];
      while ((tally(seen).timeout ?? 0) < 3) {
        const res = await mesh.fetch('http://calculate:8000/');
        seen.push(res.status === 504 ? 'timeout' : await res.text());
        assert.ok(seen.length < 20, 'cat should have timed out three times');
      }
      const catHits = cat.hits;
      const after: string[] = [];
      for (let i = 0; i < 20; i++) after.push(await (await mesh.fetch('http://calculate:8000/')).text());
      assert.deepEqual(tally(after), { dog: 20 });
      assert.equal(cat.hits, catHits, 'no request reaches the ejected cat');
      const catHost = mesh.clusters().flatMap((c) => c.hosts).find((h) => h.address === `127.0.0.1:${cat.port}`);
      assert.equal(catHost?.ejected, true);
      assert.match(String(catHost?.ejectionReason), /CONSECUTIVE/);
      await new Promise((r) => setTimeout(r, 1300));
      const later: string[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await mesh.fetch('http://calculate:8000/');
        later.push(res.status === 504 ? 'timeout' : await res.text());
      }
      assert.ok(cat.hits > 3, 'cat gets traffic again after the ejection time');
    } finally {
      await mesh.close();
    }
  });

  it('answers overflow at once with 503/UO: maxConnections 1 + http1MaxPendingRequests 1, 10 concurrent slow calls', async () => {
    const slow = await sleeper('slow', 300);
    const mesh = await createMesh({ config: docs(calculateService([{ port: slow.port, version: 'v' }]), `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: calculate }
spec:
  host: calculate
  trafficPolicy:
    connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } }`) });
    try {
      const done: string[] = [];
      const results = await Promise.all(Array.from({ length: 10 }, async () => {
        const res = await mesh.request('http://calculate:8000/');
        await res.body.text();
        done.push(res.statusCode === 200 ? 'ok' : 'overflow');
        return { status: res.statusCode, flag: res.headers['x-meshlet-flags'] };
      }));
      const overflow = results.filter((r) => r.status === 503 && r.flag === 'UO');
      assert.equal(overflow.length, 8);
      // Overflow is answered at once: all eight before the slow upstream answers either admitted request.
      assert.deepEqual(done, [...Array(8).fill('overflow'), 'ok', 'ok']);
      assert.equal(results.filter((r) => r.status === 200).length, 2);
    } finally {
      await mesh.close();
    }
  });

  it('answers the 6th call in a minute with 429/RL from a local token bucket of 5', async () => {
    const up = await server('up');
    const mesh = await createMesh({ config: docs(calculateService([{ port: up.port, version: 'v' }]), `
apiVersion: meshlet.dev/v1alpha1
kind: RateLimit
metadata: { name: calculate-limit }
spec:
  host: calculate.default.svc.cluster.local
  local: { tokenBucket: { maxTokens: 5, tokensPerFill: 5, fillInterval: 60s } }`) });
    try {
      const statuses: number[] = [];
      let last: Record<string, unknown> = {};
      for (let i = 0; i < 6; i++) {
        const res = await mesh.request('http://calculate:8000/');
        await res.body.text();
        statuses.push(res.statusCode);
        last = res.headers;
      }
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
      assert.equal(last['x-meshlet-flags'], 'RL');
      assert.equal(last['x-ratelimit-limit'], '5');
      assert.equal(up.hits, 5);
    } finally {
      await mesh.close();
    }
  });

  it('mirrors to a hanging shadow without slowing the caller; the copy carries the -shadow host', async () => {
    const up = await server('up');
    const shadow = await sleeper('shadow', 5000);
    const mesh = await createMesh({ config: docs(calculateService([{ port: up.port, version: 'v1' }, { port: shadow.port, version: 'v2' }]), `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: calculate }
spec:
  host: calculate
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]`, calculateRoutes(`
    - route: [{ destination: { host: calculate, subset: v1 } }]
      mirror: { host: calculate, subset: v2 }
      mirrorPercentage: { value: 100 }`)) });
    try {
      const started = performance.now();
      for (let i = 0; i < 5; i++) assert.equal(await (await mesh.fetch('http://calculate:8000/')).text(), 'up');
      assert.ok(performance.now() - started < 1000, 'the hanging mirror does not slow the caller');
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(shadow.hits, 5);
      assert.equal(shadow.lastHeaders?.host, 'calculate-shadow:8000');
    } finally {
      await mesh.close();
    }
  });
});
