/**
 * The support table's rows for the kinds of extension-schemas.ts: accepted
 * so Istio's YAML loads, each field reported. Generated into
 * docs/istio-compatibility.md with the rest.
 */
import type { FieldSupport, KindSupport } from './support.js';

const applied = (note?: string): FieldSupport => ({ status: 'applied', ...(note !== undefined && { note }) });
const unsupported = (note: string): FieldSupport => ({ status: 'unsupported', note });

const FAILS_CLOSED = 'meshlet runs no Wasm or Lua: as istio-agent does with a module it cannot load (pkg/wasm/convert.go), the extension becomes a deny-all RBAC filter on the inbound requests of the workloads it selects (403), unless its failStrategy is FAIL_OPEN (then it is skipped)';
const MODULE = 'part of the module meshlet does not run (see spec.url)';
const selection: Record<string, FieldSupport> = {
  'spec.selector.matchLabels': applied('the workloads whose inbound requests the extension would see'),
  'spec.targetRef': applied('kind Gateway: the gateway workloads of that Gateway; other kinds select no meshlet workload'),
  'spec.targetRefs': applied('as targetRef'),
  'spec.phase': applied('where Istio would insert it; meshlet\'s stand-in denies in any phase'),
  'spec.priority': applied('informational: one deny-all is like another'),
  'spec.match[].mode': applied('SERVER, CLIENT_AND_SERVER or UNDEFINED: inbound; CLIENT alone: outbound, which meshlet does not stand in for (a warning says so)'),
  'spec.match[].ports[].number': applied('the inbound ports the stand-in denies on (all when none)'),
};
function wasm(p: string): Record<string, FieldSupport> {
  return {
    [`${p}url`]: unsupported(FAILS_CLOSED),
    [`${p}failStrategy`]: applied('FAIL_OPEN: skipped; FAIL_CLOSE (default), FAIL_RELOAD: deny-all'),
    [`${p}sha256`]: unsupported(MODULE), [`${p}imagePullPolicy`]: unsupported(MODULE), [`${p}imagePullSecret`]: unsupported(MODULE),
    [`${p}verificationKey`]: unsupported(MODULE), [`${p}pluginConfig`]: unsupported(MODULE), [`${p}pluginName`]: unsupported(MODULE),
    [`${p}vmConfig`]: unsupported(MODULE), [`${p}type`]: unsupported(MODULE),
  };
}
const L4 = unsupported('meshlet routes HTTP and gRPC (L7) inside the process: TCP, TLS passthrough and UDP routes are not programmed');
const PROXY = unsupported('a setting of the Envoy process; meshlet runs inside the app\'s process and has none');

/** Extension, proxy and L4 kinds: their support rows. */
export const EXTENSION_SUPPORT: Readonly<Record<string, KindSupport>> = {
  WasmPlugin: {
    note: 'Accepted so Istio\'s YAML loads; the plugin fails closed where it applies (see spec.url).',
    fields: { ...selection, ...wasm('spec.') },
  },
  TrafficExtension: {
    note: 'Istio\'s successor of WasmPlugin (Wasm or inline Lua). Accepted; it fails closed where it applies, as a WasmPlugin does.',
    fields: { ...selection, ...wasm('spec.wasm.'), 'spec.lua.inlineCode': unsupported('meshlet runs no Lua: the extension becomes a deny-all RBAC filter on the selected workloads\' inbound requests (there is no failStrategy for Lua)') },
  },
  ProxyConfig: {
    note: 'Envoy process settings (concurrency, image, environment): accepted, without effect.',
    fields: { 'spec.selector.matchLabels': applied('informational'), 'spec.concurrency': PROXY, 'spec.environmentVariables': PROXY, 'spec.image.imageType': PROXY },
  },
  ...Object.fromEntries(['TCPRoute', 'TLSRoute', 'UDPRoute'].map((kind) => [kind, {
    note: `Gateway API ${kind}: accepted so the manifests load; not programmed (L4).`,
    fields: { 'spec.parentRefs': L4, 'spec.hostnames': L4, 'spec.rules': L4 },
  }])),
};
