import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createMesh, MeshConfigError, seededRandom, type Mesh } from '../../src/index.js';
import { startServer, tally, type TestServer } from '../helpers/http-servers.js';
import { calculateRoutes, calculateService, calculateSubsets, docs } from '../helpers/mesh-config.js';

const URL_ADD = 'http://calculate.default.svc.cluster.local:8000/add?x=1&y=2';

describe('routing over real loopback servers', () => {
  let cat: TestServer;
  let dog: TestServer;
  let service: string;

  before(async () => {
    cat = await startServer('cat');
    dog = await startServer('dog');
    service = calculateService([{ port: cat.port, version: 'cat-plus' }, { port: dog.port, version: 'dog-multi' }]);
  });
  after(async () => {
    await Promise.all([cat.close(), dog.close()]);
  });

  async function bodies(mesh: Mesh, n: number, url = URL_ADD, headers: Record<string, string> = {}): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i += 50) {
      const batch = await Promise.all(Array.from({ length: Math.min(50, n - i) }, async () => {
        const res = await mesh.request(url, { headers });
        return res.body.text();
      }));
      out.push(...batch);
    }
    return out;
  }

  it('splits 90/10 within ±3 points over 2,000 requests', async () => {
    const mesh = await createMesh({
      random: seededRandom(42),
      config: docs(service, calculateSubsets, calculateRoutes(`
    - route:
        - { destination: { host: calculate, subset: cat-with-plus }, weight: 90 }
        - { destination: { host: calculate, subset: dog-with-multi }, weight: 10 }`)),
    });
    try {
      const counts = tally(await bodies(mesh, 2000));
      const catShare = (counts.cat ?? 0) / 2000;
      assert.ok(Math.abs(catShare - 0.9) <= 0.03, `cat share ${catShare}`);
      assert.equal((counts.cat ?? 0) + (counts.dog ?? 0), 2000);
    } finally {
      await mesh.close();
    }
  });

  // Istio accepts any total above 0 (pkg/config/validation/validation.go validateHTTPRouteDestinations, istio/istio
  // 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c) and writes the weights as they are; Envoy splits by their sum.
  it('splits weights 1 and 2 (total 3) one third / two thirds within ±3 points over 2,100 requests', async () => {
    const mesh = await createMesh({
      random: seededRandom(7),
      config: docs(service, calculateSubsets, calculateRoutes(`
    - route:
        - { destination: { host: calculate, subset: cat-with-plus }, weight: 1 }
        - { destination: { host: calculate, subset: dog-with-multi }, weight: 2 }`)),
    });
    try {
      const weighted = mesh.configDump().routes.find((r) => r.name === 'calculate.default.svc.cluster.local:8000')!.virtual_hosts[0]!.routes[0]!.route!.weighted_clusters!;
      assert.deepEqual(weighted.clusters.map((c) => c.weight?.value), [1, 2]);
      const counts = tally(await bodies(mesh, 2100));
      assert.equal((counts.cat ?? 0) + (counts.dog ?? 0), 2100);
      const catShare = (counts.cat ?? 0) / 2100;
      assert.ok(Math.abs(catShare - 1 / 3) <= 0.03, `cat share ${catShare}`);
    } finally {
      await mesh.close();
    }
  });

  it('sends everything to a lone destination whatever its weight (Istio: one destination is the whole route)', async () => {
    const mesh = await createMesh({
      config: docs(service, calculateSubsets, calculateRoutes(`
    - route: [{ destination: { host: calculate, subset: dog-with-multi }, weight: 0 }]`)),
    });
    try {
      assert.deepEqual(tally(await bodies(mesh, 100)), { dog: 100 });
    } finally {
      await mesh.close();
    }
  });

  it('sends everything to v2 with weights 0/100 (blue/green)', async () => {
    const mesh = await createMesh({
      config: docs(service, calculateSubsets, calculateRoutes(`
    - route:
        - { destination: { host: calculate, subset: cat-with-plus }, weight: 0 }
        - { destination: { host: calculate, subset: dog-with-multi }, weight: 100 }`)),
    });
    try {
      assert.deepEqual(tally(await bodies(mesh, 300)), { dog: 300 });
    } finally {
      await mesh.close();
    }
  });

  it('routes the version: dog header to dog-with-multi and everything else to cat-with-plus (dark release)', async () => {
    const mesh = await createMesh({
      config: docs(service, calculateSubsets, calculateRoutes(`
    - match: [{ headers: { version: { exact: dog } } }]
      route: [{ destination: { host: calculate, subset: dog-with-multi } }]
    - route: [{ destination: { host: calculate, subset: cat-with-plus } }]`)),
    });
    try {
      assert.deepEqual(tally(await bodies(mesh, 200, URL_ADD, { version: 'dog' })), { dog: 200 });
      assert.deepEqual(tally(await bodies(mesh, 200)), { cat: 200 });
      const viaFetch = await mesh.fetch(URL_ADD, { headers: { Version: 'dog' } });
      assert.equal(await viaFetch.text(), 'dog');
    } finally {
      await mesh.close();
    }
  });

  it('expands short names and keeps the service authority as Host', async () => {
    const mesh = await createMesh({ workload: { name: 'client', namespace: 'default' }, config: docs(service, calculateSubsets, calculateRoutes(`
    - route: [{ destination: { host: calculate, subset: cat-with-plus } }]`)) });
    try {
      for (const url of ['http://calculate:8000/a', 'http://calculate.default:8000/a', 'http://calculate.default.svc:8000/a']) {
        const res = await mesh.request(url);
        assert.equal(await res.body.text(), 'cat', url);
      }
      assert.equal(cat.lastHeaders?.host, 'calculate.default.svc:8000');
    } finally {
      await mesh.close();
    }
  });

  it('matches uri prefix/exact/regex, query params and method; first match wins', async () => {
    const mesh = await createMesh({
      config: docs(service, calculateSubsets, calculateRoutes(`
    - match: [{ uri: { exact: /exact } }, { uri: { regex: '/re/[0-9]+' } }]
      route: [{ destination: { host: calculate, subset: dog-with-multi } }]
    - match: [{ queryParams: { pet: { exact: dog } } }]
      route: [{ destination: { host: calculate, subset: dog-with-multi } }]
    - match: [{ method: { exact: DELETE }, uri: { prefix: /m } }]
      route: [{ destination: { host: calculate, subset: dog-with-multi } }]
    - match: [{ uri: { prefix: /v2 } }]
      rewrite: { uri: /api }
      route: [{ destination: { host: calculate, subset: dog-with-multi } }]
    - route: [{ destination: { host: calculate, subset: cat-with-plus } }]`)),
    });
    const get = async (path: string, method: 'GET' | 'DELETE' = 'GET') => (await mesh.request(`http://calculate:8000${path}`, { method })).body.text();
    try {
      assert.equal(await get('/exact'), 'dog');
      assert.equal(await get('/exact/more'), 'cat');
      assert.equal(await get('/re/123'), 'dog');
      assert.equal(await get('/re/abc'), 'cat');
      assert.equal(await get('/x?pet=dog'), 'dog');
      assert.equal(await get('/x?pet=cat'), 'cat');
      assert.equal(await get('/m', 'DELETE'), 'dog');
      assert.equal(await get('/m'), 'cat');
      assert.equal(await get('/v2/add?x=1'), 'dog');
      assert.equal(dog.lastUrl, '/api/add?x=1');
    } finally {
      await mesh.close();
    }
  });

  it('matches RE2 regexes: (?i) works, a nested quantifier over a long path answers (old RegExp hung)', async () => {
    const mesh = await createMesh({
      config: docs(service, calculateSubsets, calculateRoutes(`
    - match: [{ uri: { regex: '/(a+)+$' } }, { uri: { regex: '(?i)/case/.*' } }]
      route: [{ destination: { host: calculate, subset: dog-with-multi } }]
    - route: [{ destination: { host: calculate, subset: cat-with-plus } }]`)),
    });
    const get = async (path: string) => (await mesh.request(`http://calculate.default.svc.cluster.local:8000${path}`)).body.text();
    try {
      assert.equal(await get(`/${'a'.repeat(4000)}b`), 'cat');
      assert.equal(await get(`/${'a'.repeat(4000)}`), 'dog');
      assert.equal(await get('/CASE/x'), 'dog');
      assert.equal(await get('/cases'), 'cat');
    } finally {
      await mesh.close();
    }
  });

  it('keeps a dotted external host as written in routes and metric labels (no .svc.cluster.local)', async () => {
    const lan = service.replace('calculate.default.svc.cluster.local', 'myapp.lan').replace('name: calculate', 'name: lan');
    const mesh = await createMesh({ workload: { name: 'client', namespace: 'default' }, config: lan });
    try {
      assert.equal(await (await mesh.request('http://myapp.lan:8000/')).body.text() !== '', true);
      const text = await mesh.metrics();
      assert.match(text, /istio_requests_total\{[^}]*destination_service="myapp\.lan"/);
      assert.match(text, /destination_service_name="myapp\.lan"/);
      assert.doesNotMatch(text, /myapp\.lan\.svc\.cluster\.local/);
      assert.ok(mesh.configDump().clusters.some((c) => c.name === 'outbound|8000||myapp.lan'));
    } finally {
      await mesh.close();
    }
  });

  it('adds, sets and removes request and response headers', async () => {
    const mesh = await createMesh({
      config: docs(service, calculateSubsets, calculateRoutes(`
    - headers:
        request: { set: { x-set: one }, add: { x-added: two }, remove: [x-secret] }
        response: { set: { x-resp: three }, remove: [content-type] }
      route: [{ destination: { host: calculate, subset: cat-with-plus } }]`)),
    });
    try {
      const res = await mesh.request('http://calculate:8000/h', { headers: { 'x-secret': 's', 'x-set': 'old' } });
      await res.body.text();
      assert.equal(cat.lastHeaders?.['x-set'], 'one');
      assert.equal(cat.lastHeaders?.['x-added'], 'two');
      assert.equal(cat.lastHeaders?.['x-secret'], undefined);
      assert.equal(res.headers['x-resp'], 'three');
      assert.equal(res.headers['content-type'], undefined);
    } finally {
      await mesh.close();
    }
  });

  it('passes unknown hosts through under ALLOW_ANY and answers 502 NR under REGISTRY_ONLY', async () => {
    const open = await createMesh({ config: service });
    const closed = await createMesh({ config: service, outboundTrafficPolicy: 'REGISTRY_ONLY' });
    try {
      const passthrough = await open.request(`http://127.0.0.1:${dog.port}/`);
      assert.equal(await passthrough.body.text(), 'dog');
      const denied = await closed.fetch(`http://127.0.0.1:${dog.port}/`);
      assert.equal(denied.status, 502);
      assert.equal(denied.headers.get('x-meshlet-flags'), 'NR');
    } finally {
      await Promise.all([open.close(), closed.close()]);
    }
  });

  it('rejects a bad apply with MeshConfigError and keeps serving the old routes', async () => {
    const mesh = await createMesh({ config: docs(service, calculateSubsets, calculateRoutes(`
    - route: [{ destination: { host: calculate, subset: dog-with-multi } }]`)) });
    try {
      const before = mesh.configDump().version;
      await assert.rejects(mesh.apply(docs(service, calculateSubsets, calculateRoutes(`
    - route:
        - { destination: { host: calculate, subset: cat-with-plus }, weight: 0 }
        - { destination: { host: calculate, subset: dog-with-multi }, weight: 0 }`))), (err: unknown) => {
        assert.ok(err instanceof MeshConfigError);
        assert.equal(err.kind, 'VirtualService');
        assert.equal(err.resource, 'default/calculate');
        assert.equal(err.path, 'spec.http[0].route');
        assert.match(err.reason, /total destination weight = 0/);
        return true;
      });
      assert.equal(mesh.configDump().version, before);
      assert.deepEqual(tally(await bodies(mesh, 50)), { dog: 50 });
    } finally {
      await mesh.close();
    }
  });

  it('names clusters Istio-style in the config dump, one per DestinationRule subset as istiod builds them', async () => {
    const mesh = await createMesh({ config: docs(service, calculateSubsets) });
    try {
      const names = mesh.configDump().clusters.map((c) => c.name).sort();
      // Subset clusters exist before any route names them, so a route that starts using one never races its cluster.
      assert.deepEqual(names, [
        'outbound|8000|cat-with-plus|calculate.default.svc.cluster.local',
        'outbound|8000|dog-with-multi|calculate.default.svc.cluster.local',
        'outbound|8000||calculate.default.svc.cluster.local',
      ].sort());
      const routed = await createMesh({ config: docs(service, calculateSubsets, calculateRoutes(`
    - route: [{ destination: { host: calculate, subset: cat-with-plus } }]`)) });
      assert.ok(routed.configDump().clusters.some((c) => c.name === 'outbound|8000|cat-with-plus|calculate.default.svc.cluster.local'));
      await routed.close();
    } finally {
      await mesh.close();
    }
  });
});
