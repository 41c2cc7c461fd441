// Issue #16 item 6: a caller that sends a new name in x-envoy-peer-metadata on
// every request must not grow /metrics without bound (3,000 names made 63 MB
// before the peer cap). Peer labels past the cap read `overflow`; what mTLS
// authenticated (principal, its namespace) is kept, as Istio's stats filter
// takes the namespace from the peer's SAN.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createMesh } from '../../src/index.js';
import { DEFAULT_MAX_PEERS, IstioMetrics, OVERFLOW, principalNamespace } from '../../src/telemetry/metrics.js';
import { decodePeerMetadata, encodePeerMetadata, MAX_FIELD_LENGTH, PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER, peerLabels } from '../../src/telemetry/peer-metadata.js';
import { MeshTelemetry } from '../../src/telemetry/telemetry.js';
import { find, parseExposition } from './exposition.js';

function get(port: number, agent: Agent, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

test('512 distinct peer names through mesh.express(): at most maxPeers peer series, the rest counted as overflow', async (t) => {
  const peers = 512; // a multiple of the 8 requests in flight
  const mesh = await createMesh({ workload: { name: 'calc', namespace: 'default', labels: { app: 'calc', version: 'v1' } }, config: [] });
  const app = express();
  app.use(mesh.express());
  app.get('/', (_req, res) => void res.end('ok'));
  const server = mesh.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  t.after(async () => {
    agent.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await mesh.close();
  });
  const port = (server.address() as AddressInfo).port;
  const codes: number[] = [];
  for (let i = 0; i < peers; i += 8) {
    codes.push(...await Promise.all(Array.from({ length: 8 }, (_, k) => {
      const h = encodePeerMetadata({ name: `flood-${i + k}`, namespace: `ns-${i + k}`, labels: { app: `app-${i + k}` } });
      return get(port, agent, { [PEER_METADATA_HEADER]: h.value, [PEER_METADATA_ID_HEADER]: h.id });
    })));
  }
  assert.deepEqual([...new Set(codes)], [200]);
  const text = await mesh.metrics();
  const samples = find(parseExposition(text), 'istio_requests_total', { reporter: 'destination' });
  assert.equal(samples.length, DEFAULT_MAX_PEERS + 1, 'one series per admitted peer, one overflow series');
  const overflow = samples.filter((s) => s.labels.source_workload === OVERFLOW);
  assert.equal(overflow.length, 1);
  assert.equal(overflow[0]!.value, peers - DEFAULT_MAX_PEERS, 'every request is still counted');
  assert.equal(overflow[0]!.labels.source_workload_namespace, OVERFLOW);
  assert.equal(overflow[0]!.labels.source_app, OVERFLOW);
  assert.equal(overflow[0]!.labels.destination_workload, 'calc', 'our own labels stay');
  assert.equal(samples.reduce((n, s) => n + s.value, 0), peers);
  // ~32 KB of exposition per series: bounded by the cap, not by what peers send (64 MB for 3,000 peers before).
  assert.ok(text.length < (DEFAULT_MAX_PEERS + 2) * 40_000, `exposition ${text.length} bytes`);
});

test('past the peer cap an mTLS peer keeps its principal and the namespace it names', () => {
  const telemetry = new MeshTelemetry({ workload: { name: 'calc', namespace: 'default' }, maxPeers: 2 });
  const send = (name: string, principal?: string) => {
    const h = encodePeerMetadata({ name, namespace: 'claimed-ns' });
    const call = telemetry.inbound.start({ method: 'GET', url: '/', headers: { [PEER_METADATA_HEADER]: h.value }, ...(principal && { peerPrincipal: principal, localPrincipal: 'spiffe://cluster.local/ns/default/sa/calc' }) });
    telemetry.inbound.finish(call, { statusCode: 200 });
    return call.family.labels;
  };
  const a = send('a', 'spiffe://cluster.local/ns/shop/sa/a');
  assert.equal(a.source_workload, 'a');
  assert.equal(a.source_workload_namespace, 'shop', 'the SAN namespace, not the claimed one');
  send('b');
  const c = send('c', 'spiffe://cluster.local/ns/bank/sa/c');
  assert.equal(c.source_workload, OVERFLOW);
  assert.equal(c.source_principal, 'spiffe://cluster.local/ns/bank/sa/c');
  assert.equal(c.source_workload_namespace, 'bank');
  assert.equal(c.connection_security_policy, 'mutual_tls');
  const d = send('d');
  assert.equal(d.source_workload, OVERFLOW);
  assert.equal(d.source_principal, 'unknown');
  assert.equal(d.source_workload_namespace, OVERFLOW);
  assert.equal(send('a', 'spiffe://cluster.local/ns/shop/sa/a').source_workload, 'a', 'an admitted peer stays itself');
  assert.equal(telemetry.metrics.size, 4, 'a, b, and two overflow families (with and without a principal)');
  telemetry.close();
});

test('the peer cap is per reporter: outbound peers (destination_*) count apart', () => {
  const m = new IstioMetrics({ maxPeers: 1 });
  const inbound = m.family({ reporter: 'destination', source_workload: 'x' });
  const outbound = m.family({ reporter: 'source', destination_workload: 'y' });
  assert.equal(inbound.labels.source_workload, 'x');
  assert.equal(outbound.labels.destination_workload, 'y');
  assert.equal(m.family({ reporter: 'source', destination_workload: 'z' }).labels.destination_workload, OVERFLOW);
  // Our own side's labels (destination_service from config on outbound) do not count as peers.
  assert.equal(m.family({ reporter: 'source', destination_workload: 'y', destination_service: 'other' }).labels.destination_workload, 'y');
  m.close();
});

test('metadata fields longer than a Kubernetes name are dropped; principals name their namespace', () => {
  const long = 'x'.repeat(MAX_FIELD_LENGTH + 1);
  const meta = decodePeerMetadata(encodePeerMetadata({ name: 'ok', namespace: long, workloadName: long, labels: { app: long, version: 'v1' } }).value)!;
  assert.equal(meta.workloadName, undefined);
  assert.equal(meta.namespace, '');
  assert.equal(meta.labels!.app, undefined);
  assert.equal(meta.labels!.version, 'v1');
  assert.equal(peerLabels(meta, 'source').source_workload, 'ok');
  assert.equal(principalNamespace('spiffe://td/ns/shop/sa/x'), 'shop');
  assert.equal(principalNamespace('spiffe://td/ns/shop'), 'shop');
  assert.equal(principalNamespace('spiffe://td/sa/x'), undefined);
  assert.equal(principalNamespace('spiffe://td/ns//sa/x'), undefined);
  assert.deepEqual(peerLabels(undefined, 'destination', 'spiffe://td/ns/db/sa/db'), {
    destination_principal: 'spiffe://td/ns/db/sa/db', destination_workload_namespace: 'db', destination_canonical_revision: 'latest',
  });
});
