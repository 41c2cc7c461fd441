/**
 * The hand-written SotW and Delta DiscoveryResponse bytes
 * (src/control-plane/xds-wire.ts) are exactly what protobufjs writes for the
 * same message, and decode back to it — for small and large resources (one-,
 * two- and three-byte lengths).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { encodeDeltaBody, encodeSotwBody, withNonce } from '../../src/control-plane/xds-wire.js';
import { EncodingCache } from '../../src/control-plane/encoding-cache.js';
import { TYPE_URL } from '../../src/config/envoy.js';
import { envoyRoot } from '../../src/xds/protos.js';

test('encodeSotwBody + withNonce give protobufjs\'s bytes for the same DiscoveryResponse', () => {
  const response = envoyRoot().lookupType('envoy.service.discovery.v3.DiscoveryResponse');
  const encodings = new EncodingCache();
  const cluster = (name: string, pad: number) => ({ name, type: 'EDS', eds_cluster_config: { service_name: name + 'x'.repeat(pad) } });
  const resources = [cluster('a', 0), cluster('b', 200), cluster('c', 20_000)].map((c) => encodings.encode(TYPE_URL.cluster, c));
  for (const picked of [[], resources.slice(0, 1), resources]) {
    const ours = withNonce(encodeSotwBody('v1a2b3c', picked, TYPE_URL.cluster), '17');
    const theirs = Buffer.from(response.encode({
      version_info: 'v1a2b3c',
      resources: picked.map((r) => r.any),
      type_url: TYPE_URL.cluster,
      control_plane: { identifier: 'meshlet' },
      nonce: '17',
    }).finish());
    // protobufjs writes fields in id order (nonce = 5 before control_plane = 6); we append the nonce last, which
    // protobuf allows (fields may come in any order). Compare the decoded messages and the bytes without the nonce.
    const decoded = response.toObject(response.decode(ours), { bytes: Buffer }) as Record<string, unknown>;
    assert.deepEqual(decoded, response.toObject(response.decode(theirs), { bytes: Buffer }));
    const withoutNonce = Buffer.from(response.encode({ version_info: 'v1a2b3c', resources: picked.map((r) => r.any), type_url: TYPE_URL.cluster, control_plane: { identifier: 'meshlet' } }).finish());
    assert.deepEqual(encodeSotwBody('v1a2b3c', picked, TYPE_URL.cluster), withoutNonce);
  }
});

test('encodeDeltaBody + withNonce give protobufjs\'s bytes for the same DeltaDiscoveryResponse', () => {
  const response = envoyRoot().lookupType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
  const encodings = new EncodingCache();
  const cluster = (name: string, pad: number) => ({ name, type: 'EDS', eds_cluster_config: { service_name: name + 'x'.repeat(pad) } });
  const named = [cluster('a', 0), cluster('b', 200), cluster('c', 20_000)].map((c) => [c.name, encodings.encode(TYPE_URL.cluster, c)] as const);
  for (const [picked, removed] of [[[], []], [named.slice(0, 1), []], [named, ['gone', 'ü-gone-too']], [[], ['x'.repeat(300)]]] as const) {
    const fields = {
      system_version_info: 'g7',
      resources: picked.map(([name, r]) => ({ name, version: r.hash, resource: r.any })),
      type_url: TYPE_URL.cluster,
      removed_resources: removed,
      control_plane: { identifier: 'meshlet' },
    };
    const body = encodeDeltaBody('g7', picked, TYPE_URL.cluster, removed);
    // Without the nonce, field order is protobufjs's (id order): the very same bytes.
    assert.deepEqual(body, Buffer.from(response.encode(fields).finish()));
    const decoded = response.toObject(response.decode(withNonce(body, '17')), { bytes: Buffer }) as Record<string, unknown>;
    assert.deepEqual(decoded, response.toObject(response.decode(response.encode({ ...fields, nonce: '17' }).finish()), { bytes: Buffer }));
  }
});
