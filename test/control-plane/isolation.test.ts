/**
 * Issue #16 item 1 and #14 item 3: one bad resource in the control plane's
 * directory is refused alone. A control plane restarted on a directory with
 * a bad file used to serve an empty config (every namespace's translation
 * failed, or the whole directory failed validation), the mesh ACKed it, and
 * most requests failed. Now the good resources keep serving and the bad one
 * is reported per resource.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh, type Mesh } from '../../src/index.js';
import { createControlPlane } from '../../src/control-plane/index.js';
import type { ResourceStatus } from '../../src/config/admission.js';
import { startServer } from '../helpers/http-servers.js';
import { configDir, waitFor } from './helpers.js';

const workload = { name: 'client', namespace: 'default', labels: { app: 'client' } };
const URL_ = 'http://shop.default.svc.cluster.local:8000/items';

const shopYaml = (port: number, version = 'v1') => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop.default.svc.cluster.local]
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${port} }, labels: { version: ${version} } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop]
  http: [{ timeout: 5s, route: [{ destination: { host: shop } }] }]
`;

/**
 * Two ways one file goes bad: a route whose only destination is missing
 * (validation refuses it), and a RateLimit that validates but that the
 * translator refuses (Envoy's 50 ms floor on fillInterval) — which used to
 * fail the translation of every namespace.
 */
const badYaml = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: broken, namespace: default }
spec:
  hosts: [broken]
  http: [{ route: [{ weight: 100 }] }]
---
apiVersion: meshlet.dev/v1alpha1
kind: RateLimit
metadata: { name: too-fast, namespace: default }
spec:
  host: shop
  local: { tokenBucket: { maxTokens: 100000, tokensPerFill: 100000, fillInterval: 10ms } }
`;

/** A bounded steady load: 2 in flight, at most `max` requests or `ms` milliseconds. */
function steadyLoad(mesh: Mesh, max = 400, ms = 10_000) {
  const failures: string[] = [];
  let ok = 0;
  const deadline = Date.now() + ms;
  const worker = async () => {
    while (ok + failures.length < max && Date.now() < deadline) {
      try {
        const res = await mesh.fetch(URL_);
        const body = await res.text();
        if (res.status === 200) ok++;
        else failures.push(`${res.status} ${res.headers.get('x-meshlet-flags')} ${body}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  const done = Promise.all([worker(), worker()]);
  return { done: done.then(() => ({ ok, failures })) };
}

const find = (statuses: ResourceStatus[], kind: string, name: string) => statuses.find((s) => s.kind === kind && s.name === name);

test('#16: a control plane restarted on a directory with one bad file keeps serving the good resources, 0 failed requests', async (t) => {
  const shop = await startServer('shop');
  const cfg = await configDir({ 'shop.yaml': shopYaml(shop.port) });
  const logged: string[] = [];
  const log = (level: string, m: string) => { if (level !== 'info') logged.push(m); };
  let cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', log, debounceMs: 50, debugPort: 0 });
  const port = cp.port;
  const mesh = await createMesh({ workload, xds: { server: `127.0.0.1:${port}`, initialFetchTimeoutMs: 300 } });
  t.after(async () => { await mesh.close(); await cp.close(); await shop.close(); await cfg.remove(); });
  assert.equal((await mesh.fetch(URL_)).status, 200);

  // The restart: the control plane goes down, a bad file lands, it comes back on the same port.
  await cp.close();
  await waitFor(() => mesh.xdsStatus()?.connected === false, 5000, 'disconnect seen');
  await cfg.write('bad.yaml', badYaml);
  cp = await createControlPlane({ config: cfg.dir, port, host: '127.0.0.1', log, debounceMs: 50, debugPort: 0 });
  await waitFor(() => mesh.xdsStatus()?.connected === true && cp.syncz()[0]?.types.RDS?.acked, 10_000, 'reconnected and ACKed');

  const { ok, failures } = await steadyLoad(mesh).done;
  t.diagnostic(`${ok} requests after the restart, ${failures.length} failed`);
  assert.ok(ok > 0);
  assert.deepEqual(failures, []);
  assert.ok(cp.configDump('default').routes.some((r) => r.name === 'shop.default.svc.cluster.local:8000'), 'the good route is served');

  const statuses = cp.configStatus();
  assert.equal(find(statuses, 'VirtualService', 'shop')?.status, 'applied');
  assert.equal(find(statuses, 'ServiceEntry', 'shop')?.status, 'applied');
  const broken = find(statuses, 'VirtualService', 'broken')!;
  assert.equal(broken.status, 'rejected');
  assert.deepEqual(broken.warnings.map((w) => [w.path, w.code]), [['spec.http[0].route[0].destination', 'MESHLET_INVALID']]);
  assert.match(broken.source?.file ?? '', /bad\.yaml$/);
  assert.equal(broken.source?.document, 0);
  const tooFast = find(statuses, 'RateLimit', 'too-fast')!;
  assert.equal(tooFast.status, 'rejected');
  assert.equal(tooFast.warnings.at(-1)?.code, 'MESHLET_TRANSLATION_FAILED');
  assert.equal(tooFast.warnings.at(-1)?.path, 'spec.local.tokenBucket.fillInterval');
  // The same on the debug endpoint, and each rejection logged (once).
  const body = await (await fetch(`http://127.0.0.1:${cp.debugPort}/debug/config_status`)).json() as ResourceStatus[];
  assert.deepEqual(body.map((s) => [s.kind, s.name, s.status]).sort(), statuses.map((s) => [s.kind, s.name, s.status]).sort());
  assert.equal(logged.filter((m) => m.includes('VirtualService default/broken')).length, 1, logged.join('\n'));
  assert.equal(logged.filter((m) => m.includes('RateLimit default/too-fast')).length, 1, logged.join('\n'));
});

test('a bad update of a served resource keeps its last good version; its neighbours in the file and other files apply', async (t) => {
  const v1 = await startServer('v1');
  const v2 = await startServer('v2');
  const other = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: other, namespace: default }
spec: { hosts: [other.example.com], resolution: DNS, ports: [{ number: 80, name: http }] }
`;
  const cfg = await configDir({ 'a-shop.yaml': shopYaml(v1.port), 'b-other.yaml': other });
  const cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', log: () => {}, debounceMs: 50 });
  t.after(async () => { await cp.close(); await v1.close(); await v2.close(); await cfg.remove(); });
  const endpointPort = () => cp.configDump('default').endpoints.find((e) => e.cluster_name === 'outbound|8000||shop.default.svc.cluster.local')
    ?.endpoints[0]?.lb_endpoints[0]?.endpoint.address.socket_address.port_value;
  assert.equal(endpointPort(), v1.port);

  // The ServiceEntry moves to v2 in the same file whose VirtualService turns invalid; the other file gains a typo.
  await cfg.write('a-shop.yaml', shopYaml(v2.port).replace('timeout: 5s', 'timeout: soon'));
  await cfg.write('b-other.yaml', `${other}---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: typo }\nspec: { host: other.example.com, trafficPolicy: { loadBalancr: {} } }\n`);
  await cp.reload();
  assert.equal(endpointPort(), v2.port, 'the valid neighbour in the same file applied');
  const statuses = cp.configStatus();
  const vs = find(statuses, 'VirtualService', 'shop')!;
  assert.equal(vs.status, 'rejected');
  assert.equal(vs.warnings[0]!.path, 'spec.http[0].timeout');
  assert.match(vs.warnings[0]!.message, /last good version keeps serving/);
  assert.ok(cp.configDump('default').routes.some((r) => r.name === 'shop.default.svc.cluster.local:8000' && r.virtual_hosts[0]!.routes[0]!.route?.timeout?.seconds === 5), 'the last good VirtualService serves');
  assert.equal(find(statuses, 'DestinationRule', 'typo')?.status, 'rejected');
  assert.equal(find(statuses, 'ServiceEntry', 'other')?.status, 'applied');
  assert.equal(cp.status().configError?.kind, 'VirtualService', 'configError names the first rejection');
});
