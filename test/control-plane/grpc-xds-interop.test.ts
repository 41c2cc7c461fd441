/**
 * Interop: gRPC's own xDS client (@grpc/grpc-js-xds) resolves `xds:///` targets
 * through our control plane (bootstrap file) and must honour our weighted and
 * header routes. grpc-js-xds registration and bootstrap are process-global,
 * so this file runs alone in its process.
 *
 * The control plane hosts a CA, as a production one would, and allows
 * plaintext ADS explicitly (`plaintext: true`): the bootstrap uses
 * `insecure` channel creds. Such a client gets config, never registration.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import * as xds from '@grpc/grpc-js-xds';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createControlPlane } from '../../src/control-plane/index.js';
import { EchoClient, calculateYaml, configDir, startEcho } from './helpers.js';

function who(client: grpc.Client, metadata = new grpc.Metadata()): Promise<string> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, Function>).Who({}, metadata, { deadline: Date.now() + 5000 }, (err: Error | null, res: { version: string }) =>
      (err ? reject(err) : resolve(res.version)));
  });
}

test('grpc-js-xds honours our weighted 90/10 route and header route', { timeout: 30_000 }, async (t) => {
  const v1 = await startEcho('v1');
  const v2 = await startEcho('v2');
  const cfg = await configDir({ 'calculate.yaml': calculateYaml({ v1: v1.port, v2: v2.port }, { v1: 90, v2: 10 }) });
  const caDir = await mkdtemp(join(tmpdir(), 'meshlet-interop-ca-'));
  const cp = await createControlPlane({ config: cfg.dir, port: 0, host: '127.0.0.1', ca: { dir: caDir }, plaintext: true });
  const bootstrapPath = join(cfg.dir, 'bootstrap.json.txt');
  await writeFile(bootstrapPath, JSON.stringify({
    xds_servers: [{ server_uri: `127.0.0.1:${cp.port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: 'sidecar~127.0.0.1~grpc-client.default~default.svc.cluster.local', cluster: 'grpc-client.default', locality: {}, metadata: { NAMESPACE: 'default', GENERATOR: 'grpc' } },
  }));
  process.env.GRPC_XDS_BOOTSTRAP = bootstrapPath;
  xds.register();
  const client = new EchoClient('xds:///calculate.default.svc.cluster.local:9000', grpc.credentials.createInsecure());
  t.after(async () => {
    client.close();
    await cp.close();
    v1.close();
    v2.close();
    await cfg.remove();
    await rm(caDir, { recursive: true, force: true });
  });

  const counts = { v1: 0, v2: 0 } as Record<string, number>;
  const calls = 2000;
  const deadline = Date.now() + 20_000;
  for (let i = 0; i < calls && Date.now() < deadline; i += 50) {
    const batch = await Promise.all(Array.from({ length: 50 }, () => who(client)));
    for (const v of batch) counts[v] = (counts[v] ?? 0) + 1;
  }
  const total = counts.v1! + counts.v2!;
  assert.equal(total, calls);
  const v2Share = (counts.v2! / total) * 100;
  assert.ok(Math.abs(v2Share - 10) <= 3, `v2 got ${v2Share.toFixed(1)} % of ${total} calls, want 10 ± 3`);

  const md = new grpc.Metadata();
  md.set('version', 'dog');
  const dogs = await Promise.all(Array.from({ length: 100 }, () => who(client, md)));
  assert.deepEqual(new Set(dogs), new Set(['v2']), 'the header route sends every `version: dog` call to v2');

  const acked = cp.syncz().find((s) => s.node.startsWith('sidecar~127.0.0.1~grpc-client'));
  assert.ok(acked, 'the grpc-js-xds client shows in syncz');
  for (const type of ['LDS', 'RDS', 'CDS', 'EDS']) {
    assert.ok(acked.types[type]?.acked, `${type} ACKed by grpc-js-xds`);
    assert.equal(acked.types[type]!.acked, acked.types[type]!.sent, `${type}: ACKed version is the one sent`);
  }
  assert.equal(acked.lastNack, undefined);
  assert.equal(acked.identity, undefined, 'a plaintext client proves no identity');
});
