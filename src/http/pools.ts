/**
 * One undici Pool per endpoint, created on first use and reused across
 * requests, clusters and config pushes; closed with the mesh.
 */
import { Pool, type Dispatcher } from 'undici';
import type { CompiledCluster } from '../core/cluster.js';
import type { Host } from '../core/load-balancer.js';

export interface PoolOptions {
  /** extra undici Pool options (TLS connect options later come from the workload identity) */
  connect?: Pool.Options['connect'];
}

export class PoolManager {
  private readonly pools = new Map<string, Pool>();

  constructor(private readonly options: PoolOptions = {}) {}

  /** The pool for a host; its limits come from the cluster that first used it. */
  get(host: Host, cluster: CompiledCluster): Dispatcher {
    let pool = this.pools.get(host.id);
    if (!pool) {
      pool = new Pool(`http://${host.address.includes(':') ? `[${host.address}]` : host.address}:${host.port}`, {
        connect: { timeout: cluster.connectTimeoutMs, ...(this.options.connect as object | undefined) },
        pipelining: 1,
      });
      this.pools.set(host.id, pool);
    }
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
