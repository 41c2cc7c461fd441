import { test } from 'node:test';
import assert from 'node:assert/strict';
import protobuf from 'protobufjs';
import {
  PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER, PeerMetadataCache, decodePeerMetadata, encodePeerMetadata, peerLabels, takePeerMetadataHeaders,
} from '../../src/telemetry/peer-metadata.js';

const client = {
  name: 'client-7d9c-abcde', namespace: 'shop', workloadName: 'client-v1',
  labels: { app: 'client', version: 'v1', 'service.istio.io/canonical-name': 'client' },
  serviceAccount: 'client', clusterId: 'Kubernetes', meshId: 'cluster.local', instanceIps: '10.1.2.3',
};

test('encode → decode round trip; the id follows Envoy\'s node id form', () => {
  const h = encodePeerMetadata(client);
  assert.equal(h.id, 'sidecar~10.1.2.3~client-7d9c-abcde.shop~shop.svc.cluster.local');
  assert.equal(encodePeerMetadata(client).value, h.value, 'deterministic');
  const meta = decodePeerMetadata(h.value);
  assert.deepEqual({ ...meta, labels: { ...meta!.labels } }, client);
});

test('decodes a Struct written independently (Istio wire form, APP_CONTAINERS as a list)', () => {
  const root = protobuf.Root.fromJSON(protobuf.common.get('google/protobuf/struct.proto')!);
  const Struct = root.lookupType('google.protobuf.Struct');
  const bytes = Struct.encode(Struct.fromObject({ fields: {
    NAME: { stringValue: 'productpage-v1-123' }, NAMESPACE: { stringValue: 'default' }, WORKLOAD_NAME: { stringValue: 'productpage-v1' },
    APP_CONTAINERS: { listValue: { values: [{ stringValue: 'productpage' }, { stringValue: 'sidecar' }] } },
    LABELS: { structValue: { fields: { app: { stringValue: 'productpage' }, version: { stringValue: 'v1' } } } },
    PLATFORM_METADATA: { structValue: { fields: {} } },
  } })).finish();
  const meta = decodePeerMetadata(Buffer.from(bytes).toString('base64'))!;
  assert.equal(meta.workloadName, 'productpage-v1');
  assert.equal(meta.appContainers, 'productpage,sidecar');
  assert.deepEqual(peerLabels(meta, 'source', 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage'), {
    source_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage',
    source_workload: 'productpage-v1', source_workload_namespace: 'default', source_app: 'productpage', source_version: 'v1',
    source_canonical_service: 'productpage', source_canonical_revision: 'v1',
  });
});

test('peer labels for the destination side; no metadata gives only the stats filter\'s defaults', () => {
  const meta = decodePeerMetadata(encodePeerMetadata(client).value);
  const l = peerLabels(meta, 'destination');
  assert.equal(l.destination_workload, 'client-v1');
  assert.equal(l.destination_workload_namespace, 'shop');
  assert.equal(l.destination_app, 'client');
  assert.equal(l.destination_version, 'v1');
  assert.equal(l.destination_cluster, 'Kubernetes');
  assert.equal(l.destination_principal, undefined, 'metadata is not an identity');
  // istio_stats: canonical revision `latest` when the peer is unknown; the rest read `unknown`.
  assert.deepEqual(peerLabels(undefined, 'source'), { source_canonical_revision: 'latest' });
});

test('malformed values decode to undefined and are cached; the cache is bounded', () => {
  assert.equal(decodePeerMetadata('!!!not base64 protobuf'), undefined);
  assert.equal(decodePeerMetadata(''), undefined);
  assert.equal(decodePeerMetadata('x'.repeat(20000)), undefined);
  const cache = new PeerMetadataCache(4);
  const v = encodePeerMetadata(client).value;
  const a = cache.get(v);
  assert.equal(cache.get(v), a, 'decoded once, same object');
  assert.equal(cache.get([v]), a);
  assert.equal(cache.get(undefined), undefined);
  assert.equal(cache.get('/////'), undefined);
  for (let i = 0; i < 10; i++) cache.get(encodePeerMetadata({ ...client, name: `pod-${i}` }).value);
  assert.equal(cache.size, 4);
});

test('metadata headers are taken out of the inbound headers', () => {
  const headers: Record<string, string> = { host: 'x', [PEER_METADATA_HEADER]: 'abc', [PEER_METADATA_ID_HEADER]: 'id' };
  assert.equal(takePeerMetadataHeaders(headers), 'abc');
  assert.deepEqual(headers, { host: 'x' });
  assert.equal(takePeerMetadataHeaders(headers), undefined);
});
