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
import { expandHost, labelsMatch, type Service } from './registry.js';
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

/**
 * The RateLimit kind's `global` block with a `workloadSelector` (no `host`) on
 * a gateway it selects: every virtual host of the gateway asks the rate-limit
 * service, so the gateway limits what it accepts (istio.io's ingress global
 * limit). Same namespace as the workload, as the inbound local limit.
 */
export function applySelectedGlobalRateLimits(resources: readonly IstioResource[], proxy: { namespace: string; labels: Record<string, string> }, gatewayRoutes: RouteConfiguration[], registry: ReadonlyMap<string, Service>, namer: (d: Destination) => string): void {
  for (const r of resources) {
    if (r.kind !== 'RateLimit' || r.spec.host || !r.spec.workloadSelector || !r.spec.global || r.metadata.namespace !== proxy.namespace) continue;
    if (!labelsMatch(r.spec.workloadSelector.matchLabels ?? {}, proxy.labels)) continue;
    const global = globalConfig(r.spec.global, r.metadata.namespace, registry, namer);
    gatewayRoutes.forEach((rc, i) => {
      // Copy-on-write: route configurations may be shared (the control plane's translation cache).
      gatewayRoutes[i] = {
        ...rc,
        virtual_hosts: rc.virtual_hosts.map((vh) => ({
          ...vh,
          rate_limits: [...(vh.rate_limits ?? []), ...global.rateLimits],
          typed_per_filter_config: { ...vh.typed_per_filter_config, 'envoy.filters.http.ratelimit': global.filter },
        })),
      };
    });
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
