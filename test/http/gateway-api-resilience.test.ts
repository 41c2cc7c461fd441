/**
 * Gateway API rule timeouts, retries (GEP-1731), RequestMirror and
 * unresolved backends on a mesh route, against loopback servers: what the
 * caller sees, what the backends see, and the config status (Accepted /
 * ResolvedRefs) a Gateway API controller would report.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createMesh, type Mesh } from '../../src/index.js';
import { startServer, type TestServer } from '../helpers/http-servers.js';
import { registryYaml, startEchoPod, type EchoPod, type ServiceSpec } from '../helpers/gateway-api.js';

const svc = (name: string, selector: Record<string, string>): ServiceSpec => ({ name, namespace: 'default', ports: [{ name: 'http', port: 80 }], selector });

describe('Gateway API mesh routes: timeouts, retries, mirrors, unresolved backends', () => {
  let v1: EchoPod;
  let v2: EchoPod;
  let hanging: TestServer;
  let flaky: TestServer;
  let failuresLeft = 0;
  let registry: string;
  before(async () => {
    v1 = await startEchoPod('echo-v1-0', 'default', { app: 'echo', version: 'v1' });
    v2 = await startEchoPod('echo-v2-0', 'default', { app: 'echo', version: 'v2' });
    // Answers only when the test ends: a timeout is the only way the request finishes early.
    hanging = await startServer('hanging', () => undefined);
    flaky = await startServer('flaky', (_req, res, server) => {
      if (failuresLeft > 0) {
        failuresLeft--;
        res.statusCode = 500;
        res.end('fail');
      } else res.end(server.name);
    });
    registry = registryYaml([svc('echo', { app: 'echo' }), svc('echo-v1', { app: 'echo', version: 'v1' }), svc('echo-v2', { app: 'echo', version: 'v2' })], [v1, v2]) + `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: slow, namespace: default }
spec:
  hosts: [slow]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${hanging.port} } }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: flaky, namespace: default }
spec:
  hosts: [flaky]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${flaky.port} } }]
`;
  });
  after(async () => {
    await Promise.all([v1.server.close(), v2.server.close(), hanging.close(), flaky.close()]);
  });

  const route = (parent: string, rule: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ${parent}-route, namespace: default }
spec:
  parentRefs: [{ group: "", kind: Service, name: ${parent} }]
  rules:
  - ${rule.trim().split('\n').join('\n    ')}
`;

  async function withMesh(config: string, fn: (mesh: Mesh) => Promise<void>): Promise<void> {
    const mesh = await createMesh({ workload: { name: 'client', namespace: 'default', labels: { app: 'client' } }, config: `${registry}---\n${config}` });
    try {
      await fn(mesh);
    } finally {
      await mesh.close();
    }
  }

  it('timeouts.request: the route times out with 504 UT', () => withMesh(route('slow', `
timeouts: { request: 200ms }
backendRefs: [{ name: slow, port: 80 }]`), async (mesh) => {
    const res = await mesh.request('http://slow/');
    await res.body.text();
    assert.equal(res.statusCode, 504);
    assert.equal(res.headers['x-meshlet-flags'], 'UT');
  }));

  it('timeouts.request 0s means no timeout: the route has none', () => withMesh(route('slow', `
timeouts: { request: 0s }
backendRefs: [{ name: slow, port: 80 }]`), async (mesh) => {
    const action = mesh.configDump().routes.find((r) => r.name === 'slow.default.svc.cluster.local:80')!.virtual_hosts[0]!.routes[0]!.route!;
    assert.deepEqual(action.timeout, { seconds: 0, nanos: 0 });
  }));

  it('retry: attempts and codes retry a 500 until it succeeds; backoff and backendRequest land in the retry policy', () => withMesh(route('flaky', `
retry: { attempts: 3, codes: [500], backoff: 10ms }
timeouts: { request: 10s, backendRequest: 2s }
backendRefs: [{ name: flaky, port: 80 }]`), async (mesh) => {
    const policy = mesh.configDump().routes.find((r) => r.name === 'flaky.default.svc.cluster.local:80')!.virtual_hosts[0]!.routes[0]!.route!.retry_policy!;
    assert.equal(policy.num_retries?.value, 3);
    assert.deepEqual(policy.retriable_status_codes, [500]);
    assert.equal(policy.retry_on, 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes');
    assert.deepEqual(policy.retry_back_off, { base_interval: { seconds: 0, nanos: 10_000_000 } });
    assert.deepEqual(policy.per_try_timeout, { seconds: 2, nanos: 0 });
    failuresLeft = 2;
    const before = flaky.hits;
    const res = await mesh.request('http://flaky/');
    assert.equal(await res.body.text(), 'flaky');
    assert.equal(res.statusCode, 200);
    assert.equal(flaky.hits - before, 3);
  }));

  it('retry attempts 0: a 500 is returned as it is', () => withMesh(route('flaky', `
retry: { attempts: 0 }
backendRefs: [{ name: flaky, port: 80 }]`), async (mesh) => {
    failuresLeft = 1;
    const before = flaky.hits;
    const res = await mesh.request('http://flaky/');
    await res.body.text();
    assert.equal(res.statusCode, 500);
    assert.equal(flaky.hits - before, 1);
    failuresLeft = 0;
  }));

  it('RequestMirror: the mirror backend gets a copy, the caller the primary\'s answer', () => withMesh(route('echo', `
filters: [{ type: RequestMirror, requestMirror: { backendRef: { name: echo-v2, port: 80 } } }]
backendRefs: [{ name: echo-v1, port: 80 }]`), async (mesh) => {
    const mirrored = v2.server.hits;
    const res = await mesh.request('http://echo/mirror-me');
    assert.equal(JSON.parse(await res.body.text()).pod, 'echo-v1-0');
    // The copy is sent in the background: wait for it (bounded).
    for (let i = 0; i < 200 && v2.server.hits === mirrored; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(v2.server.hits, mirrored + 1);
    assert.equal(v2.server.lastUrl, '/mirror-me');
  }));

  it('an unresolved backend gets its share of 500s; status: ResolvedRefs=False (BackendNotFound)', () => withMesh(route('echo', `
backendRefs: [{ name: echo-v9, port: 80 }]`), async (mesh) => {
    const res = await mesh.request('http://echo/');
    await res.body.text();
    assert.equal(res.statusCode, 500);
    const status = mesh.configStatus().find((s) => s.kind === 'HTTPRoute')!;
    assert.equal(status.status, 'partial');
    assert.deepEqual(status.warnings.map((w) => w.code), ['MESHLET_ROUTE_UNRESOLVED_REFS']);
    assert.deepEqual(status.conditions?.map((c) => [c.parent, c.type, c.status, c.reason]), [
      ['Service/default/echo', 'Accepted', 'True', 'Accepted'],
      ['Service/default/echo', 'ResolvedRefs', 'False', 'BackendNotFound'],
    ]);
  }));

  it('every backend weight 0: 500, as the Gateway API requires', () => withMesh(route('echo', `
backendRefs: [{ name: echo-v1, port: 80, weight: 0 }]`), async (mesh) => {
    const res = await mesh.request('http://echo/');
    await res.body.text();
    assert.equal(res.statusCode, 500);
  }));

  it('a parent Service that does not exist: Accepted=False, and nothing is routed', () => withMesh(route('nowhere', `
backendRefs: [{ name: echo-v1, port: 80 }]`), async (mesh) => {
    const status = mesh.configStatus().find((s) => s.kind === 'HTTPRoute')!;
    assert.equal(status.status, 'partial');
    assert.deepEqual(status.warnings.map((w) => w.code), ['MESHLET_ROUTE_NOT_ACCEPTED']);
    assert.equal(status.conditions?.[0]?.status, 'False');
    assert.equal(mesh.configDump().routes.some((r) => r.name.startsWith('nowhere.')), false);
  }));
});
