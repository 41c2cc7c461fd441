/**
 * One undici Pool per endpoint, transport (plaintext, ISTIO_MUTUAL with given
 * SANs, TLS to an external server) and connection-pool settings, created on
 * first use and reused across requests, clusters and config pushes. A pool
 * opens at most the cluster's max_connections to its endpoint, closes a
 * connection after max_requests_per_connection requests, after idle_timeout
 * idle and (drained) past max_connection_duration; it is retired (closed once its in-flight requests finish) when its
 * endpoint leaves the snapshot, and closed with the mesh.
 *
 * The transport comes from the cluster's transport socket (DestinationRule
 * tls, auto-mTLS) and is resolved once per (compiled cluster, endpoint); the
 * request path pays two map lookups.
 */
import { Pool, type Dispatcher, type buildConnector } from 'undici';
import type { CompiledCluster } from '../core/cluster.js';
import { endpointsInUse, type ConnectionPoolPolicy } from '../core/connection-pool.js';
import type { Host } from '../core/load-balancer.js';
import { createUpstreamConnector } from '../security/upstream-connector.js';
import { PLAINTEXT, type UpstreamTls, upstreamTlsFor } from '../security/upstream-tls.js';
import type { WorkloadIdentity } from '../security/workload-identity.js';
import { localIdentity, peerIdentity } from '../security/tls.js';
import type { TLSSocket } from 'node:tls';

/** Options of {@link PoolManager}. */
export interface PoolOptions {
  /** Extra undici connect options for plaintext pools. */
  connect?: Pool.Options['connect'];
  /** The workload identity for ISTIO_MUTUAL upstreams (or a getter, read when a pool is created). */
  identity?: WorkloadIdentity | (() => WorkloadIdentity | undefined);
}

interface PoolEntry {
  readonly pool: Pool;
  readonly hostId: string;
  readonly policyKey: string;
}

/** The endpoint pools of one mesh. */
export class PoolManager {
  private readonly pools = new Map<string, PoolEntry>();
  /** Per compiled cluster: host id → pool. Dropped with the snapshot that owns the cluster. */
  private readonly byCluster = new WeakMap<CompiledCluster, Map<string, Pool>>();
  private identityOf: () => WorkloadIdentity | undefined;

  constructor(private readonly options: PoolOptions = {}) {
    const id = options.identity;
    this.identityOf = typeof id === 'function' ? id : () => id;
  }

  /** Sets the workload identity used for mTLS pools created from now on (the mesh calls it once at start). */
  setIdentity(identity: WorkloadIdentity | undefined): void {
    this.identityOf = () => identity;
  }

  /** The pool for a host in a cluster; its limits come from the cluster that first used it. */
  get(host: Host, cluster: CompiledCluster): Dispatcher {
    let hosts = this.byCluster.get(cluster);
    if (hosts === undefined) this.byCluster.set(cluster, (hosts = new Map()));
    let pool = hosts.get(host.id);
    // A pool retired by a config push can still be reached from a request of the older snapshot (a retry).
    if (pool === undefined || pool.closed || pool.destroyed) {
      pool = this.poolFor(host, cluster);
      hosts.set(host.id, pool);
    }
    return pool;
  }

  /** How many endpoint pools are open (tests, config dumps). */
  get size(): number {
    return this.pools.size;
  }

  /**
   * Retires the pools no cluster of `clusters` can use any more: their endpoint
   * left, or its clusters' pool settings changed. A retired pool finishes its
   * in-flight requests, then closes its connections.
   */
  retain(clusters: Iterable<CompiledCluster>): void {
    if (this.pools.size === 0) return;
    const held = new Set<string>();
    for (const entry of this.pools.values()) held.add(entry.hostId);
    const live = endpointsInUse(clusters, held);
    for (const [key, entry] of this.pools) {
      if (live.get(entry.hostId)?.has(entry.policyKey)) continue;
      this.pools.delete(key);
      entry.pool.close().catch(() => undefined);
    }
  }

  /** The transport the pools would use for a host (config dumps, tests). */
  transportOf(host: Host, cluster: CompiledCluster): UpstreamTls | Error {
    const tls = upstreamTlsFor(cluster.source, cluster.assignment, host.id);
    // Auto-mTLS without an identity of our own: talk plaintext (a PERMISSIVE peer accepts it), as Istio without a sidecar.
    if (!(tls instanceof Error) && tls.kind === 'istio' && tls.auto && this.identityOf() === undefined) return PLAINTEXT;
    return tls;
  }

  private poolFor(host: Host, cluster: CompiledCluster): Pool {
    const tls = this.transportOf(host, cluster);
    const settings = cluster.connectionPool;
    const key = `${host.id}\u0001${tls instanceof Error ? `error|${tls.message}` : tls.key}\u0001${settings.key}`;
    const existing = this.pools.get(key);
    if (existing !== undefined && !existing.pool.closed && !existing.pool.destroyed) return existing.pool;
    const address = host.address.includes(':') ? `[${host.address}]` : host.address;
    const timeout = cluster.connectTimeoutMs;
    let connect: Pool.Options['connect'];
    let scheme = 'http';
    if (tls instanceof Error) {
      connect = failingConnector(tls);
    } else if (tls.kind === 'plaintext') {
      connect = { timeout, ...(this.options.connect as object | undefined) };
    } else {
      scheme = 'https';
      try {
        connect = createUpstreamConnector(tls, this.identityOf(), { timeout });
      } catch (err) {
        connect = failingConnector(err as Error);
      }
    }
    const identities: TlsIdentities = {};
    if (scheme === 'https' && typeof connect === 'function') connect = recordingIdentities(connect, identities);
    const pool = new Pool(`${scheme}://${address}:${host.port}`, poolOptions(connect, settings));
    if (scheme === 'https') tlsIdentities.set(pool, identities);
    this.pools.set(key, { pool, hostId: host.id, policyKey: settings.key });
    return pool;
  }

  /** Closes every pool, letting in-flight requests finish for up to `graceMs`, then destroys. */
  async close(graceMs: number): Promise<void> {
    const pools = [...this.pools.values()].map((e) => e.pool);
    this.pools.clear();
    await Promise.all(pools.map(async (pool) => {
      let timer: NodeJS.Timeout | undefined;
      const graceful = pool.close().then(() => true, () => true);
      const timeout = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), graceMs); });
      const closed = await Promise.race([graceful, timeout]);
      clearTimeout(timer);
      if (!closed) await pool.destroy().catch(() => undefined);
    }));
  }
}

/** The SPIFFE ids of a TLS pool's connections: the upstream's (destination_principal) and ours (source_principal). */
export interface TlsIdentities {
  peer?: string;
  local?: string;
}

const tlsIdentities = new WeakMap<Dispatcher, TlsIdentities>();

/** The identities a TLS pool's last connection presented; undefined for plaintext pools. */
export function tlsIdentitiesOf(pool: Dispatcher): TlsIdentities | undefined {
  return tlsIdentities.get(pool);
}

/** A connector that notes what each new connection's certificates say (a pool is one endpoint, so they hold for its requests). */
function recordingIdentities(connect: buildConnector.connector, into: TlsIdentities): buildConnector.connector {
  return (opts, callback) => connect(opts, (...args: Parameters<buildConnector.Callback>) => {
    const socket = args[1] as TLSSocket | null;
    if (args[0] === null && socket !== null) {
      into.peer = peerIdentity(socket);
      into.local = localIdentity(socket);
    }
    (callback as (...a: unknown[]) => void)(...args);
  });
}

/** undici Pool options for an endpoint: Envoy's per-endpoint connection-pool settings. */
function poolOptions(connect: Pool.Options['connect'], settings: ConnectionPoolPolicy): Pool.Options {
  const options: Pool.Options = { connect, pipelining: 1, connections: settings.maxConnections };
  // undici 7 lets a connection carry maxRequestsPerClient + 1 requests (it marks the connection for reset
  // only once its counter passes the limit); Envoy's limit counts every request. 1 is keep-alive off,
  // which the exchange asks per request (`reset`), since undici reads 0 as "no limit".
  if (settings.maxRequestsPerConnection > 1) options.maxRequestsPerClient = settings.maxRequestsPerConnection - 1;
  if (settings.idleTimeoutMs !== undefined) {
    // The server's keep-alive hint may shorten it, never lengthen it.
    options.keepAliveTimeout = settings.idleTimeoutMs;
    options.keepAliveMaxTimeout = settings.idleTimeoutMs;
  }
  // undici retires a client (its connection) past this age and drains it, as Envoy drains a connection
  // past max_connection_duration; the check runs when the pool picks a client for a request.
  if (settings.maxConnectionDurationMs !== undefined) options.clientTtl = settings.maxConnectionDurationMs;
  return options;
}

/** A connector that fails every connection (a TLS setting meshlet cannot honour): the request fails as a connect failure. */
function failingConnector(err: Error): buildConnector.connector {
  return (_opts, callback) => {
    queueMicrotask(() => callback(err, null));
  };
}
