/**
 * The live state of a snapshot's clusters as plain JSON, like Envoy's admin
 * /clusters: each endpoint's active requests and outlier-detection state,
 * and the cluster's circuit-breaker counters. `mesh.clusters()` and the
 * admin endpoint serve it.
 */
import type { CircuitBreaker } from './circuit-breaker.js';
import type { Snapshot } from './snapshot.js';

/** One cluster in `mesh.clusters()`. */
export interface ClusterStatus {
  name: string;
  circuitBreakers: ReturnType<CircuitBreaker['stats']>;
  hosts: Array<{ address: string; labels: Record<string, string>; activeRequests: number; ejected: boolean; ejectionReason?: string | undefined; ejectedUntil?: string | undefined; timesEjected: number }>;
}

/** Every cluster of `snapshot`, with its hosts' live state. */
export function clusterStatuses(snapshot: Snapshot): ClusterStatus[] {
  return [...snapshot.clusters.values()].map((c) => {
    const outlier = c.outlier?.state();
    const byHost = new Map(outlier?.hosts.map((h) => [h.host, h]));
    return {
      name: c.name,
      circuitBreakers: c.breaker.stats(),
      hosts: c.hosts.map((h) => {
        const o = byHost.get(h.id);
        return {
          address: h.id, labels: { ...h.labels }, activeRequests: h.active,
          ejected: o?.ejected ?? false,
          ...(o?.ejected && { ejectionReason: o.reason, ejectedUntil: o.ejectedUntilMs === undefined ? undefined : new Date(o.ejectedUntilMs).toISOString() }),
          timesEjected: o?.timesEjected ?? 0,
        };
      }),
    };
  });
}
