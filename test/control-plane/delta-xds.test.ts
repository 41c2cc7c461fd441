/**
 * Delta xDS (DeltaAggregatedResources) between meshlet's ADS client and its
 * control plane: the same config as over SotW, only changed resources on a
 * push, removals, NACK keeping the last good set, and a reconnect that
 * announces initial_resource_versions so nothing unchanged is re-sent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EnvoyResources } from '../../src/config/envoy.js';
import { createControlPlane, type ControlPlane } from '../../src/control-plane/index.js';
import { createAdsClient, type AdsClient } from '../../src/xds/ads-client.js';
import { createMesh } from '../../src/index.js';
import { startServer } from '../helpers/http-servers.js';
import { calculateYaml, configDir, waitFor } from './helpers.js';

const quiet = () => {};
const workload = { name: 'client', namespace: 'default', labels: { app: 'client' } };

interface Tracked { client: AdsClient; sets: Array<{ r: EnvoyResources; v: string }>; trace: string[] }

function connect(cp: ControlPlane | number, apiType: 'GRPC' | 'DELTA_GRPC', reject?: (r: EnvoyResources) => string | undefined): Tracked {
  const sets: Tracked['sets'] = [];
  const trace: string[] = [];
  const client = createAdsClient({
    server: `127.0.0.1:${typeof cp === 'number' ? cp : cp.port}`,
    apiType,
    workload,
    backoff: { initialMs: 50, maxMs: 400 },
    trace: (m) => trace.push(m),
    onResources: (r, v) => {
      const why = reject?.(r);
      if (why) throw new Error(why);
      sets.push({ r, v });
    },
  });
  return { client, sets, trace };
}

function v2Weight(r: EnvoyResources): number | undefined {
  const routes = r.routes[0]?.virtual_hosts[0]?.routes ?? [];
  const split = routes[routes.length - 1]?.route?.weighted_clusters?.clusters;
  return split?.find((c) => c.name.includes('|v2|'))?.weight.value;
}

/** A set with every list sorted by name, to compare two clients' sets. */
function sorted(r: EnvoyResources): EnvoyResources {
  const by = <T>(name: (x: T) => string) => (a: T, b: T) => (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0);
  return {
    listeners: [...r.listeners].sort(by((x) => x.name)),
    routes: [...r.routes].sort(by((x) => x.name)),
    clusters: [...r.clusters].sort(by((x) => x.name)),
    endpoints: [...r.endpoints].sort(by((x) => x.cluster_name)),
  };
}

const extraService = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: extra, namespace: default }
spec:
  hosts: [extra.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: 7100 } }]
`;

test('delta: the same set as SotW; a change sends only the changed resource', async (t) => {
  const cfg = await configDir({ 'calculate.yaml': calculateYaml({ v1: 7001, v2: 7002 }, { v1: 90, v2: 10 }), 'extra.yaml': extraService });
  const cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', log: quiet, debounceMs: 20 });
  const delta = connect(cp, 'DELTA_GRPC');
  const sotw = connect(cp, 'GRPC');
  t.after(async () => { await delta.client.close(); await sotw.client.close(); await cp.close(); await cfg.remove(); });
  await Promise.all([delta.client.ready(), sotw.client.ready()]);
  await waitFor(() => delta.sets.at(-1)?.r.endpoints.length === sotw.sets.at(-1)?.r.endpoints.length && sotw.sets.at(-1)!.r.endpoints.length > 0, 5000, 'both chains complete');
  assert.deepEqual(sorted(delta.sets.at(-1)!.r), sorted(sotw.sets.at(-1)!.r), 'delta and SotW deliver the same resources');
  assert.ok(delta.sets.at(-1)!.r.listeners.some((l) => l.name.startsWith('extra.default')), 'the extra service is there');
  const conn = () => cp.syncz().find((s) => s.protocol === 'delta')!;
  await waitFor(() => ['LDS', 'RDS', 'CDS', 'EDS'].every((ty) => conn()?.types[ty]?.acked !== undefined && conn().types[ty]!.acked === conn().types[ty]!.sent), 5000, 'delta ACKs');
  const before = conn();

  const traced = delta.trace.length;
  await cfg.write('calculate.yaml', calculateYaml({ v1: 7001, v2: 7002 }, { v1: 50, v2: 50 }));
  await waitFor(() => delta.sets.find((s) => v2Weight(s.r) === 50), 10_000, 'the new split over delta');
  const after = conn();
  for (const ty of ['LDS', 'CDS', 'EDS']) assert.equal(after.types[ty]!.nonce, before.types[ty]!.nonce, `${ty} not re-sent`);
  const responses = delta.trace.slice(traced).filter((m) => /^RDS version=/.test(m));
  assert.deepEqual(responses.map((m) => /resources=(\d+)/.exec(m)?.[1]), ['1'], 'one RDS response with the one changed RouteConfiguration');
});

test('delta: a removed service is removed from the client (removed_resources)', async (t) => {
  const cfg = await configDir({ 'calculate.yaml': calculateYaml({ v1: 7001, v2: 7002 }, { v1: 90, v2: 10 }), 'extra.yaml': extraService });
  const cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', log: quiet, debounceMs: 20 });
  const delta = connect(cp, 'DELTA_GRPC');
  t.after(async () => { await delta.client.close(); await cp.close(); await cfg.remove(); });
  await delta.client.ready();
  await waitFor(() => delta.sets.at(-1)?.r.clusters.some((c) => c.name.includes('extra.default')), 5000, 'extra cluster');

  await cfg.write('extra.yaml', '# nothing\n');
  const last = await waitFor(() => {
    const r = delta.sets.at(-1)!.r;
    return !r.listeners.some((l) => l.name.startsWith('extra.default')) && !r.clusters.some((c) => c.name.includes('extra.default')) && r;
  }, 10_000, 'the extra service removed');
  assert.ok(last.listeners.some((l) => l.name.startsWith('calculate.default')), 'calculate stays');
  assert.ok(!last.endpoints.some((e) => e.cluster_name.includes('extra.default')), 'its endpoints go too');
  assert.ok(delta.trace.some((m) => /^LDS .*removed=1/.test(m)), 'LDS said removed_resources');
});

test('delta: a NACK keeps the last good set; the server forgets the rejected versions and sends the next change', async (t) => {
  const cfg = await configDir({ 'calculate.yaml': calculateYaml({ v1: 7001, v2: 7002 }, { v1: 90, v2: 10 }) });
  const cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', log: quiet, debounceMs: 20 });
  const delta = connect(cp, 'DELTA_GRPC', (r) => (v2Weight(r) === 99 ? 'RouteConfiguration calculate: weight 99 refused by test' : undefined));
  t.after(async () => { await delta.client.close(); await cp.close(); await cfg.remove(); });
  await delta.client.ready();
  await waitFor(() => delta.sets.at(-1)?.r.endpoints.length, 5000, 'complete set');
  const good = delta.client.status().types.RDS.version;
  const delivered = delta.sets.length;

  await cfg.write('calculate.yaml', calculateYaml({ v1: 7001, v2: 7002 }, { v1: 1, v2: 99 }));
  const s = await waitFor(() => cp.syncz()[0]!.lastNack && cp.syncz()[0], 10_000, 'NACK');
  assert.match(s.lastNack!.message, /weight 99 refused/);
  assert.equal(s.protocol, 'delta');
  assert.equal(delta.client.status().types.RDS.version, good, 'the client keeps its RDS version');
  assert.equal(delta.client.status().lastNack?.typeUrl.endsWith('RouteConfiguration'), true);
  assert.equal(delta.sets.length, delivered, 'nothing new delivered');
  assert.equal(v2Weight(delta.sets.at(-1)!.r), 10, 'the old split serves');

  // Back to the config the client has: nothing to send (the server restored what the client holds)...
  await cfg.write('calculate.yaml', calculateYaml({ v1: 7001, v2: 7002 }, { v1: 90, v2: 10 }));
  await waitFor(() => cp.status().loads >= 3, 5000, 'reload');
  // ...and a new change arrives.
  await cfg.write('calculate.yaml', calculateYaml({ v1: 7001, v2: 7002 }, { v1: 70, v2: 30 }));
  await waitFor(() => delta.sets.find((x) => v2Weight(x.r) === 30), 10_000, 'the next change');
});

test('delta: a reconnect announces initial_resource_versions; the restarted server re-sends only what changed', async (t) => {
  const cfg = await configDir({ 'calculate.yaml': calculateYaml({ v1: 7001, v2: 7002 }, { v1: 90, v2: 10 }) });
  let cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', log: quiet, debounceMs: 20 });
  const port = cp.port;
  const delta = connect(port, 'DELTA_GRPC');
  t.after(async () => { await delta.client.close(); await cp.close(); await cfg.remove(); });
  await delta.client.ready();
  await waitFor(() => delta.sets.at(-1)?.r.endpoints.length, 5000, 'complete set');
  await waitFor(() => cp.syncz()[0]?.types.RDS?.acked, 5000, 'RDS ACK');
  const delivered = delta.sets.length;
  const held = delta.sets.at(-1)!.r;

  await cp.close();
  await waitFor(() => !delta.client.status().connected, 10_000, 'client notices');
  await cfg.write('calculate.yaml', calculateYaml({ v1: 7001, v2: 7002 }, { v1: 60, v2: 40 }));
  const traced = delta.trace.length;
  cp = await createControlPlane({ config: cfg.dir, port, host: '127.0.0.1', log: quiet, debounceMs: 20 });

  await waitFor(() => delta.sets.find((x) => v2Weight(x.r) === 40), 15_000, 'the change made while disconnected');
  assert.ok(delta.sets.length > delivered);
  const sentCount = (short: string) => delta.trace.slice(traced).filter((m) => m.startsWith(`${short} version=`)).map((m) => Number(/resources=(\d+)/.exec(m)?.[1]));
  // the four initial requests are answered in the order they arrive, RDS's not necessarily last
  await waitFor(() => ['LDS', 'RDS', 'CDS', 'EDS'].every((ty) => sentCount(ty).length > 0), 15_000, 'an answer for every type');
  // Every type answered (each initial request is answered), but only RDS carries a resource: the others were known.
  assert.deepEqual(sentCount('LDS'), [0]);
  assert.deepEqual(sentCount('CDS'), [0]);
  assert.deepEqual(sentCount('EDS'), [0]);
  assert.deepEqual(sentCount('RDS'), [1]);
  const final = delta.sets.at(-1)!.r;
  assert.deepEqual(sorted(final).clusters, sorted(held).clusters, 'the clusters the client kept');
  assert.deepEqual(sorted(final).endpoints, sorted(held).endpoints, 'and their endpoints');
});

test('delta through createMesh: xds.apiType DELTA_GRPC routes calls and follows a split change with no failed request', async (t) => {
  const v1 = await startServer('v1');
  const v2 = await startServer('v2');
  const shop = (w1: number) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }]
  endpoints:
    - { address: 127.0.0.1, ports: { http: ${v1.port} }, labels: { version: v1 } }
    - { address: 127.0.0.1, ports: { http: ${v2.port} }, labels: { version: v2 } }
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
        - { destination: { host: shop, subset: v1 }, weight: ${w1} }
        - { destination: { host: shop, subset: v2 }, weight: ${100 - w1} }
`;
  const cfg = await configDir({ 'shop.yaml': shop(100) });
  const cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', log: quiet, debounceMs: 20 });
  const mesh = await createMesh({ workload, xds: { server: `127.0.0.1:${cp.port}`, apiType: 'DELTA_GRPC', initialFetchTimeoutMs: 300 } });
  t.after(async () => { await mesh.close(); await cp.close(); await Promise.all([v1.close(), v2.close()]); await cfg.remove(); });
  const call = async () => { const res = await mesh.fetch('http://shop.default.svc.cluster.local:8000/'); return `${res.status} ${await res.text()}`; };
  assert.equal(await call(), '200 v1');
  assert.equal(cp.syncz()[0]!.protocol, 'delta');

  await cfg.write('shop.yaml', shop(0));
  // every answer is a 200 from v1 or v2 until v2 answers; bounded in count
  const answers: string[] = [];
  for (let i = 0; i < 5000 && answers.at(-1) !== '200 v2'; i++) {
    answers.push(await call());
    await new Promise((r) => setTimeout(r, 2));
  }
  assert.equal(answers.at(-1), '200 v2', 'the split moved');
  assert.deepEqual(answers.filter((a) => a !== '200 v1' && a !== '200 v2'), [], 'no failed request');
  assert.equal(mesh.xdsStatus()!.lastNack, undefined);
});
