/**
 * WasmPlugin and TrafficExtension, which meshlet cannot run, fail closed as
 * Istio fails an extension it cannot load: istio-agent replaces a Wasm
 * filter whose module does not load with an RBAC filter that denies every
 * request (pkg/wasm/convert.go, createHTTPDefaultFilter), unless the plugin
 * says FAIL_OPEN. Ignoring an authentication plugin would let through what
 * it exists to stop, so the stand-in is put on the inbound chain of every
 * workload the extension selects.
 */
import type { ExtensionSpec, IstioResource } from './istio-types.js';
import type { HttpFilter } from './translate-inbound.js';
import type { ProxyInfo } from './translate.js';
import { labelsMatch } from './registry.js';
import { GATEWAY_NAME_LABEL } from './gateway-api/ingress.js';
import { RBAC_TYPE_URL, type RbacFilterConfig, type RbacPermission } from '../core/rbac.js';

/** The stat prefix istio-agent gives its stand-in (wasm.DefaultDenyStatPrefix). */
export const EXTENSION_DENY_STAT_PREFIX = 'wasm-default-deny';

/** Deny-all RBAC filters for the extensions that select this proxy and fail closed, in config order. */
export function extensionFilters(resources: readonly IstioResource[], proxy: ProxyInfo, rootNamespace: string): HttpFilter[] {
  const out: HttpFilter[] = [];
  for (const r of resources) {
    if (r.kind !== 'WasmPlugin' && r.kind !== 'TrafficExtension') continue;
    const { namespace, name } = r.metadata;
    if (namespace !== proxy.namespace && namespace !== rootNamespace) continue;
    const spec = r.spec;
    if (!selects(spec, proxy, namespace)) continue;
    const strategy = r.kind === 'WasmPlugin' ? spec.failStrategy : spec.wasm?.failStrategy;
    if (strategy === 'FAIL_OPEN' && spec.lua === undefined) continue;
    const inbound = spec.match === undefined || spec.match.length === 0 || spec.match.some((m) => m.mode !== 'CLIENT');
    if (!inbound) continue;
    out.push({ name: `${namespace}.${name}`, typed_config: { '@type': RBAC_TYPE_URL, ...denyFor(ports(spec)) } });
  }
  return out;
}

/** A resource bound with targetRef(s) selects the gateway pods of a Gateway it names; else its selector picks workloads. */
function selects(spec: ExtensionSpec, proxy: ProxyInfo, namespace: string): boolean {
  const refs = spec.targetRefs ?? (spec.targetRef ? [spec.targetRef] : undefined);
  if (refs !== undefined && refs.length > 0) {
    return namespace === proxy.namespace && refs.some((ref) => ref.kind === 'Gateway' && ref.name === proxy.labels[GATEWAY_NAME_LABEL]);
  }
  return labelsMatch(spec.selector?.matchLabels, proxy.labels);
}

/** The inbound ports a match names (undefined: every port). */
function ports(spec: ExtensionSpec): number[] | undefined {
  const listed = (spec.match ?? []).filter((m) => m.mode !== 'CLIENT').flatMap((m) => (m.ports ?? []).map((p) => p.number));
  const anyPort = (spec.match ?? []).some((m) => m.mode !== 'CLIENT' && (m.ports ?? []).length === 0);
  return listed.length === 0 || anyPort ? undefined : listed;
}

/** Envoy RBAC: empty rules deny everything (istio-agent's denyHTTPTypedConfig); on some ports, a DENY for those ports. */
function denyFor(onPorts: number[] | undefined): RbacFilterConfig & { rules_stat_prefix: string } {
  if (onPorts === undefined) return { rules: {}, rules_stat_prefix: EXTENSION_DENY_STAT_PREFIX };
  const permissions: RbacPermission[] = [{ or_rules: { rules: onPorts.map((p) => ({ destination_port: p })) } }];
  return { rules: { action: 'DENY', policies: { 'extension-not-loaded': { permissions, principals: [{ any: true }] } } }, rules_stat_prefix: EXTENSION_DENY_STAT_PREFIX };
}
