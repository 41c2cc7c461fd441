/**
 * The meshlet `RateLimit` kind (outbound, `spec.host`) → Envoy per-virtual-host
 * config: a `local_ratelimit` token bucket and, for the global limit, the
 * `ratelimit` filter config plus `rate_limits` descriptor actions — the same
 * pieces Istio's EnvoyFilter-based recipe installs.
 */
import { msToProto, parseDuration } from '../core/duration.js';
import type { Any, RouteConfiguration } from './envoy.js';
import { TYPE_URL } from './envoy.js';
import type { Destination, IstioResource, RateLimitSpec } from './istio-types.js';
import { expandHost, type Service } from './registry.js';
import { translateRateLimitLocal } from './translate-resilience.js';

/** Envoy's default for the rate-limit service call, kept short so traffic never stalls behind it. */
const DEFAULT_GLOBAL_TIMEOUT_MS = 20;

/** Adds outbound rate limits to the virtual hosts of the hosts they name. */
export function applyRateLimits(resources: readonly IstioResource[], routes: RouteConfiguration[], registry: ReadonlyMap<string, Service>, namer: (d: Destination) => string): void {
  for (const r of resources) {
    if (r.kind !== 'RateLimit' || !r.spec.host) continue;
    const at = { kind: 'RateLimit', resource: `${r.metadata.namespace}/${r.metadata.name}`, path: 'spec' };
    const hostname = expandHost(r.spec.host, r.metadata.namespace);
    const local = translateRateLimitLocal(r.spec.local, { ...at, path: 'spec.local' });
    const global = r.spec.global ? globalConfig(r.spec.global, r.metadata.namespace, registry, namer) : undefined;
    for (const rc of routes) {
      for (const vh of rc.virtual_hosts) {
        if (!vh.name.startsWith(`${hostname}:`)) continue;
        const filters: Record<string, Any> = { ...vh.typed_per_filter_config };
        if (local) filters['envoy.filters.http.local_ratelimit'] = local;
        if (global) {
          filters['envoy.filters.http.ratelimit'] = global.filter;
          vh.rate_limits = global.rateLimits;
        }
        vh.typed_per_filter_config = filters;
      }
    }
  }
}

function globalConfig(spec: NonNullable<RateLimitSpec['global']>, namespace: string, registry: ReadonlyMap<string, Service>, namer: (d: Destination) => string) {
  const [host, portText] = splitHostPort(spec.service);
  const hostname = expandHost(host, namespace);
  const port = portText ? Number(portText) : (registry.get(hostname)?.ports[0]?.number ?? 8081);
  const cluster = namer({ host: hostname, port: { number: port } });
  const timeoutMs = spec.timeout ? (parseDuration(spec.timeout) as number) : DEFAULT_GLOBAL_TIMEOUT_MS;
  const filter: Any = {
    '@type': TYPE_URL.rateLimit,
    domain: spec.domain,
    failure_mode_deny: spec.failureModeDeny === true,
    timeout: msToProto(timeoutMs),
    rate_limit_service: { grpc_service: { envoy_grpc: { cluster_name: cluster } }, transport_api_version: 'V3' },
  };
  const rateLimits = (spec.descriptors ?? []).map((d) => ({
    actions: (d.entries ?? []).map((e) => e.value !== undefined
      ? { generic_key: { descriptor_key: e.key, descriptor_value: e.value } }
      : { request_headers: { header_name: e.key, descriptor_key: e.key } }),
  }));
  return { filter, rateLimits };
}

function splitHostPort(text: string): [string, string | undefined] {
  const i = text.lastIndexOf(':');
  return i > 0 && /^\d+$/.test(text.slice(i + 1)) ? [text.slice(0, i), text.slice(i + 1)] : [text, undefined];
}

type Patch = { applyTo?: string; match?: { context?: string; routeConfiguration?: { vhost?: { name?: string } } }; patch?: { operation?: string; value?: Record<string, unknown> } };

/**
 * Istio's documented EnvoyFilter recipe for global rate limiting, accepted
 * unchanged: an HTTP_FILTER patch inserting `envoy.filters.http.ratelimit`
 * (domain, failure_mode_deny, timeout, rate_limit_service cluster) and a
 * VIRTUAL_HOST MERGE patch adding `rate_limits` actions. Applies to the
 * proxy's outbound virtual hosts (SIDECAR_OUTBOUND), its gateway virtual hosts
 * (GATEWAY), or both (ANY), for EnvoyFilters in its namespace or the root
 * namespace whose workloadSelector matches it.
 */
export function applyEnvoyFilterRateLimits(resources: readonly IstioResource[], proxy: { namespace: string; labels: Record<string, string> }, outbound: RouteConfiguration[], gateway: RouteConfiguration[], namer: (d: Destination) => string): void {
  let filter: { config: Any; context: string } | undefined;
  const merges: Array<{ context: string; vhost: string | undefined; rateLimits: Array<Record<string, unknown>> }> = [];
  for (const r of resources) {
    if (r.kind !== 'EnvoyFilter' || (r.metadata.namespace !== proxy.namespace && r.metadata.namespace !== ROOT_NAMESPACE)) continue;
    const selector = (r.spec.workloadSelector as { labels?: Record<string, string> } | undefined)?.labels;
    if (selector && !Object.entries(selector).every(([k, v]) => proxy.labels[k] === v)) continue;
    for (const p of (r.spec.configPatches ?? []) as Patch[]) {
      const context = p.match?.context ?? 'ANY';
      const value = p.patch?.value;
      if (p.applyTo === 'HTTP_FILTER' && value?.name === 'envoy.filters.http.ratelimit' && value.typed_config) {
        filter = { config: normalizeRateLimitFilter(value.typed_config as Record<string, unknown>, namer), context };
      } else if (p.applyTo === 'VIRTUAL_HOST' && p.patch?.operation === 'MERGE' && Array.isArray(value?.rate_limits)) {
        merges.push({ context, vhost: p.match?.routeConfiguration?.vhost?.name || undefined, rateLimits: value.rate_limits as Array<Record<string, unknown>> });
      }
    }
  }
  if (!filter) return;
  const inContext = (context: string, gatewaySide: boolean) => context === 'ANY' || context === (gatewaySide ? 'GATEWAY' : 'SIDECAR_OUTBOUND');
  for (const [routes, gatewaySide] of [[outbound, false], [gateway, true]] as const) {
    if (!inContext(filter.context, gatewaySide)) continue;
    // Copy-on-write: route configurations may be shared (the control plane's translation cache).
    routes.forEach((rc, i) => {
      let changed = false;
      const virtualHosts = rc.virtual_hosts.map((vh) => {
        const limits = merges.filter((m) => inContext(m.context, gatewaySide) && (m.vhost === undefined || m.vhost === vh.name)).flatMap((m) => m.rateLimits);
        if (limits.length === 0) return vh;
        changed = true;
        return { ...vh, rate_limits: [...(vh.rate_limits ?? []), ...limits], typed_per_filter_config: { ...vh.typed_per_filter_config, 'envoy.filters.http.ratelimit': filter!.config } };
      });
      if (changed) routes[i] = { ...rc, virtual_hosts: virtualHosts };
    });
  }
}

/** Istio's root namespace: EnvoyFilters there apply mesh-wide. */
const ROOT_NAMESPACE = 'istio-system';

/** JSON-style filter config (`timeout: 10s`) → object form; makes sure the service's cluster exists. */
function normalizeRateLimitFilter(config: Record<string, unknown>, namer: (d: Destination) => string): Any {
  const out = { ...config, '@type': TYPE_URL.rateLimit } as Any;
  if (typeof config.timeout === 'string') {
    const ms = parseDuration(config.timeout);
    if (typeof ms === 'number') out.timeout = msToProto(ms);
  }
  const cluster = (config.rate_limit_service as { grpc_service?: { envoy_grpc?: { cluster_name?: string } } } | undefined)?.grpc_service?.envoy_grpc?.cluster_name;
  const parts = cluster?.split('|');
  if (parts && parts.length === 4 && parts[0] === 'outbound') namer({ host: parts[3]!, ...(parts[2] && { subset: parts[2] }), port: { number: Number(parts[1]) } });
  return out;
}
