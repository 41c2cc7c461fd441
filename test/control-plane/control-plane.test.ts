import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvoyResources } from '../../src/config/envoy.js';
import { createControlPlane, type ControlPlane } from '../../src/control-plane/index.js';
import { rotatingControlPlaneCredentials } from '../../src/security/grpc-credentials.js';
import { istiodSpiffeId } from '../../src/security/tls.js';
import { staticIdentity } from '../../src/security/workload-identity.js';
import { createAdsClient, type AdsClient } from '../../src/xds/ads-client.js';
import { calculateYaml, configDir, waitFor } from './helpers.js';

const quiet = () => {};

interface Tracked { client: AdsClient; sets: Array<{ r: EnvoyResources; v: string; at: number }> }

function connect(cp: ControlPlane, workload: Parameters<typeof createAdsClient>[0]['workload'], reject?: (r: EnvoyResources) => string | undefined, extra: Partial<Parameters<typeof createAdsClient>[0]> = {}): Tracked {
  const sets: Tracked['sets'] = [];
  const client = createAdsClient({
    ...extra,
    server: `127.0.0.1:${cp.port}`,
    workload,
    backoff: { initialMs: 50, maxMs: 400 },
    onResources: (r, v) => {
      const why = reject?.(r);
      if (why) throw new Error(why);
      sets.push({ r, v, at: Date.now() });
    },
  });
  return { client, sets };
}

/** weight of subset v2 in the catch-all route */
function v2Weight(r: EnvoyResources): number | undefined {
  const routes = r.routes[0]?.virtual_hosts[0]?.routes ?? [];
  const split = routes[routes.length - 1]?.route?.weighted_clusters?.clusters;
  return split?.find((c) => c.name.includes('|v2|'))?.weight.value;
}

const client = { name: 'client', namespace: 'default', labels: { app: 'client' } };

test('serves translated config; a file change is pushed, only the changed type', async (t) => {
  const cfg = await configDir({ 'calculate.yaml': calculateYaml({ v1: 7001, v2: 7002 }, { v1: 90, v2: 10 }) });
  const cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', log: quiet });
  const c = connect(cp, client);
  t.after(async () => { await c.client.close(); await cp.close(); await cfg.remove(); });

  await c.client.ready();
  assert.equal(v2Weight(c.sets[0]!.r), 10);
  await waitFor(() => cp.syncz()[0]?.types.EDS?.acked, 2000, 'EDS ACK');
  const before = cp.syncz()[0]!;
  for (const type of ['LDS', 'RDS', 'CDS', 'EDS']) assert.equal(before.types[type]!.acked, before.types[type]!.sent, `${type} ACKed`);

  const changedAt = Date.now();
  await cfg.write('calculate.yaml', calculateYaml({ v1: 7001, v2: 7002 }, { v1: 50, v2: 50 }));
  const got = await waitFor(() => c.sets.find((s) => v2Weight(s.r) === 50), 10_000, 'the new split');
  const latency = got.at - changedAt;
  t.diagnostic(`file change → client delivery: ${latency} ms`);
  // Generous: the watcher's quiet period plus one push, on a loaded machine; the latency is reported above.
  assert.ok(latency < 5000, `pushed in ${latency} ms`);

  await waitFor(() => cp.syncz()[0]!.types.RDS!.acked === cp.syncz()[0]!.types.RDS!.sent, 2000, 'RDS ACK');
  const after = cp.syncz()[0]!;
  assert.notEqual(after.types.RDS!.sent, before.types.RDS!.sent, 'RDS version changed');
  for (const type of ['LDS', 'CDS', 'EDS']) assert.equal(after.types[type]!.nonce, before.types[type]!.nonce, `${type} not re-sent`);

  // rewriting identical content pushes nothing
  const pushesBefore = c.sets.length;
  await cfg.write('calculate.yaml', calculateYaml({ v1: 7001, v2: 7002 }, { v1: 50, v2: 50 }));
  await waitFor(() => cp.status().lastPush && cp.status().generation > 0 && cp.status().loads >= 3, 2000, 'reload');
  assert.equal(cp.status().lastPush!.responses, 0);
  assert.equal(c.sets.length, pushesBefore);
});

test('an invalid file keeps the last good config serving and is reported', async (t) => {
  const cfg = await configDir({ 'calculate.yaml': calculateYaml({ v1: 7001, v2: 7002 }, { v1: 90, v2: 10 }) });
  const errors: string[] = [];
  const cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', debugPort: 0, log: (level, m) => { if (level === 'error') errors.push(m); } });
  const c = connect(cp, client);
  t.after(async () => { await c.client.close(); await cp.close(); await cfg.remove(); });
  await c.client.ready();

  await cfg.write('calculate.yaml', calculateYaml({ v1: 7001, v2: 7002 }, { v1: 90, v2: 10 }).replace('weight: 10', 'weight: -10'));
  await cp.reload();
  const problem = cp.status().configError;
  assert.ok(problem, 'status shows the error');
  assert.equal(problem.kind, 'VirtualService');
  assert.match(problem.path ?? '', /weight/);
  assert.equal(errors.length >= 1, true, 'logged');
  const res = await fetch(`http://127.0.0.1:${cp.debugPort}/debug/status`);
  const body = await res.json() as { configError?: { kind: string } };
  assert.equal(body.configError?.kind, 'VirtualService');
  assert.equal(c.sets.length, 1, 'clients keep the previous config');
  assert.equal(cp.configDump('default').routes.length, 1);

  await cfg.write('calculate.yaml', calculateYaml({ v1: 7001, v2: 7002 }, { v1: 80, v2: 20 }));
  await cp.reload();
  assert.equal(cp.status().configError, undefined);
  await waitFor(() => c.sets.find((s) => v2Weight(s.r) === 20), 3000, 'the fixed config');

  const syncz = await (await fetch(`http://127.0.0.1:${cp.debugPort}/debug/syncz`)).json() as Array<{ node: string }>;
  assert.match(syncz[0]!.node, /^sidecar~/);
});

test('a client NACK shows in syncz with the rejected version; the client keeps its set', async (t) => {
  const cfg = await configDir({ 'calculate.yaml': calculateYaml({ v1: 7001, v2: 7002 }, { v1: 90, v2: 10 }) });
  const cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', log: quiet });
  const c = connect(cp, client, (r) => (v2Weight(r) === 99 ? 'RouteConfiguration calculate: weight 99 refused by test' : undefined));
  t.after(async () => { await c.client.close(); await cp.close(); await cfg.remove(); });
  await c.client.ready();
  await waitFor(() => cp.syncz()[0]?.types.RDS?.acked, 2000, 'RDS ACK');
  const good = cp.syncz()[0]!.types.RDS!.acked;

  await cfg.write('calculate.yaml', calculateYaml({ v1: 7001, v2: 7002 }, { v1: 1, v2: 99 }));
  await cp.reload();
  const s = await waitFor(() => cp.syncz()[0]!.lastNack && cp.syncz()[0], 3000, 'NACK');
  assert.match(s.lastNack!.message, /weight 99 refused/);
  assert.equal(s.lastNack!.version, s.types.RDS!.sent, 'the NACK names the version that was sent');
  assert.equal(s.types.RDS!.acked, good, 'ACKed version stays the previous one');
  assert.equal(c.client.status().types.RDS.version, good);
  assert.equal(c.sets.length, 1);
});

test('workloads proving their WorkloadGroup identity are registered (a ServiceEntry synthesised for an unknown app) and removed after the grace period', async (t) => {
  const groups = ['pets', 'calculate'].map((name) => `apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: { name: ${name}, namespace: default }
spec: { template: { serviceAccount: ${name}, labels: { app: ${name} } } }
`).join('---\n');
  const cfg = await configDir({ 'calculate.yaml': calculateYaml({ v1: 7001, v2: 7002 }, { v1: 90, v2: 10 }), 'groups.yaml': groups });
  const caDir = await mkdtemp(join(tmpdir(), 'meshlet-cp-reg-'));
  const cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', registrationGraceMs: 100, debounceMs: 20, log: quiet, ca: { dir: caDir } });
  // mTLS with a certificate from the control plane's CA, as the SDK connects when it has one
  const as = async (serviceAccount: string) => ({ credentials: rotatingControlPlaneCredentials(staticIdentity(await cp.ca!.issueWorkload(`spiffe://cluster.local/ns/default/sa/${serviceAccount}`)), istiodSpiffeId('cluster.local')) });
  const observer = connect(cp, { ...client, serviceAccount: 'client' }, undefined, await as('client'));
  const pets = connect(cp, { name: 'pets', namespace: 'default', serviceAccount: 'pets', labels: { version: 'v3' }, address: '127.0.0.5', ports: { http: 8085 }, autoRegisterGroup: 'pets' }, undefined, await as('pets'));
  const calc = connect(cp, { name: 'calculate', namespace: 'default', serviceAccount: 'calculate', labels: { version: 'v2' }, address: '127.0.0.6', ports: { grpc: 7006 }, autoRegisterGroup: 'calculate' }, undefined, await as('calculate'));
  t.after(async () => { await observer.client.close(); await pets.client.close(); await calc.client.close(); await cp.close(); await cfg.remove(); await rm(caDir, { recursive: true, force: true }); });

  const endpointsOf = (r: EnvoyResources, cluster: string) =>
    r.endpoints.find((e) => e.cluster_name === cluster)?.endpoints?.flatMap((g) => g.lb_endpoints.map((l) => `${l.endpoint.address.socket_address.address}:${l.endpoint.address.socket_address.port_value}`)) ?? [];
  const latest = () => observer.sets[observer.sets.length - 1]?.r;
  // a service nobody configured: synthesised from the group's app label
  await waitFor(() => latest() && endpointsOf(latest()!, 'outbound|8085||pets.default.svc.cluster.local').includes('127.0.0.5:8085'), 3000, 'pets registered');
  // calculate's ServiceEntry has inline endpoints, so the registered pod shows up as a WorkloadEntry in status only
  await waitFor(() => cp.status().workloads.length === 2, 3000, 'calculate registered');
  assert.deepEqual(cp.status().workloads.map((w) => `${w.group} ${w.labels.app} ${w.labels.version}`).sort(), ['calculate calculate v2', 'pets pets v3']);

  await pets.client.close();
  await waitFor(() => !endpointsOf(latest()!, 'outbound|8085||pets.default.svc.cluster.local').includes('127.0.0.5:8085'), 3000, 'pets removed');
  assert.equal(cp.status().workloads.length, 1);
});

test('control plane restart: clients keep their config and reconnect with backoff', async (t) => {
  const cfg = await configDir({ 'calculate.yaml': calculateYaml({ v1: 7001, v2: 7002 }, { v1: 90, v2: 10 }) });
  let cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', log: quiet });
  const port = cp.port;
  const c = connect(cp, client);
  t.after(async () => { await c.client.close(); await cp.close(); await cfg.remove(); });
  await c.client.ready();

  await cp.close();
  await waitFor(() => !c.client.status().connected, 2000, 'disconnect');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(c.sets.length, 1, 'nothing delivered while the control plane is down');
  assert.ok(c.client.status().reconnects >= 1, 'kept retrying');

  await cfg.write('calculate.yaml', calculateYaml({ v1: 7001, v2: 7002 }, { v1: 70, v2: 30 }));
  cp = await createControlPlane({ config: cfg.dir, port, host: '127.0.0.1', log: quiet });
  await waitFor(() => c.sets.find((s) => v2Weight(s.r) === 30), 5000, 'config from the restarted control plane');
  assert.equal(c.client.status().connected, true);
});

test('a change that adds a service reaches the client along its named chain (LDS → RDS → CDS → EDS, gRFC A27), and no delivered route names a missing cluster', async (t) => {
  const cfg = await configDir({ 'calculate.yaml': calculateYaml({ v1: 7001, v2: 7002 }, { v1: 90, v2: 10 }) });
  const cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', log: quiet, debounceMs: 20 });
  const c = connect(cp, client);
  t.after(async () => { await c.client.close(); await cp.close(); await cfg.remove(); });
  await c.client.ready();
  await waitFor(() => cp.syncz()[0]?.types.EDS?.acked, 10_000, 'EDS ACK');
  const before = cp.syncz()[0]!.types;

  // a new service with its own route: every type changes
  await cfg.write('shop.yaml', calculateYaml({ v1: 7011, v2: 7012 }, { v1: 50, v2: 50 }).replaceAll('calculate', 'shop'));
  await waitFor(() => c.sets.some((s) => s.r.clusters.some((x) => x.name.includes('shop'))), 10_000, 'the new service');
  const after = cp.syncz()[0]!.types;
  for (const type of ['CDS', 'EDS', 'LDS', 'RDS']) assert.notEqual(after[type]!.nonce, before[type]!.nonce, `${type} pushed`);
  // The client asks for clusters by the names the routes give (no wildcard CDS), so the new service's
  // resources come in the order the client names them: its listener, its routes, their clusters, their endpoints.
  const nonce = (type: string) => Number(after[type]!.nonce);
  assert.ok(nonce('LDS') < nonce('RDS') && nonce('RDS') < nonce('CDS') && nonce('CDS') < nonce('EDS'), JSON.stringify(after));
  // Make before break, as the client applies it: no delivered set has a route naming a cluster it lacks.
  for (const set of c.sets) {
    const clusters = new Set(set.r.clusters.map((x) => x.name));
    for (const rc of set.r.routes) for (const vh of rc.virtual_hosts) for (const r of vh.routes) {
      const names = r.route?.weighted_clusters?.clusters.map((w) => w.name) ?? (r.route?.cluster ? [r.route.cluster] : []);
      for (const n of names) assert.ok(clusters.has(n), `set ${set.v}: route ${rc.name} names ${n}, not delivered`);
    }
  }
});
