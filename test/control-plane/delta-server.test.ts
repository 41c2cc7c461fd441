/**
 * The control plane's Delta ADS server on the wire (a raw DeltaAggregatedResources
 * stream, as Envoy or istio-agent would open): wildcard and named subscriptions,
 * a name that does not exist reported in removed_resources, unsubscribing, a
 * stale nonce, and the Resource wrappers' per-resource versions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { createControlPlane } from '../../src/control-plane/index.js';
import { TYPE_URL } from '../../src/config/envoy.js';
import { loadGrpcPackage } from '../../src/xds/protos.js';
import { buildNode } from '../../src/xds/node.js';
import { calculateYaml, configDir, waitFor } from './helpers.js';

interface DeltaResponse {
  system_version_info: string;
  type_url: string;
  nonce: string;
  resources?: Array<{ name: string; version: string; resource: { type_url: string } }>;
  removed_resources?: string[];
}

async function open(port: number) {
  const pkg = loadGrpcPackage(['envoy/service/discovery/v3/ads.proto']) as unknown as {
    envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: grpc.ServiceClientConstructor } } } };
  };
  const Ads = pkg.envoy.service.discovery.v3.AggregatedDiscoveryService;
  const client = new Ads(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { DeltaAggregatedResources(): grpc.ClientDuplexStream<object, DeltaResponse> };
  const stream = client.DeltaAggregatedResources();
  const got: DeltaResponse[] = [];
  stream.on('data', (r: DeltaResponse) => got.push(r));
  stream.on('error', () => {});
  return {
    got,
    write: (req: object) => stream.write(req),
    /** The first response of `typeUrl` at index ≥ `from`. */
    next: (typeUrl: string, from: number) => waitFor(() => got.slice(from).find((r) => r.type_url === typeUrl), 10_000, `a ${typeUrl} response`),
    close() { stream.cancel(); client.close(); },
  };
}

test('delta server: wildcard LDS, named EDS with an unknown name removed, unsubscribe, versions as content hashes', async (t) => {
  const cfg = await configDir({ 'calculate.yaml': calculateYaml({ v1: 7001, v2: 7002 }, { v1: 90, v2: 10 }) });
  const cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', log: () => {}, debounceMs: 20 });
  const s = await open(cp.port);
  t.after(async () => { s.close(); await cp.close(); await cfg.remove(); });
  const node = buildNode({ name: 'raw', namespace: 'default' });

  // An LDS request without names is a wildcard subscription.
  s.write({ node, type_url: TYPE_URL.listener });
  const lds = await s.next(TYPE_URL.listener, 0);
  const names = lds.resources!.map((r) => r.name);
  assert.ok(names.includes('calculate.default.svc.cluster.local:9000'), names.join());
  for (const r of lds.resources!) {
    assert.match(r.version, /^[\w-]{16}$/, 'a per-resource version');
    assert.equal(r.resource.type_url, TYPE_URL.listener);
  }
  assert.ok(lds.system_version_info);
  s.write({ type_url: TYPE_URL.listener, response_nonce: lds.nonce });

  const v1 = 'outbound|9000|v1|calculate.default.svc.cluster.local';
  const from = s.got.length;
  s.write({ type_url: TYPE_URL.endpoint, resource_names_subscribe: [v1, 'outbound|1|none|nowhere'] });
  const eds = await s.next(TYPE_URL.endpoint, from);
  assert.deepEqual(eds.resources!.map((r) => r.name), [v1]);
  assert.deepEqual(eds.removed_resources, ['outbound|1|none|nowhere'], 'a subscribed name that does not exist is reported removed');
  s.write({ type_url: TYPE_URL.endpoint, response_nonce: eds.nonce });
  await waitFor(() => cp.syncz()[0]?.types.EDS?.acked !== undefined, 5000, 'EDS ACK');
  assert.equal(cp.syncz()[0]!.protocol, 'delta');
  assert.equal(cp.syncz()[0]!.types.LDS!.subscribed, '*');
  assert.equal(cp.syncz()[0]!.types.EDS!.subscribed, 2);

  // Unsubscribed: a change to its endpoints is no longer sent; the still-subscribed listener is.
  s.write({ type_url: TYPE_URL.endpoint, resource_names_unsubscribe: [v1, 'outbound|1|none|nowhere'] });
  await waitFor(() => cp.syncz()[0]!.types.EDS!.subscribed === 0, 5000, 'unsubscribed');
  const before = s.got.length;
  await cfg.write('calculate.yaml', calculateYaml({ v1: 7011, v2: 7002 }, { v1: 90, v2: 10 }).replace('[calculate.default.svc.cluster.local]', '[calculate.default.svc.cluster.local, calc.default.svc.cluster.local]'));
  const push = await s.next(TYPE_URL.listener, before);
  assert.ok(push.resources!.length >= 1 && push.resources!.length < lds.resources!.length, 'only changed listeners');
  assert.equal(s.got.slice(before).some((r) => r.type_url === TYPE_URL.endpoint), false, 'no EDS to an unsubscribed client');
});

test('delta server: a stale nonce neither ACKs nor NACKs; a NACK of the newest one is recorded', async (t) => {
  const cfg = await configDir({ 'calculate.yaml': calculateYaml({ v1: 7001, v2: 7002 }, { v1: 90, v2: 10 }) });
  const cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', log: () => {}, debounceMs: 20 });
  const s = await open(cp.port);
  t.after(async () => { s.close(); await cp.close(); await cfg.remove(); });
  s.write({ node: buildNode({ name: 'raw', namespace: 'default' }), type_url: TYPE_URL.route, resource_names_subscribe: ['calculate.default.svc.cluster.local:9000'] });
  const first = await s.next(TYPE_URL.route, 0);
  assert.equal(first.resources!.length, 1);
  s.write({ type_url: TYPE_URL.route, response_nonce: 'not-a-nonce', error_detail: { code: 3, message: 'stale' } });
  s.write({ type_url: TYPE_URL.route, response_nonce: first.nonce, error_detail: { code: 3, message: 'RouteConfiguration refused' } });
  const st = await waitFor(() => cp.syncz()[0]?.lastNack && cp.syncz()[0], 5000, 'NACK');
  assert.equal(st.lastNack!.message, 'RouteConfiguration refused');
  assert.equal(st.lastNack!.nonce, first.nonce);
  assert.equal(st.types.RDS!.acked, undefined, 'never ACKed');
});

test('delta server: a push sends two streams of one translation the same response, nonce included; each ACK settles its own stream, a NACK only its own', async (t) => {
  const cfg = await configDir({ 'calculate.yaml': calculateYaml({ v1: 7001, v2: 7002 }, { v1: 90, v2: 10 }) });
  const cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', log: () => {}, debounceMs: 20 });
  const a = await open(cp.port);
  const b = await open(cp.port);
  t.after(async () => { a.close(); b.close(); await cp.close(); await cfg.remove(); });
  const route = 'calculate.default.svc.cluster.local:9000';
  for (const [s, name] of [[a, 'a'], [b, 'b']] as const) {
    s.write({ node: buildNode({ name, namespace: 'default' }), type_url: TYPE_URL.route, resource_names_subscribe: [route] });
    const first = await s.next(TYPE_URL.route, 0);
    s.write({ type_url: TYPE_URL.route, response_nonce: first.nonce });
  }
  await waitFor(() => cp.syncz().length === 2 && cp.syncz().every((c) => c.types.RDS?.acked !== undefined), 5000, 'both first answers ACKed');
  const [fromA, fromB] = [a.got.length, b.got.length];
  await cfg.write('calculate.yaml', calculateYaml({ v1: 7001, v2: 7002 }, { v1: 60, v2: 40 }));
  const [pa, pb] = await Promise.all([a.next(TYPE_URL.route, fromA), b.next(TYPE_URL.route, fromB)]);
  assert.deepEqual(pa, pb, 'the same response on both streams');
  assert.match(pa.nonce, /^g\d+$/, "the snapshot's nonce");
  assert.notEqual(pa.nonce, a.got[fromA - 1]!.nonce);
  // b refuses it, a takes it: each stream's own record moves
  b.write({ type_url: TYPE_URL.route, response_nonce: pb.nonce, error_detail: { code: 3, message: 'refused by b' } });
  a.write({ type_url: TYPE_URL.route, response_nonce: pa.nonce });
  const byNode = () => new Map(cp.syncz().map((c) => [c.node.split('~')[2]!.split('-')[0]!, c]));
  await waitFor(() => byNode().get('b')?.lastNack && byNode().get('a')?.types.RDS?.acked === byNode().get('a')?.types.RDS?.sent, 5000, 'the NACK and the ACK');
  assert.equal(byNode().get('a')!.lastNack, undefined);
  assert.equal(byNode().get('b')!.lastNack!.message, 'refused by b');
  assert.notEqual(byNode().get('b')!.types.RDS!.acked, byNode().get('b')!.types.RDS!.sent, 'b never ACKed the push');
});
