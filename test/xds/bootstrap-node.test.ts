import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeshError } from '../../src/errors.js';
import { Backoff } from '../../src/xds/backoff.js';
import { resolveBootstrap } from '../../src/xds/bootstrap.js';
import { buildNode, fromStruct, parsePorts } from '../../src/xds/node.js';
import { nodeInfoOf } from '../../src/control-plane/registry.js';
import { seededRandom } from '../../src/core/random.js';
import { traceEnabled } from '../../src/xds/trace.js';

test('backoff grows ×multiplier with bounded jitter, caps, and resets', () => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0.2, random: seededRandom(1) });
  const bases = [100, 200, 400, 800, 1000, 1000];
  for (const base of bases) {
    const d = b.next();
    assert.ok(d >= base * 0.8 && d <= base * 1.2, `${d} within ±20 % of ${base}`);
  }
  b.reset();
  const d = b.next();
  assert.ok(d >= 80 && d <= 120);
  const spread = new Set(Array.from({ length: 20 }, () => new Backoff({ initialMs: 100, random: seededRandom(Math.floor(Math.random() * 1e9)) }).next()));
  assert.ok(spread.size > 1, 'jitter spreads reconnects');
});

test('bootstrap: explicit server, GRPC_XDS_BOOTSTRAP file, inline config, MESHLET_XDS address', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'meshlet-bs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'bootstrap.json');
  await writeFile(file, JSON.stringify({ xds_servers: [{ server_uri: 'istiod.istio-system.svc:15010', channel_creds: [{ type: 'insecure' }] }], node: { id: 'sidecar~1.2.3.4~a.b~b.svc.cluster.local', metadata: { X: 'y' } } }));
  assert.deepEqual(resolveBootstrap({ server: 'cp:1' }, {}), { server: 'cp:1', channelCreds: 'insecure', serverFeatures: [] });
  const fromFile = resolveBootstrap({}, { GRPC_XDS_BOOTSTRAP: file });
  assert.equal(fromFile?.server, 'istiod.istio-system.svc:15010');
  assert.equal(fromFile?.node?.id, 'sidecar~1.2.3.4~a.b~b.svc.cluster.local');
  assert.equal(resolveBootstrap({}, { MESHLET_XDS: file })?.server, 'istiod.istio-system.svc:15010');
  assert.equal(resolveBootstrap({}, { MESHLET_XDS: 'localhost:15010' })?.server, 'localhost:15010');
  assert.equal(resolveBootstrap({}, { GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify({ xds_servers: [{ server_uri: 'x:1', channel_creds: [{ type: 'tls' }] }] }) })?.channelCreds, 'tls');
  assert.equal(resolveBootstrap({}, {}), undefined);
  assert.throws(() => resolveBootstrap({}, { GRPC_XDS_BOOTSTRAP_CONFIG: '{"xds_servers":[]}' }), (e: unknown) => e instanceof MeshError && /xds_servers\[0\]\.server_uri/.test((e as Error).message));
  assert.throws(() => resolveBootstrap({ bootstrap: join(dir, 'missing.json') }), /cannot read bootstrap file/);
});

test('node identity round-trips into what the control plane registers', () => {
  const node = buildNode({ name: 'calculate', namespace: 'prod', labels: { app: 'calculate', version: 'v2' }, serviceAccount: 'calc', address: '10.1.2.3', ports: { grpc: 9000, http: 8080 }, instanceName: 'calculate-abc', autoRegisterGroup: 'calculate' });
  assert.equal(node.id, 'sidecar~10.1.2.3~calculate-abc.prod~prod.svc.cluster.local');
  assert.equal(node.cluster, 'calculate.prod');
  assert.equal(fromStruct(node.metadata).GENERATOR, 'grpc');
  const info = nodeInfoOf(node);
  assert.deepEqual(info, {
    id: node.id, name: 'calculate-abc', namespace: 'prod', labels: { app: 'calculate', version: 'v2' }, serviceAccount: 'calc',
    workloadName: 'calculate', address: '10.1.2.3', ports: { grpc: 9000, http: 8080 }, autoRegisterGroup: 'calculate',
  });
  assert.equal(fromStruct(node.metadata).AUTO_REGISTER_GROUP, 'calculate', 'as istio-agent sends it');
  // a bare Istio node id without metadata still yields a namespace
  assert.equal(nodeInfoOf({ id: 'sidecar~10.0.0.1~pod-1.shop~shop.svc.cluster.local' }).namespace, 'shop');
  assert.deepEqual(parsePorts('8080, grpc:9000, bad:x'), { http: 8080, grpc: 9000 });
});

test('trace switch', () => {
  assert.equal(traceEnabled('xds', undefined), false);
  assert.equal(traceEnabled('xds', 'xds,control-plane'), true);
  assert.equal(traceEnabled('xds', 'all'), true);
  assert.equal(traceEnabled('xds', 'http'), false);
});
