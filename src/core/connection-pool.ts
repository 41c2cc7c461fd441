/**
 * The per-endpoint connection-pool settings of a cluster, as Envoy reads them:
 * max_connections from the DEFAULT circuit-breaker thresholds (the cap on
 * connections to one endpoint's pool — the cluster-wide cap on *requests* in
 * flight is the circuit breaker's job), and the HTTP protocol options
 * (`idle_timeout`, `max_requests_per_connection`, `max_connection_duration`)
 * from `typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]`
 * as istiod sends them, or from the deprecated `common_http_protocol_options`
 * on the cluster. Transports build their pools from this, never from the raw resource.
 */
import type { Cluster } from '../config/envoy.js';
import type { CircuitBreakerPolicy } from './circuit-breaker.js';
import { protoToMs, type ProtoDuration } from './duration.js';

/** The typed extension protocol options key istiod uses for upstream HTTP options. */
export const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** Compiled connection-pool settings; `key` tells pools with different settings apart. */
export interface ConnectionPoolPolicy {
  /** Connections one endpoint's pool may open. */
  readonly maxConnections: number;
  /** Requests one connection carries before it is closed (0: unlimited). */
  readonly maxRequestsPerConnection: number;
  /** How long an idle connection is kept, ms (undefined: the transport's default). */
  readonly idleTimeoutMs: number | undefined;
  /** How long a connection may live, ms (undefined: forever). */
  readonly maxConnectionDurationMs: number | undefined;
  readonly key: string;
}

interface CommonHttpProtocolOptions {
  idle_timeout?: ProtoDuration;
  max_requests_per_connection?: { value: number | string };
  max_connection_duration?: ProtoDuration;
}

/** Compiles a cluster's pool settings; `breaker` is the cluster's compiled circuit-breaker policy. */
export function compileConnectionPool(cluster: Cluster, breaker: CircuitBreakerPolicy): ConnectionPoolPolicy {
  const typed = cluster.typed_extension_protocol_options?.[HTTP_PROTOCOL_OPTIONS] as { common_http_protocol_options?: CommonHttpProtocolOptions } | undefined;
  const common = (typed?.common_http_protocol_options ?? cluster.common_http_protocol_options) as CommonHttpProtocolOptions | undefined;
  const deprecatedMax = (cluster as Cluster & { max_requests_per_connection?: { value: number | string } }).max_requests_per_connection;
  const maxRequestsPerConnection = Number(common?.max_requests_per_connection?.value ?? deprecatedMax?.value ?? 0);
  const idleTimeoutMs = protoToMs(common?.idle_timeout);
  const maxConnectionDurationMs = protoToMs(common?.max_connection_duration);
  const maxConnections = breaker.maxConnections;
  return Object.freeze({
    maxConnections,
    maxRequestsPerConnection,
    // Envoy: an idle_timeout of 0 disables it.
    idleTimeoutMs: idleTimeoutMs === 0 ? undefined : idleTimeoutMs,
    maxConnectionDurationMs: maxConnectionDurationMs === 0 ? undefined : maxConnectionDurationMs,
    key: `${maxConnections}/${maxRequestsPerConnection}/${idleTimeoutMs ?? '-'}/${maxConnectionDurationMs ?? '-'}`,
  });
}

/**
 * Which of `candidates` (the endpoints a transport holds pools or channels
 * for) a snapshot's clusters can still send to, each with the pool settings
 * ({@link ConnectionPoolPolicy.key}) of the clusters that hold it: what a
 * transport keeps when it retires pools or channels after a config push.
 * Only candidates are recorded, so a swap of 100,000 endpoints allocates
 * for the few the process talks to, not for every host.
 */
export function endpointsInUse(clusters: Iterable<{ readonly hosts: readonly { readonly id: string }[]; readonly connectionPool: ConnectionPoolPolicy }>, candidates: { has(id: string): boolean }): Map<string, Set<string>> {
  const live = new Map<string, Set<string>>();
  for (const cluster of clusters) {
    const key = cluster.connectionPool.key;
    const hosts = cluster.hosts;
    for (let i = 0; i < hosts.length; i++) {
      const id = hosts[i]!.id;
      if (!candidates.has(id)) continue;
      const keys = live.get(id);
      if (keys === undefined) live.set(id, new Set([key]));
      else keys.add(key);
    }
  }
  return live;
}
