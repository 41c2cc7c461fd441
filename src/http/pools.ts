/**
 * One undici Pool per endpoint and transport (plaintext, ISTIO_MUTUAL with
 * given SANs, TLS to an external server), created on first use and reused
 * across requests, clusters and config pushes; closed with the mesh.
 *
 * The transport comes from the cluster's transport socket (DestinationRule
 * tls, auto-mTLS) and is resolved once per (compiled cluster, endpoint); the
 * request path pays two map lookups.
 */
import { Pool, type Dispatcher, type buildConnector } from 'undici';
import type { CompiledCluster } from '../core/cluster.js';
import type { Host } from '../core/load-balancer.js';
import { createUpstreamConnector } from '../security/upstream-connector.js';
import { PLAINTEXT, type UpstreamTls, upstreamTlsFor } from '../security/upstream-tls.js';
import type { WorkloadIdentity } from '../security/workload-identity.js';

/** Options of {@link PoolManager}. */
export interface PoolOptions {
  /** Extra undici connect options for plaintext pools. */
  connect?: Pool.Options['connect'];
  /** The workload identity for ISTIO_MUTUAL upstreams (or a getter, read when a pool is created). */
  identity?: WorkloadIdentity | (() => WorkloadIdentity | undefined);
}

/** The endpoint pools of one mesh. */
export class PoolManager {
  private readonly pools = new Map<string, Pool>();
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
    if (pool === undefined) {
      pool = this.poolFor(host, cluster);
      hosts.set(host.id, pool);
    }
    return pool;
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
    const key = `${host.id}\u0001${tls instanceof Error ? `error|${tls.message}` : tls.key}`;
    let pool = this.pools.get(key);
    if (pool !== undefined) return pool;
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
    pool = new Pool(`${scheme}://${address}:${host.port}`, { connect, pipelining: 1 });
    this.pools.set(key, pool);
    return pool;
  }

  /** Closes every pool, letting in-flight requests finish for up to `graceMs`, then destroys. */
  async close(graceMs: number): Promise<void> {
    const pools = [...this.pools.values()];
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

/** A connector that fails every connection (a TLS setting meshlet cannot honour): the request fails as a connect failure. */
function failingConnector(err: Error): buildConnector.connector {
  return (_opts, callback) => {
    queueMicrotask(() => callback(err, null));
  };
}
