/**
 * The SDK (createMesh in control-plane mode) against our control plane, with
 * real loopback HTTP and gRPC servers: live split changes with no failed
 * request, NACKs that leave the old routes serving, a control-plane restart,
 * and a cluster whose EDS never arrives.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { createMesh, type Mesh } from '../../src/index.js';
import { createControlPlane } from '../../src/control-plane/index.js';
import { TYPE_URL } from '../../src/config/envoy.js';
import { startServer } from '../helpers/http-servers.js';
import { calculateYaml, configDir, EchoClient, startEcho, waitFor } from './helpers.js';
import { startFakeAds } from '../xds/fake-ads-server.js';

const quiet = () => {};
const URL_ = 'http://shop.default.svc.cluster.local:8000/items';
const workload = { name: 'client', namespace: 'default', labels: { app: 'client', version: 'v1' }, serviceAccount: 'client' };

function shopYaml(ports: { v1: number; v2: number }, weights: { v1: number; v2: number }): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }]
  endpoints:
    - { address: 127.0.0.1, ports: { http: ${ports.v1} }, labels: { app: shop, version: v1 } }
    - { address: 127.0.0.1, ports: { http: ${ports.v2} }, labels: { app: shop, version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: shop, namespace: default }
spec:
  host: shop
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop]
  http:
    - route:
        - { destination: { host: shop, subset: v1 }, weight: ${weights.v1} }
        - { destination: { host: shop, subset: v2 }, weight: ${weights.v2} }
`;
}

/**
 * A steady request loop (4 in flight, bounded by count and time) recording
 * every answer; `stop()` ends it and returns the tally.
 */
function steadyLoad(mesh: Mesh, maxRequests = 20_000, maxMs = 10_000) {
  // `startedAt` lets a test pick the requests that began after an event: a request in flight across a
  // config push may still finish on the old snapshot (in-flight requests keep the snapshot they started with).
  const answers: Array<{ startedAt: number; at: number; body: string; status: number }> = [];
  const failures: string[] = [];
  let stopped = false;
  const deadline = Date.now() + maxMs;
  const worker = async () => {
    while (!stopped && answers.length + failures.length < maxRequests && Date.now() < deadline) {
      const startedAt = Date.now();
      try {
        const res = await mesh.fetch(URL_);
        const body = await res.text();
        if (res.status !== 200) failures.push(`${res.status} ${res.headers.get('x-meshlet-flags')} ${body}`);
        else answers.push({ startedAt, at: Date.now(), body, status: res.status });
      } catch (err) {
        failures.push((err as Error).message);
      }
      await new Promise((r) => setImmediate(r));
    }
  };
  const workers = Promise.all([worker(), worker(), worker(), worker()]);
  return {
    answers,
    failures,
    async stop() {
      stopped = true;
      await workers;
    },
  };
}

async function setup(t: import('node:test').TestContext, weights = { v1: 100, v2: 0 }) {
  const v1 = await startServer('v1');
  const v2 = await startServer('v2');
  const cfg = await configDir({ 'shop.yaml': shopYaml({ v1: v1.port, v2: v2.port }, weights) });
  const cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', log: quiet, debounceMs: 50 });
  const mesh = await createMesh({ workload, xds: { server: `127.0.0.1:${cp.port}`, initialFetchTimeoutMs: 300 } });
  const state = { cp, mesh };
  t.after(async () => {
    await state.mesh.close();
    await state.cp.close();
    await Promise.all([v1.close(), v2.close()]);
    await cfg.remove();
  });
  return { v1, v2, cfg, state };
}

const tallyOf = (answers: Array<{ body: string }>) => answers.reduce<Record<string, number>>((acc, a) => ((acc[a.body] = (acc[a.body] ?? 0) + 1), acc), {});

test('a file change moves the split 100/0 → 0/100, with no failed request', async (t) => {
  const { v1, v2, cfg, state } = await setup(t);
  const load = steadyLoad(state.mesh);
  await waitFor(() => load.answers.length >= 50, 10_000, 'traffic');
  assert.deepEqual(Object.keys(tallyOf(load.answers)), ['v1']);

  const changedAt = Date.now();
  await cfg.write('shop.yaml', shopYaml({ v1: v1.port, v2: v2.port }, { v1: 0, v2: 100 }));
  const firstV2 = await waitFor(() => load.answers.find((a) => a.body === 'v2'), 10_000, 'v2 answers');
  // Requests that started once a v2 answer was back run on the new snapshot; wait for enough of them
  // rather than for a time window, so a fast machine cannot leave the window empty.
  const startedAfter = () => load.answers.filter((a) => a.startedAt > firstV2.at);
  await waitFor(() => startedAfter().length >= 50, 10_000, 'traffic after the change');
  await load.stop();

  const latency = firstV2.at - changedAt;
  t.diagnostic(`file write → SDK split changed: ${latency} ms; ${load.answers.length} requests, ${load.failures.length} failed`);
  // A generous bound (the file watcher's quiet period plus one push); the measured latency is reported above.
  assert.ok(latency < 5000, `split changed after ${latency} ms`);
  assert.deepEqual(load.failures, []);
  assert.deepEqual(Object.keys(tallyOf(startedAfter())), ['v2'], 'every request started after the switch went to v2');
  const xds = state.mesh.xdsStatus()!;
  assert.equal(xds.connected, true);
  assert.equal(xds.lastNack, undefined);
});

test('invalid config at a steady rate: the control plane keeps the last good config, a resource the SDK rejects is NACKed, 0 failures', async (t) => {
  const { v1, v2, cfg, state } = await setup(t, { v1: 0, v2: 100 });
  const load = steadyLoad(state.mesh);
  await waitFor(() => load.answers.length >= 50, 3000, 'traffic');

  // 1. a file the control plane cannot validate: rejected there, nothing pushed
  // (a negative weight: Istio's validateHTTPRouteDestinations refuses it)
  await cfg.write('broken.yaml', 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: broken, namespace: default }\nspec: { hosts: [shop], http: [{ route: [{ destination: { host: shop, subset: v1 }, weight: -5 }] }] }\n');
  const problem = await waitFor(() => state.cp.status().configError, 10_000, 'config error on the control plane');
  assert.equal(problem.kind, 'VirtualService');
  assert.match(problem.path ?? '', /^spec\.http\[0\]\.route\[0\]\.weight/);

  // 2. a file the control plane accepts but whose EDS the SDK rejects (an endpoint without an address): NACK
  await cfg.write('broken.yaml', `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: legacy, namespace: default }
spec:
  hosts: [legacy.example.com]
  resolution: DNS
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [{ address: '' }]
`);
  const nack = await waitFor(() => state.mesh.xdsStatus()?.lastNack, 3000, 'NACK');
  assert.equal(nack.typeUrl, TYPE_URL.endpoint);
  assert.match(nack.message, /ClusterLoadAssignment outbound\|80\|\|legacy\.example\.com: .*socket_address\.address: required/);
  assert.notEqual(nack.rejectedVersion, nack.version, 'the previous EDS version stays in use');
  await waitFor(() => state.cp.syncz()[0]?.lastNack, 2000, 'NACK on /debug/syncz');
  assert.equal(state.cp.syncz()[0]!.lastNack!.nonce, nack.nonce);

  const count = load.answers.length;
  await waitFor(() => load.answers.length >= count + 100, 3000, 'traffic after the NACK');
  await load.stop();
  t.diagnostic(`${load.answers.length} requests while pushing bad config, ${load.failures.length} failed`);
  assert.deepEqual(load.failures, []);
  assert.deepEqual(Object.keys(tallyOf(load.answers)), ['v2'], 'the old routes kept serving');
  assert.ok(v1.hits === 0 && v2.hits === load.answers.length);
});

test('killing the control plane leaves traffic flowing; a restarted one is reconnected to and its change picked up', async (t) => {
  const { v1, v2, cfg, state } = await setup(t);
  const port = state.cp.port;
  const load = steadyLoad(state.mesh);
  await waitFor(() => load.answers.length >= 20, 3000, 'traffic');

  await state.cp.close();
  await waitFor(() => state.mesh.xdsStatus()?.connected === false, 3000, 'disconnect seen');
  const count = load.answers.length;
  await waitFor(() => load.answers.length >= count + 100, 3000, 'traffic while the control plane is down');

  await cfg.write('shop.yaml', shopYaml({ v1: v1.port, v2: v2.port }, { v1: 0, v2: 100 }));
  const restartedAt = Date.now();
  state.cp = await createControlPlane({ config: cfg.dir, port, host: '127.0.0.1', log: quiet, debounceMs: 50 });
  const firstV2 = await waitFor(() => load.answers.find((a) => a.body === 'v2'), 8000, 'v2 after reconnect');
  await load.stop();
  const status = state.mesh.xdsStatus()!;
  t.diagnostic(`reconnected and switched ${firstV2.at - restartedAt} ms after the restart (reconnects: ${status.reconnects}); ${load.failures.length} failed of ${load.answers.length + load.failures.length}`);
  assert.equal(status.connected, true);
  assert.ok(status.reconnects >= 1);
  assert.deepEqual(load.failures, []);
});

test('a cluster whose EDS never arrives answers 503 NC naming it after the bounded wait', async (t) => {
  const ads = await startFakeAds();
  t.after(() => ads.close());
  const name = 'shop.default.svc.cluster.local:8000';
  const cluster = 'outbound|8000||shop.default.svc.cluster.local';
  const serve = (async () => {
    await ads.next((r) => r.type_url === TYPE_URL.listener);
    ads.respond(TYPE_URL.listener, 'l1', 'n1', [{
      name,
      api_listener: { api_listener: { '@type': TYPE_URL.httpConnectionManager, stat_prefix: name, rds: { route_config_name: name, config_source: { ads: {} } }, http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': TYPE_URL.router } }] } },
    }]);
    await ads.next((r) => r.type_url === TYPE_URL.route && (r.resource_names ?? []).includes(name));
    ads.respond(TYPE_URL.route, 'r1', 'n3', [{ name, virtual_hosts: [{ name, domains: ['shop.default.svc.cluster.local:8000'], routes: [{ match: { prefix: '/' }, route: { cluster } }] }] }]);
    // CDS by the name the route gives (no wildcard CDS)
    await ads.next((r) => r.type_url === TYPE_URL.cluster && (r.resource_names ?? []).includes(cluster));
    ads.respond(TYPE_URL.cluster, 'c1', 'n2', [{ name: cluster, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} }, service_name: cluster } }]);
    // EDS for the cluster is requested but never answered
    await ads.next((r) => r.type_url === TYPE_URL.endpoint && (r.resource_names ?? []).includes(cluster));
  })();
  const started = Date.now();
  const mesh = await createMesh({ workload, xds: { server: `127.0.0.1:${ads.port}`, initialFetchTimeoutMs: 300 } });
  t.after(() => mesh.close());
  await serve;
  const res = await mesh.fetch(URL_);
  const body = await res.text();
  const elapsed = Date.now() - started;
  assert.equal(res.status, 503);
  assert.equal(res.headers.get('x-meshlet-flags'), 'NC');
  assert.ok(body.includes(cluster), body);
  // The initial-fetch timeout (300 ms) answers, not the 15 s default: generous, far below the default.
  assert.ok(elapsed < 10_000, `answered after ${elapsed} ms`);
  assert.deepEqual(mesh.xdsStatus()!.missing, [`ClusterLoadAssignment ${cluster}`]);
});

test('the gRPC side (mesh.grpc.clientOptions()) follows the same pushed config', async (t) => {
  const e1 = await startEcho('v1');
  const e2 = await startEcho('v2');
  const cfg = await configDir({ 'calculate.yaml': calculateYaml({ v1: e1.port, v2: e2.port }, { v1: 100, v2: 0 }) });
  const cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', log: quiet, debounceMs: 50 });
  const mesh = await createMesh({ workload, xds: { server: `127.0.0.1:${cp.port}` } });
  const client = new EchoClient('calculate.default.svc.cluster.local:9000', grpc.credentials.createInsecure(), mesh.grpc.clientOptions());
  t.after(async () => {
    client.close();
    await mesh.close();
    await cp.close();
    e1.close();
    e2.close();
    await cfg.remove();
  });
  const who = (md = new grpc.Metadata()) => new Promise<string>((resolve, reject) =>
    (client as unknown as { Who(req: unknown, md: grpc.Metadata, cb: (err: Error | null, res?: { version: string }) => void): void })
      .Who({}, md, (err, res) => (err ? reject(err) : resolve(res!.version))));
  const batch = async (n: number, md?: grpc.Metadata) => tallyOf(await Promise.all(Array.from({ length: n }, async () => ({ body: await who(md) }))));

  assert.deepEqual(await batch(20), { v1: 20 });
  const dog = new grpc.Metadata();
  dog.set('version', 'dog');
  assert.deepEqual(await batch(10, dog), { v2: 10 }, 'header route');

  const changedAt = Date.now();
  await cfg.write('calculate.yaml', calculateYaml({ v1: e1.port, v2: e2.port }, { v1: 0, v2: 100 }));
  let switched = false;
  for (let i = 0; i < 200 && !switched && Date.now() - changedAt < 3000; i++) {
    switched = (await who()) === 'v2';
    if (!switched) await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(switched, 'gRPC calls moved to v2');
  t.diagnostic(`gRPC split changed ${Date.now() - changedAt} ms after the write`);
  assert.deepEqual(await batch(20), { v2: 20 });
  assert.ok(Date.now() - changedAt < 3000);
});
