/**
 * Where the path normalization setting travels: the translator writes it on
 * the `virtual_inbound` HCM as istiod's listener builder does; it survives
 * the xDS encoding; the SDK reads it back from whatever control plane sent
 * the listener (an HCM that says nothing keeps the mesh's own setting); and
 * in control-plane mode the control plane's `istio` ConfigMap decides.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { TYPE_URL, type Listener } from '../../src/config/envoy.js';
import { VIRTUAL_INBOUND, inboundConnectionManager, translateInbound } from '../../src/config/translate-inbound.js';
import { createControlPlane } from '../../src/control-plane/index.js';
import { InboundPathSettings, hcmPathNormalization } from '../../src/core/inbound-path.js';
import { validateInboundPolicy } from '../../src/core/inbound-policy.js';
import { pathNormalizationSettings } from '../../src/core/path-normalization.js';
import { MeshConfigError } from '../../src/errors.js';
import { createMesh } from '../../src/mesh.js';
import { normalize } from '../../src/xds/protos.js';
import { configDir } from '../control-plane/helpers.js';
import { meshConfigMap, rawHttp1 } from '../helpers/hostile-paths.js';
import { closeServer, listen } from '../security/helpers.js';

const proxy = { name: 'calculate', namespace: 'default', labels: { app: 'calculate' } };

test('translateInbound writes the HCM fields istiod writes for each option (listener_builder.go)', () => {
  const expected = {
    NONE: { normalize_path: { value: false }, merge_slashes: false, path_with_escaped_slashes_action: 'KEEP_UNCHANGED' },
    BASE: { normalize_path: { value: true }, merge_slashes: false, path_with_escaped_slashes_action: 'KEEP_UNCHANGED' },
    MERGE_SLASHES: { normalize_path: { value: true }, merge_slashes: true, path_with_escaped_slashes_action: 'KEEP_UNCHANGED' },
    DECODE_AND_MERGE_SLASHES: { normalize_path: { value: true }, merge_slashes: true, path_with_escaped_slashes_action: 'UNESCAPE_AND_FORWARD' },
  } as const;
  for (const [option, fields] of Object.entries(expected)) {
    const hcm = inboundConnectionManager(translateInbound([], proxy, { pathNormalization: option as keyof typeof expected }))!;
    assert.deepEqual({ normalize_path: hcm.normalize_path, merge_slashes: hcm.merge_slashes, path_with_escaped_slashes_action: hcm.path_with_escaped_slashes_action }, fields, option);
  }
  assert.deepEqual(inboundConnectionManager(translateInbound([], proxy))!.normalize_path, { value: true }, 'default BASE');
});

test('the fields survive the xDS proto encoding and read back as the same settings', () => {
  for (const option of ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const) {
    const wire = normalize(TYPE_URL.listener, translateInbound([], proxy, { pathNormalization: option }) as object) as Listener;
    assert.deepEqual(hcmPathNormalization(inboundConnectionManager(wire)), pathNormalizationSettings(option), option);
  }
});

test('an HCM without the fields (istiod proxyless listeners) keeps the mesh setting; one that sets normalize_path false turns it off', () => {
  const listener = (extra: Record<string, unknown>): Listener => ({
    name: VIRTUAL_INBOUND,
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': TYPE_URL.httpConnectionManager, stat_prefix: 'x', http_filters: [], ...extra } }] }],
  } as unknown as Listener);
  const snapshot = (extra: Record<string, unknown>) => ({ resources: { listeners: [listener(extra)], routes: [], clusters: [], endpoints: [] } });
  const paths = new InboundPathSettings(pathNormalizationSettings('MERGE_SLASHES'));
  assert.deepEqual(paths.forSnapshot(snapshot({})), pathNormalizationSettings('MERGE_SLASHES'));
  assert.deepEqual(paths.forSnapshot(snapshot({ normalize_path: { value: false } })), pathNormalizationSettings('NONE'));
  assert.deepEqual(paths.forSnapshot(snapshot({ normalize_path: true, path_with_escaped_slashes_action: 3 })), { normalizePath: true, mergeSlashes: false, escapedSlashes: 'UNESCAPE_AND_REDIRECT' });
  assert.throws(() => validateInboundPolicy(snapshot({ path_with_escaped_slashes_action: 'DROP' }).resources), (err: MeshConfigError) => {
    assert.ok(err instanceof MeshConfigError);
    assert.deepEqual([err.kind, err.resource, err.path], ['Listener', VIRTUAL_INBOUND, 'filter_chains[0].filters[0].typed_config.path_with_escaped_slashes_action']);
    return true;
  });
});

test('control-plane mode: the control plane’s istio ConfigMap (DECODE_AND_MERGE_SLASHES) reaches the SDK over xDS and is enforced', async () => {
  const files = await configDir({
    'mesh.yaml': meshConfigMap('DECODE_AND_MERGE_SLASHES'),
    'policy.yaml': `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-admin, namespace: default }
spec: { selector: { matchLabels: { app: calculate } }, action: DENY, rules: [{ to: [{ operation: { paths: ["/admin", "/admin/*"] } }] }] }
`,
  });
  const cp = await createControlPlane({ config: files.dir, port: 0, host: '127.0.0.1', debounceMs: 20 });
  // The SDK's own option says NONE: the control plane's listener wins, as istiod's does for a sidecar.
  const mesh = await createMesh({ workload: { ...proxy }, xds: { server: `127.0.0.1:${cp.port}` }, meshConfig: { pathNormalization: { normalization: 'NONE' } } });
  const seen: string[] = [];
  const server = mesh.createServer((req, res) => { seen.push(req.url ?? ''); res.end(req.url); });
  const port = await listen(server);
  try {
    assert.equal(mesh.configDump().listeners.find((l) => l.name === VIRTUAL_INBOUND) !== undefined, true);
    assert.equal((await rawHttp1(port, '/admin%2Fusers')).status, 403);
    assert.equal((await rawHttp1(port, '/%5cadmin')).status, 403);
    const res = await rawHttp1(port, '/app%2f%2fx');
    assert.deepEqual({ status: res.status, body: res.body }, { status: 200, body: '/app/x' });
    assert.deepEqual(seen, ['/app/x']);
  } finally {
    await closeServer(server);
    await mesh.close();
    await cp.close();
    await files.remove();
  }
});
