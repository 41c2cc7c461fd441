// CLUSTER_ID, MESH_ID and ISTIO_VERSION: options, then the bootstrap's node metadata, then istio-agent's env
// (ISTIO_META_*), then istiod's defaults; the node and telemetry use the same values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh } from '../../src/index.js';
import { buildNode, fromStruct, mergeNode, resolveNodeIdentity } from '../../src/xds/node.js';

test('resolveNodeIdentity: options over bootstrap over env over defaults', () => {
  assert.deepEqual(resolveNodeIdentity({ env: {} }), { clusterId: 'Kubernetes', meshId: 'cluster.local', istioVersion: '1.24.0' });
  assert.equal(resolveNodeIdentity({ env: {}, trustDomain: 'example.org' }).meshId, 'example.org', 'MESH_ID defaults to the trust domain, as istiod');
  const env = { ISTIO_META_CLUSTER_ID: 'east', ISTIO_META_MESH_ID: 'mesh-env', ISTIO_VERSION: '1.23.1' };
  assert.deepEqual(resolveNodeIdentity({ env }), { clusterId: 'east', meshId: 'mesh-env', istioVersion: '1.23.1' });
  assert.equal(resolveNodeIdentity({ env: { ...env, ISTIO_META_ISTIO_VERSION: '1.25.0' } }).istioVersion, '1.25.0', 'ISTIO_META_ISTIO_VERSION first, as istio-agent');
  const bootstrapMetadata = { CLUSTER_ID: 'west', MESH_ID: 'mesh-boot' };
  assert.deepEqual(resolveNodeIdentity({ env, bootstrapMetadata }), { clusterId: 'west', meshId: 'mesh-boot', istioVersion: '1.23.1' });
  assert.deepEqual(resolveNodeIdentity({ env, bootstrapMetadata, options: { clusterId: 'north', istioVersion: '1.26.0' } }),
    { clusterId: 'north', meshId: 'mesh-boot', istioVersion: '1.26.0' });
});

test('the node carries them; a bootstrap node keeps its other metadata but not a stale identity', () => {
  const node = buildNode({ name: 'w', namespace: 'ns', address: '127.0.0.1', clusterId: 'north', meshId: 'm1', istioVersion: '1.26.0' });
  const meta = fromStruct(node.metadata);
  assert.equal(meta.CLUSTER_ID, 'north');
  assert.equal(meta.MESH_ID, 'm1');
  assert.equal(meta.ISTIO_VERSION, '1.26.0');
  const merged = fromStruct(mergeNode(node, { metadata: { CLUSTER_ID: 'west', TRUST_DOMAIN: 'cluster.local' } as never }).metadata);
  assert.equal(merged.CLUSTER_ID, 'north', 'the resolved value (which weighed the bootstrap) wins');
  assert.equal(merged.TRUST_DOMAIN, 'cluster.local');
});

test('createMesh options reach telemetry: istio_build tag and the mesh identity', async (t) => {
  const mesh = await createMesh({ workload: { name: 'w' }, config: [], clusterId: 'north', meshId: 'm1', istioVersion: '1.26.0' });
  t.after(() => mesh.close());
  assert.deepEqual(mesh.nodeIdentity, { clusterId: 'north', meshId: 'm1', istioVersion: '1.26.0' });
  assert.equal(mesh.clusterId, 'north');
  assert.match(await mesh.metrics(), /istio_build\{component="proxy",tag="1\.26\.0"\} 1/);
});
