/**
 * Istio's EnvoyFilter recipes for global rate limiting, accepted unchanged:
 *  - HTTP_FILTER inserting `envoy.filters.http.ratelimit` (or its old name
 *    `envoy.ratelimit`, as bookinfo's productpage_envoy_ratelimit.yaml has it):
 *    domain, failure_mode_deny, timeout, stage, the rate_limit_service cluster;
 *  - CLUSTER ADD defining that cluster (bookinfo's `rate_limit_cluster`): a mesh
 *    host name as its address resolves through the registry (ServiceEntry)
 *    to the mesh's own cluster for that host and port; any other address is
 *    added as the static cluster it is;
 *  - VIRTUAL_HOST MERGE of `rate_limits` (istio.io's task);
 *  - HTTP_ROUTE MERGE of `route.rate_limits` / `route.include_vh_rate_limits`
 *    (per route: they replace the virtual host's unless include_vh_rate_limits).
 * Route-configuration matches follow istiod's rc_patch.go: routeConfiguration
 * name and portNumber, vhost name and domainName, route name and action.
 * Every other patch is warned about by support-check.ts (unappliedPatch) and
 * skipped here by the same test, so a warning and the behaviour never differ.
 */
import { msToProto, parseDuration } from '../core/duration.js';
import { validateRateLimits } from '../core/global-rate-limit.js';
import { MeshConfigError } from '../errors.js';
import type { Any, Cluster, Route, RouteConfiguration, VirtualHost } from './envoy.js';
import { TYPE_URL } from './envoy.js';
import type { Destination, IstioResource } from './istio-types.js';
import { labelsMatch, type Service } from './registry.js';
import { ROOT_NAMESPACE } from './sidecar.js';
import { isRateLimitFilter, unappliedPatch, type EnvoyFilterPatch } from './support-check.js';

const RATELIMIT_FILTER = 'envoy.filters.http.ratelimit';

/** What the recipes need from the translation: the registry, the cluster namer and a way to add a cluster. */
export interface EnvoyFilterRateLimitContext {
  readonly registry: ReadonlyMap<string, Service>;
  readonly namer: (d: Destination) => string;
  /** Adds a cluster a CLUSTER ADD patch defines (an address outside the mesh registry). */
  readonly addCluster: (cluster: Cluster) => void;
}

type Side = 'outbound' | 'gateway';
interface Located { readonly at: { kind: 'EnvoyFilter'; resource: string }; readonly index: number }
interface FilterPatch extends Located { readonly context: string; readonly config: Record<string, unknown> }
interface RoutePatch extends Located { readonly context: string; readonly patch: EnvoyFilterPatch }

/**
 * Applies the rate-limit recipes of the EnvoyFilters in the proxy's namespace
 * or the root namespace whose workloadSelector matches it, to its outbound
 * (SIDECAR_OUTBOUND) and gateway (GATEWAY) route configurations (ANY: both).
 * Route configurations are replaced, never mutated: they may be shared (the
 * control plane's translation cache).
 * @throws MeshConfigError naming the EnvoyFilter and the bad field (an unknown descriptor action, a filter without domain …).
 */
export function applyEnvoyFilterRateLimits(resources: readonly IstioResource[], proxy: { namespace: string; labels: Record<string, string> }, outbound: RouteConfiguration[], gateway: RouteConfiguration[], ctx: EnvoyFilterRateLimitContext): void {
  const filters: FilterPatch[] = [];
  const patches: RoutePatch[] = [];
  const added = new Map<string, Record<string, unknown>>();
  for (const r of resources) {
    if (r.kind !== 'EnvoyFilter' || (r.metadata.namespace !== proxy.namespace && r.metadata.namespace !== ROOT_NAMESPACE)) continue;
    const selector = (r.spec.workloadSelector as { labels?: Record<string, string> } | undefined)?.labels;
    if (selector && !labelsMatch(selector, proxy.labels)) continue;
    const resource = `${r.metadata.namespace}/${r.metadata.name}`;
    ((r.spec.configPatches ?? []) as EnvoyFilterPatch[]).forEach((p, index) => {
      if (unappliedPatch(p) !== undefined) return;
      const at = { kind: 'EnvoyFilter' as const, resource };
      const context = p.match?.context ?? 'ANY';
      const value = p.patch?.value;
      if (p.applyTo === 'HTTP_FILTER' && isRateLimitFilter(value) && context !== 'SIDECAR_INBOUND') {
        filters.push({ at, index, context, config: value!.typed_config as Record<string, unknown> });
      } else if (p.applyTo === 'CLUSTER' && p.patch?.operation === 'ADD' && typeof value?.name === 'string') {
        // As istiod's cluster_patch.go: ADD ignores the cluster match, only the context counts.
        added.set(value.name, value);
      } else if ((p.applyTo === 'VIRTUAL_HOST' || p.applyTo === 'HTTP_ROUTE') && context !== 'SIDECAR_INBOUND') {
        const limits = p.applyTo === 'VIRTUAL_HOST' ? value?.rate_limits : (value?.route as Record<string, unknown> | undefined)?.rate_limits;
        if (limits !== undefined) rethrowAt(at, `spec.configPatches[${index}].patch.value${p.applyTo === 'VIRTUAL_HOST' ? '' : '.route'}`, () => validateRateLimits(limits, 'rate_limits'));
        patches.push({ at, index, context, patch: p });
      }
    });
  }
  for (const [routes, side] of [[outbound, 'outbound'], [gateway, 'gateway']] as const) {
    // The last ratelimit filter for this side wins: an HCM runs one ratelimit filter per stage.
    const filter = filters.filter((f) => inContext(f.context, side)).at(-1);
    if (!filter) continue;
    const config = normalizeRateLimitFilter(filter, added, ctx);
    const mine = patches.filter((p) => inContext(p.context, side));
    routes.forEach((rc, i) => {
      const patched = patchRouteConfiguration(rc, mine, side, config);
      if (patched !== rc) routes[i] = patched;
    });
  }
}

function inContext(context: string, side: Side): boolean {
  return context === 'ANY' || context === (side === 'gateway' ? 'GATEWAY' : 'SIDECAR_OUTBOUND');
}

/** The route configuration with the patches that match it merged in; the same object when none does. */
function patchRouteConfiguration(rc: RouteConfiguration, patches: readonly RoutePatch[], side: Side, config: Any): RouteConfiguration {
  let changed = false;
  const virtualHosts = rc.virtual_hosts.map((vh) => {
    let out: VirtualHost = vh;
    for (const { patch } of patches) {
      if (!routeConfigurationMatch(rc, patch, side) || !virtualHostMatch(vh, patch)) continue;
      if (patch.applyTo === 'VIRTUAL_HOST') {
        // proto.Merge appends repeated fields: the patch's rate_limits follow the virtual host's own.
        out = { ...out, rate_limits: [...(out.rate_limits ?? []), ...(patch.patch!.value!.rate_limits as Array<Record<string, unknown>>)] };
      } else {
        const routes = (out.routes ?? []).map((route) => (routeMatch(route, patch) ? mergeRouteAction(route, patch.patch!.value!.route as Record<string, unknown>) : route));
        if (routes.some((r, k) => r !== out.routes![k])) out = { ...out, routes };
      }
    }
    if (out === vh) return vh;
    changed = true;
    return { ...out, typed_per_filter_config: { ...out.typed_per_filter_config, [RATELIMIT_FILTER]: config } };
  });
  return changed ? { ...rc, virtual_hosts: virtualHosts } : rc;
}

function mergeRouteAction(route: Route, value: Record<string, unknown>): Route {
  if (!route.route) return route; // a redirect or direct response has no RouteAction to merge into
  const action = { ...route.route };
  if (Array.isArray(value.rate_limits)) action.rate_limits = [...(action.rate_limits ?? []), ...(value.rate_limits as Array<Record<string, unknown>>)];
  if (value.include_vh_rate_limits !== undefined) action.include_vh_rate_limits = value.include_vh_rate_limits as boolean | { value: boolean };
  return { ...route, route: action };
}

/** rc_patch.go routeConfigurationMatch: name and portNumber (portName and gateway are refused by unappliedPatch). */
function routeConfigurationMatch(rc: RouteConfiguration, p: EnvoyFilterPatch, side: Side): boolean {
  const m = p.match?.routeConfiguration;
  if (!m) return true;
  if (m.name && m.name !== rc.name) return false;
  if (m.portNumber) {
    // Sidecar route configurations are named `host:port`, gateway ones `http.<port>` (istiod: `http.<port>`).
    const port = Number(rc.name.slice(Math.max(rc.name.lastIndexOf(':'), side === 'gateway' ? rc.name.lastIndexOf('.') : -1) + 1));
    if (port !== Number(m.portNumber)) return false;
  }
  return true;
}

function virtualHostMatch(vh: VirtualHost, p: EnvoyFilterPatch): boolean {
  const m = p.match?.routeConfiguration?.vhost;
  if (!m) return true;
  return (!m.name || m.name === vh.name) && (!m.domainName || vh.domains.includes(m.domainName));
}

/** rc_patch.go routeMatch: the route name (VirtualService http[].name) and the action kind. */
function routeMatch(route: Route, p: EnvoyFilterPatch): boolean {
  const m = p.match?.routeConfiguration?.vhost?.route;
  if (!m) return true;
  if (m.name && m.name !== route.name) return false;
  const action = m.action ?? 'ANY';
  if (action === 'ANY') return true;
  const kind = route.direct_response ? 'DIRECT_RESPONSE' : route.redirect ? 'REDIRECT' : 'ROUTE';
  return action === kind;
}

/**
 * JSON-style filter config (`timeout: 10s`) → object form. The service's
 * cluster: an `outbound|port||host` name is created by the namer; a cluster a
 * CLUSTER ADD patch defines resolves to the mesh's cluster when its address is
 * a mesh host, else is added as given.
 */
function normalizeRateLimitFilter(filter: FilterPatch, added: ReadonlyMap<string, Record<string, unknown>>, ctx: EnvoyFilterRateLimitContext): Any {
  const path = `spec.configPatches[${filter.index}].patch.value.typed_config`;
  const config = filter.config;
  const out = { ...config, '@type': TYPE_URL.rateLimit } as Any;
  if (typeof config.domain !== 'string' || config.domain === '') throw new MeshConfigError(filter.at.kind, filter.at.resource, `${path}.domain`, 'the ratelimit filter needs a domain');
  if (typeof config.timeout === 'string') {
    const ms = parseDuration(config.timeout);
    if (typeof ms !== 'number') throw new MeshConfigError(filter.at.kind, filter.at.resource, `${path}.timeout`, `"${config.timeout}" is not a duration`);
    out.timeout = msToProto(ms);
  }
  const service = config.rate_limit_service as { grpc_service?: { envoy_grpc?: { cluster_name?: string } } } | undefined;
  const cluster = service?.grpc_service?.envoy_grpc?.cluster_name;
  if (!cluster) throw new MeshConfigError(filter.at.kind, filter.at.resource, `${path}.rate_limit_service.grpc_service.envoy_grpc.cluster_name`, 'the ratelimit filter needs the rate-limit service cluster (envoy_grpc.cluster_name)');
  const parts = cluster.split('|');
  let resolved = cluster;
  if (parts.length === 4 && parts[0] === 'outbound') {
    resolved = ctx.namer({ host: parts[3]!, ...(parts[2] && { subset: parts[2] }), port: { number: Number(parts[1]) } });
  } else if (added.has(cluster)) {
    resolved = resolveAddedCluster(added.get(cluster)!, ctx);
  }
  if (resolved !== cluster) out.rate_limit_service = { ...(config.rate_limit_service as object), grpc_service: { ...service!.grpc_service, envoy_grpc: { ...service!.grpc_service!.envoy_grpc, cluster_name: resolved } } };
  return out;
}

type SocketAddress = { address?: string; port_value?: number | string };

/** A CLUSTER ADD cluster: the mesh's cluster for a mesh host address, else the cluster itself (static endpoints). */
function resolveAddedCluster(value: Record<string, unknown>, ctx: EnvoyFilterRateLimitContext): string {
  const assignment = value.load_assignment as { endpoints?: Array<{ lb_endpoints?: Array<{ endpoint?: { address?: { socket_address?: SocketAddress } } }> }> } | undefined;
  const addresses = (assignment?.endpoints ?? []).flatMap((e) => e.lb_endpoints ?? []).map((e) => e.endpoint?.address?.socket_address).filter((a): a is SocketAddress => a?.address !== undefined);
  const first = addresses[0];
  // bookinfo's recipe points STRICT_DNS at ratelimit.default.svc.cluster.local:8081: in meshlet that name is
  // a ServiceEntry (or registry) host, so the call goes to its endpoints through the mesh's own cluster.
  if (addresses.length === 1 && first && ctx.registry.has(first.address!)) {
    return ctx.namer({ host: first.address!, port: { number: Number(first.port_value) } });
  }
  const name = value.name as string;
  const cluster: Cluster = { ...(value as unknown as Cluster), name, type: (value.type as Cluster['type']) ?? 'STATIC' };
  const timeout = value.connect_timeout;
  if (typeof timeout === 'string') cluster.connect_timeout = msToProto(parseDuration(timeout) as number);
  ctx.addCluster(cluster);
  return name;
}

function rethrowAt(at: { kind: string; resource: string }, prefix: string, run: () => void): void {
  try {
    run();
  } catch (err) {
    if (err instanceof MeshConfigError) throw err;
    const message = (err as Error).message;
    const i = message.indexOf(': ');
    throw new MeshConfigError(at.kind, at.resource, `${prefix}.${i === -1 ? 'rate_limits' : message.slice(0, i)}`, i === -1 ? message : message.slice(i + 2));
  }
}
