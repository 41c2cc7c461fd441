/**
 * The immutable, compiled form of one consistent set of Envoy resources.
 * The request path reads only this: a map from authority to virtual host,
 * compiled routes and clusters. A new config compiles a new snapshot, which
 * is swapped in atomically; requests keep the snapshot they started with.
 */
import { compileCorsPolicy, type CorsPolicy } from './cors.js';
import type { Any, EnvoyResources, Route } from '../config/envoy.js';
import { MeshConfigError } from '../errors.js';
import { compileClusterSliced, type CompiledCluster, type LabelsCache } from './cluster.js';
import { ENDPOINTS_PER_SLICE, runNow, runSliced, SliceBudget, UNSLICED, type Sliced, type SliceObserver } from './slices.js';
import { defaultRandom, type RandomSource } from './random.js';
import { compileRoute, type CompiledRoute } from './route.js';
import { matches, type RequestView } from './router.js';
import { compileGlobalLimit, compileRouteGlobalLimit, type GlobalLimitPolicy } from './global-rate-limit.js';
import { compileLocalRateLimit, LocalRateLimiter } from './token-bucket.js';
import { isGatewayListener } from './listener-role.js';

export interface CompiledVirtualHost {
  readonly name: string;
  readonly routes: readonly CompiledRoute[];
  /** the route configuration (Envoy RDS name) it came from */
  readonly routeConfig: string;
  /** local rate limit (token bucket) for this virtual host */
  readonly localLimiter: LocalRateLimiter | undefined;
  /** global rate limit: the descriptors to ask the rate-limit service about */
  readonly globalLimit: GlobalLimitPolicy | undefined;
  /** include_request_attempt_count: each try carries `x-envoy-attempt-count: <n>` (1 for the first) */
  readonly includeAttemptCount: boolean;
  /** the virtual host's CORS policy (core/cors.ts), under the route's */
  readonly cors?: CorsPolicy | undefined;
}

export interface Snapshot {
  readonly version: string;
  readonly resources: EnvoyResources;
  readonly clusters: ReadonlyMap<string, CompiledCluster>;
  /**
   * Finds the outbound virtual host for `host` (lower-case) and `port`; pass
   * `hostPort` (`host:port`) when the caller has it cached, to skip building it.
   */
  virtualHost(host: string, port: number, hostPort?: string): CompiledVirtualHost | undefined;
  /** A named route configuration's table (e.g. a gateway's `http.8080`). */
  routeTable(name: string): RouteTable | undefined;
  /** @internal the local rate limiter of `<route config>/<virtual host>` */
  localLimiter(key: string): (LocalRateLimiter & { source?: Any }) | undefined;
}

export interface CompileOptions {
  previous?: Snapshot | undefined;
  random?: RandomSource;
}

/**
 * Virtual hosts by domain, searched as Envoy does (route_components.proto VirtualHost.domains):
 * exact host:port, exact host, suffix wildcards (`*.foo.com`), prefix wildcards (`foo.*`),
 * then `*`; the longest wildcard first, and a wildcard never matches an empty part.
 */
export class RouteTable {
  private readonly byHostPort = new Map<string, CompiledVirtualHost>();
  private readonly byHost = new Map<string, CompiledVirtualHost>();
  private readonly suffixes: Array<[suffix: string, vhost: CompiledVirtualHost]> = [];
  private readonly prefixes: Array<[prefix: string, vhost: CompiledVirtualHost]> = [];
  private catchAll: CompiledVirtualHost | undefined;

  add(domains: readonly string[], vhost: CompiledVirtualHost): void {
    for (const raw of domains) {
      const domain = raw.toLowerCase();
      if (domain === '*') this.catchAll ??= vhost;
      else if (domain.startsWith('*')) this.suffixes.push([domain.slice(1), vhost]);
      else if (domain.endsWith('*')) this.prefixes.push([domain.slice(0, -1), vhost]);
      else if (hasPort(domain)) setOnce(this.byHostPort, domain, vhost);
      else setOnce(this.byHost, domain, vhost);
    }
  }

  /** Longest wildcard first (a stable sort keeps the first of equal length). */
  seal(): this {
    this.suffixes.sort((a, b) => b[0].length - a[0].length);
    this.prefixes.sort((a, b) => b[0].length - a[0].length);
    return this;
  }

  virtualHost(host: string, port: number, hostPort = `${host}:${port}`): CompiledVirtualHost | undefined {
    const exact = this.byHostPort.get(hostPort) ?? this.byHost.get(host);
    if (exact) return exact;
    // `>` not `>=`: Envoy's `*.foo.com` does not match `.foo.com`, nor `foo.*` match `foo.`.
    for (const [suffix, vhost] of this.suffixes) if (host.length > suffix.length && host.endsWith(suffix)) return vhost;
    for (const [prefix, vhost] of this.prefixes) if (host.length > prefix.length && host.startsWith(prefix)) return vhost;
    return this.catchAll;
  }
}

class SnapshotImpl implements Snapshot {
  constructor(
    readonly version: string,
    readonly resources: EnvoyResources,
    readonly clusters: ReadonlyMap<string, CompiledCluster>,
    private readonly outbound: RouteTable,
    private readonly tables: ReadonlyMap<string, RouteTable>,
    private readonly limiters: ReadonlyMap<string, LocalRateLimiter | undefined>,
  ) {}

  localLimiter(key: string): (LocalRateLimiter & { source?: Any }) | undefined {
    return this.limiters.get(key);
  }

  virtualHost(host: string, port: number, hostPort?: string): CompiledVirtualHost | undefined {
    return this.outbound.virtualHost(host, port, hostPort);
  }

  routeTable(name: string): RouteTable | undefined {
    return this.tables.get(name);
  }
}

/** Compiles Envoy resources; throws MeshConfigError naming the bad resource. */
export function compileSnapshot(resources: EnvoyResources, version: string, options: CompileOptions = {}): Snapshot {
  return runNow(compileSnapshotSlices(resources, version, options, UNSLICED));
}

/**
 * {@link compileSnapshot} without blocking the event loop: the compile runs
 * in slices of `options.sliceSize` endpoints (virtual hosts count as one
 * each), giving the loop a turn between them, while requests keep the
 * snapshot in force. Clusters whose resources are the objects `previous`
 * compiled are reused whole.
 */
export function compileSnapshotSliced(resources: EnvoyResources, version: string, options: SlicedCompileOptions = {}): Promise<Snapshot> {
  return runSliced(compileSnapshotSlices(resources, version, options, new SliceBudget(options.sliceSize ?? ENDPOINTS_PER_SLICE)), options.onSlice);
}

/** Options of {@link compileSnapshotSliced}. */
export interface SlicedCompileOptions extends CompileOptions {
  /** endpoints per slice (default ENDPOINTS_PER_SLICE) */
  sliceSize?: number;
  /** called after each slice (tests observe the slicing with it) */
  onSlice?: SliceObserver;
}

function* compileSnapshotSlices(resources: EnvoyResources, version: string, options: CompileOptions, budget: SliceBudget): Sliced<Snapshot> {
  const random = options.random ?? defaultRandom;
  // Route configurations behind a bound listener (a gateway port) are not outbound routes; an outbound
  // api_listener with the service VIP as its address (istiod's grpcgen) is not bound.
  const bound = new Set<string>();
  for (const l of resources.listeners) {
    const name = l.api_listener?.api_listener.rds?.route_config_name;
    if (name && isGatewayListener(l)) bound.add(name);
    for (const fc of (l.filter_chains ?? []) as Array<{ filters?: Array<{ typed_config?: { rds?: { route_config_name?: string } } }> }>) {
      for (const f of fc.filters ?? []) if (f.typed_config?.rds?.route_config_name) bound.add(f.typed_config.rds.route_config_name);
    }
  }
  const outbound = new RouteTable();
  const tables = new Map<string, RouteTable>();
  const limiters = new Map<string, LocalRateLimiter | undefined>();
  for (const rc of resources.routes) {
    const table = new RouteTable();
    // Decoded from xDS, an empty repeated field is absent: a RouteConfiguration without virtual hosts (or a
    // virtual host without routes) is valid in Envoy and routes nothing.
    const virtualHosts = rc.virtual_hosts ?? [];
    for (let v = 0; v < virtualHosts.length; v++) {
      const vh = virtualHosts[v]!;
      if (budget.spend()) yield;
      let routes: CompiledRoute[];
      let globalLimit: GlobalLimitPolicy | undefined;
      let cors: CorsPolicy | undefined;
      try {
        const rateLimitFilter = vh.typed_per_filter_config?.['envoy.filters.http.ratelimit'];
        globalLimit = compileGlobalLimit(rateLimitFilter, vh.rate_limits);
        routes = (vh.routes ?? []).map((r, i) => withRouteGlobalLimit(compileRoute(r, i), r, i, rateLimitFilter, globalLimit));
        cors = compileCorsPolicy(vh.typed_per_filter_config?.['envoy.filters.http.cors'] ?? vh.cors, 'typed_per_filter_config.envoy.filters.http.cors');
      } catch (err) {
        const [path, ...reason] = (err as Error).message.split(': ');
        throw new MeshConfigError('RouteConfiguration', rc.name, `virtual_hosts[${v}].${path}`, reason.join(': ') || (err as Error).message);
      }
      const limiterKey = `${rc.name}/${vh.name}`;
      const compiled: CompiledVirtualHost = {
        name: vh.name,
        routes,
        routeConfig: rc.name,
        localLimiter: localLimiterFor(limiterKey, vh.typed_per_filter_config?.['envoy.filters.http.local_ratelimit'], options.previous, random),
        globalLimit,
        includeAttemptCount: vh.include_request_attempt_count === true,
        cors,
      };
      limiters.set(limiterKey, compiled.localLimiter);
      table.add(vh.domains, compiled);
      if (!bound.has(rc.name)) outbound.add(vh.domains, compiled);
    }
    tables.set(rc.name, table.seal());
  }
  outbound.seal();

  const assignments = new Map(resources.endpoints.map((e) => [e.cluster_name, e]));
  const clusters = new Map<string, CompiledCluster>();
  const labelsCache: LabelsCache = new Map();
  for (const c of resources.clusters) {
    if (clusters.has(c.name)) throw new MeshConfigError('Cluster', c.name, 'name', 'duplicate cluster name');
    const edsName = c.eds_cluster_config?.service_name || c.name;
    clusters.set(c.name, yield* compileClusterSliced(c, assignments.get(edsName), options.previous?.clusters.get(c.name), random, labelsCache, budget));
  }
  return new SnapshotImpl(version, resources, clusters, outbound, tables, limiters);
}

/** A route's RouteAction.rate_limits over its virtual host's policy (global-rate-limit.ts). */
function withRouteGlobalLimit(compiled: CompiledRoute, route: Route, index: number, filter: Any | undefined, vhost: GlobalLimitPolicy | undefined): CompiledRoute {
  const action = route.route;
  if (!action?.rate_limits?.length) return compiled;
  const include = typeof action.include_vh_rate_limits === 'object' ? action.include_vh_rate_limits.value === true : action.include_vh_rate_limits === true;
  const globalLimit = compileRouteGlobalLimit(filter, action.rate_limits, include, vhost, `routes[${index}].route.rate_limits`);
  return globalLimit === undefined ? compiled : { ...compiled, globalLimit };
}

/** A virtual host's token bucket; the previous snapshot's bucket (and its tokens) survives an unchanged policy. */
function localLimiterFor(key: string, config: Any | undefined, previous: Snapshot | undefined, random: RandomSource): LocalRateLimiter | undefined {
  if (!config) return undefined;
  const old = previous?.localLimiter(key);
  if (old && JSON.stringify(old.source) === JSON.stringify(config)) return old;
  const policy = compileLocalRateLimit(config, key);
  if (!policy) return undefined;
  const limiter = new LocalRateLimiter(policy, { random });
  return Object.assign(limiter, { source: config });
}

/** `/:\d+$/` without a regex: every domain of every virtual host goes through here. */
function hasPort(domain: string): boolean {
  let i = domain.length - 1;
  while (i >= 0 && domain.charCodeAt(i) >= 48 && domain.charCodeAt(i) <= 57) i--;
  return i < domain.length - 1 && i >= 0 && domain.charCodeAt(i) === 58;
}

function setOnce<K, V>(map: Map<K, V>, key: K, value: V): void {
  if (!map.has(key)) map.set(key, value);
}

/** The empty snapshot a mesh starts with before any config arrives. */
export const emptySnapshot: Snapshot = compileSnapshot({ listeners: [], routes: [], clusters: [], endpoints: [] }, '0');


/** The first route of a virtual host whose match accepts the request (Envoy: first match wins). */
export function selectRoute(vhost: CompiledVirtualHost, view: RequestView): CompiledRoute | undefined {
  const routes = vhost.routes;
  for (let i = 0; i < routes.length; i++) if (matches(routes[i]!.match, view)) return routes[i];
  return undefined;
}
