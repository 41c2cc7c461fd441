/**
 * The immutable, compiled form of one consistent set of Envoy resources.
 * The request path reads only this: a map from authority to virtual host,
 * compiled routes and clusters. A new config compiles a new snapshot, which
 * is swapped in atomically; requests keep the snapshot they started with.
 */
import type { EnvoyResources } from '../config/envoy.js';
import { MeshConfigError } from '../errors.js';
import { compileCluster, type CompiledCluster } from './cluster.js';
import { defaultRandom, type RandomSource } from './random.js';
import { compileRoute, type CompiledRoute } from './route.js';

export interface CompiledVirtualHost {
  readonly name: string;
  readonly routes: readonly CompiledRoute[];
  /** the route configuration (Envoy RDS name) it came from */
  readonly routeConfig: string;
}

export interface Snapshot {
  readonly version: string;
  readonly resources: EnvoyResources;
  readonly clusters: ReadonlyMap<string, CompiledCluster>;
  /** Finds the virtual host for `host` (lower-case) and `port`. */
  virtualHost(host: string, port: number): CompiledVirtualHost | undefined;
}

export interface CompileOptions {
  previous?: Snapshot | undefined;
  random?: RandomSource;
}

class SnapshotImpl implements Snapshot {
  constructor(
    readonly version: string,
    readonly resources: EnvoyResources,
    readonly clusters: ReadonlyMap<string, CompiledCluster>,
    private readonly byHostPort: ReadonlyMap<string, CompiledVirtualHost>,
    private readonly byHost: ReadonlyMap<string, CompiledVirtualHost>,
    private readonly wildcards: ReadonlyArray<readonly [suffix: string, vhost: CompiledVirtualHost]>,
  ) {}

  virtualHost(host: string, port: number): CompiledVirtualHost | undefined {
    const exact = this.byHostPort.get(`${host}:${port}`) ?? this.byHost.get(host);
    if (exact) return exact;
    for (const [suffix, vhost] of this.wildcards) if (suffix === '' || host.endsWith(suffix)) return vhost;
    return undefined;
  }
}

/** Compiles Envoy resources; throws MeshConfigError naming the bad resource. */
export function compileSnapshot(resources: EnvoyResources, version: string, options: CompileOptions = {}): Snapshot {
  const random = options.random ?? defaultRandom;
  const byHostPort = new Map<string, CompiledVirtualHost>();
  const byHost = new Map<string, CompiledVirtualHost>();
  const wildcards: Array<[string, CompiledVirtualHost]> = [];
  for (const rc of resources.routes) {
    rc.virtual_hosts.forEach((vh, v) => {
      let routes: CompiledRoute[];
      try {
        routes = vh.routes.map(compileRoute);
      } catch (err) {
        throw new MeshConfigError('RouteConfiguration', rc.name, `virtual_hosts[${v}].${(err as Error).message.split(':')[0]}`, (err as Error).message.split(': ').slice(1).join(': ') || (err as Error).message);
      }
      const compiled: CompiledVirtualHost = { name: vh.name, routes, routeConfig: rc.name };
      for (const raw of vh.domains) {
        const domain = raw.toLowerCase();
        if (domain === '*' || domain.startsWith('*')) wildcards.push([domain.slice(1), compiled]);
        else if (/:\d+$/.test(domain)) setOnce(byHostPort, domain, compiled);
        else setOnce(byHost, domain, compiled);
      }
    });
  }
  // Longest wildcard suffix first, the catch-all last (Envoy's domain search order).
  wildcards.sort((a, b) => b[0].length - a[0].length);

  const assignments = new Map(resources.endpoints.map((e) => [e.cluster_name, e]));
  const clusters = new Map<string, CompiledCluster>();
  for (const c of resources.clusters) {
    if (clusters.has(c.name)) throw new MeshConfigError('Cluster', c.name, 'name', 'duplicate cluster name');
    const edsName = c.eds_cluster_config?.service_name || c.name;
    clusters.set(c.name, compileCluster(c, assignments.get(edsName), options.previous?.clusters.get(c.name), random));
  }
  return new SnapshotImpl(version, resources, clusters, byHostPort, byHost, wildcards);
}

function setOnce<K, V>(map: Map<K, V>, key: K, value: V): void {
  if (!map.has(key)) map.set(key, value);
}

/** The empty snapshot a mesh starts with before any config arrives. */
export const emptySnapshot: Snapshot = compileSnapshot({ listeners: [], routes: [], clusters: [], endpoints: [] }, '0');

