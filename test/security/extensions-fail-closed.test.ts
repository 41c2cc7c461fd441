/**
 * WasmPlugin and TrafficExtension fail closed: meshlet runs no Wasm or Lua,
 * so, as istio-agent does with a module it cannot load (istio/istio
 * pkg/wasm/convert.go, createHTTPDefaultFilter; commit 86c9f01f…), the
 * extension becomes a deny-all RBAC filter on the selected workloads'
 * inbound requests, unless its failStrategy is FAIL_OPEN. The plugin below
 * is the validation dataset's own (pkg/test/datasets/validation/dataset/
 * extensions-v1alpha1-WasmPlugin.yaml), with its selector pointed at the
 * test's workload.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createMesh } from '../../src/index.js';
import { closeServer, listen } from './helpers.js';

const wasmPlugin = (extra = '', app = 'productpage') => `
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: openid, namespace: default }
spec:
  selector: { matchLabels: { app: ${app} } }
  url: oci://private-registry:5000/openid-connect/openid:latest
  imagePullPolicy: IfNotPresent
  imagePullSecret: private-registry-pull-secret
  phase: AUTHN
  pluginConfig: { openid_server: authn, openid_realm: ingress }
${extra}`;

async function statusWith(config: string): Promise<{ status: number; body: string; warnings: string[] }> {
  const mesh = await createMesh({ workload: { name: 'productpage-v1', namespace: 'default', labels: { app: 'productpage' } }, config });
  const server = mesh.createServer(((_req: IncomingMessage, res: ServerResponse) => res.end('served')) as never);
  const port = await listen(server);
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    const warnings = mesh.configStatus().filter((s) => s.kind === 'WasmPlugin' || s.kind === 'TrafficExtension').flatMap((s) => s.warnings.map((w) => `${s.status} ${w.path}`));
    return { status: res.status, body: await res.text(), warnings };
  } finally {
    await closeServer(server);
    await mesh.close();
  }
}

test('a WasmPlugin meshlet cannot run denies the selected workload\'s inbound requests (FAIL_CLOSE, the default): 403 RBAC', async () => {
  const r = await statusWith(wasmPlugin());
  assert.equal(r.status, 403);
  assert.equal(r.body, 'RBAC: access denied');
  assert.ok(r.warnings.includes('partial spec.url'), `the plugin is reported: ${r.warnings.join(', ')}`);
});

test('failStrategy FAIL_OPEN: the plugin is skipped, as istio-agent skips it', async () => {
  assert.equal((await statusWith(wasmPlugin('  failStrategy: FAIL_OPEN'))).status, 200);
});

test('a plugin that selects another workload, or only outbound (match mode CLIENT), leaves inbound requests alone', async () => {
  assert.equal((await statusWith(wasmPlugin('', 'reviews'))).status, 200);
  assert.equal((await statusWith(wasmPlugin('  match: [{ mode: CLIENT }]'))).status, 200);
});

test('a plugin matched to other ports denies only there', async () => {
  assert.equal((await statusWith(wasmPlugin('  match: [{ mode: SERVER, ports: [{ number: 1 }] }]'))).status, 200);
});

test('a TrafficExtension with inline Lua fails closed too (Lua has no failStrategy)', async () => {
  const r = await statusWith(`
apiVersion: extensions.istio.io/v1alpha1
kind: TrafficExtension
metadata: { name: lua, namespace: default }
spec:
  selector: { matchLabels: { app: productpage } }
  phase: AUTHN
  lua:
    inlineCode: |
      function envoy_on_request(request_handle)
        request_handle:headers():add("x-lua-injected", "true")
      end
`);
  assert.equal(r.status, 403);
  assert.ok(r.warnings.includes('partial spec.lua.inlineCode'));
});
