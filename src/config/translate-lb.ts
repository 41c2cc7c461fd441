/**
 * DestinationRule `loadBalancer.consistentHash` → Envoy, as istiod writes it:
 * the cluster's lb_policy RING_HASH (ring_hash_lb_config.minimum_ring_size,
 * default 1024) or MAGLEV (maglev_lb_config.table_size) — istiod's
 * ApplyRingHashLoadBalancer — and, on every route to that destination, a
 * route `hash_policy` (ConsistentHashToHashPolicy), the destination's policy
 * chosen as istiod's HashForHTTPDestination: subset port-level, subset,
 * port-level, then the rule's own.
 */
import { parseDuration } from '../core/duration.js';
import { isPrime, MAX_MAGLEV_TABLE_SIZE } from '../core/hash-lb.js';
import { MeshConfigError } from '../errors.js';
import type { Cluster } from './envoy.js';
import type { ConsistentHashLB, Destination, DestinationRuleSpec, LoadBalancerSettings, TrafficPolicy } from './istio-types.js';
import type { ConfigLocation } from './translate-resilience.js';

/** An Envoy RouteAction.HashPolicy in proto-loader object form. */
export type EnvoyHashPolicy = Record<string, unknown>;

function fail(at: ConfigLocation, field: string, reason: string): never {
  throw new MeshConfigError(at.kind, at.resource, `${at.path}.${field}`, reason);
}

/** The cluster fields `consistentHash` sets (nothing for simple balancing). */
export function translateConsistentHash(lb: LoadBalancerSettings | undefined, at: ConfigLocation): Pick<Cluster, 'lb_policy' | 'ring_hash_lb_config' | 'maglev_lb_config'> | undefined {
  const ch = lb?.consistentHash;
  if (!ch) return undefined;
  checkConsistentHash(ch, { ...at, path: `${at.path}.consistentHash` });
  if (ch.maglev) {
    return { lb_policy: 'MAGLEV', ...(ch.maglev.tableSize ? { maglev_lb_config: { table_size: { value: ch.maglev.tableSize } } } : {}) };
  }
  if (ch.ringHash) {
    return { lb_policy: 'RING_HASH', ...(ch.ringHash.minimumRingSize ? { ring_hash_lb_config: { minimum_ring_size: { value: ch.ringHash.minimumRingSize } } } : {}) };
  }
  // The deprecated top-level minimumRingSize; Envoy's default 1024 otherwise (istiod writes it).
  return { lb_policy: 'RING_HASH', ring_hash_lb_config: { minimum_ring_size: { value: ch.minimumRingSize || 1024 } } };
}

/** istiod's validateLoadBalancer checks on consistentHash. */
function checkConsistentHash(ch: ConsistentHashLB, at: ConfigLocation): void {
  const keys = (['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'] as const).filter((k) => ch[k] !== undefined && ch[k] !== null);
  if (keys.length > 1) fail(at, keys[1]!, `only one hash key may be set, got ${keys.join(' and ')}`);
  const cookie = ch.httpCookie;
  if (cookie) {
    if (!cookie.name) fail(at, 'httpCookie.name', 'name required for HttpCookie');
    const seen = new Set<string>();
    (cookie.attributes ?? []).forEach((a, i) => {
      if (!a?.name) fail(at, `httpCookie.attributes[${i}].name`, 'cookie attribute name cannot be empty');
      if (seen.has(a.name)) fail(at, `httpCookie.attributes[${i}].name`, `duplicate cookie attribute name: ${a.name}`);
      seen.add(a.name);
    });
  }
  if (ch.ringHash && ch.maglev) fail(at, 'maglev', 'only one of ringHash or maglev may be set');
  if (ch.minimumRingSize && (ch.ringHash || ch.maglev)) fail(at, 'minimumRingSize', 'only one of MinimumRingSize or Maglev/Ringhash can be specified');
  if (ch.maglev) {
    const size = Number(ch.maglev.tableSize ?? 0);
    if (size === 0) fail(at, 'maglev.tableSize', 'tableSize must be set for maglev');
    if (size >= MAX_MAGLEV_TABLE_SIZE) fail(at, 'maglev.tableSize', `tableSize must be less than ${MAX_MAGLEV_TABLE_SIZE} for maglev`);
    if (!isPrime(size)) fail(at, 'maglev.tableSize', 'tableSize must be a prime number for maglev');
  }
}

/** Istio consistentHash → Envoy RouteAction.HashPolicy (istiod's ConsistentHashToHashPolicy). */
export function consistentHashToHashPolicy(ch: ConsistentHashLB): EnvoyHashPolicy | undefined {
  if (ch.httpHeaderName) return { header: { header_name: ch.httpHeaderName } };
  if (ch.httpCookie) {
    const c = ch.httpCookie;
    const cookie: Record<string, unknown> = { name: c.name, path: c.path ?? '' };
    if (c.ttl !== undefined && c.ttl !== null) {
      const ms = parseDuration(c.ttl);
      const total = typeof ms === 'number' ? ms : 0;
      cookie.ttl = { seconds: Math.floor(total / 1000), nanos: Math.round((total % 1000) * 1e6) };
    }
    if (c.attributes && c.attributes.length > 0) cookie.attributes = c.attributes.map((a) => ({ name: a.name, value: a.value ?? '' }));
    return { cookie };
  }
  if (ch.useSourceIp) return { connection_properties: { source_ip: true } };
  if (ch.httpQueryParameterName) return { query_parameter: { name: ch.httpQueryParameterName } };
  return undefined;
}

function portLevelHash(policy: TrafficPolicy | undefined, port: number | undefined): ConsistentHashLB | undefined {
  if (port === undefined) return undefined;
  return policy?.portLevelSettings?.find((s) => s.port?.number === port)?.loadBalancer?.consistentHash;
}

/**
 * The consistentHash that applies to a route destination (istiod's
 * HashForHTTPDestination): the subset's port-level setting, the subset's, the
 * rule's port-level one (only for a destination that names its port), else
 * the rule's. `servicePort` stands in for an unnamed port on a host's default
 * route (istiod's hashForService).
 */
export function hashForDestination(rule: DestinationRuleSpec | undefined, dest: Destination, servicePort?: number): ConsistentHashLB | undefined {
  if (!rule) return undefined;
  const port = dest.port?.number ?? servicePort;
  const subset = dest.subset ? rule.subsets?.find((s) => s.name === dest.subset) : undefined;
  return portLevelHash(subset?.trafficPolicy, dest.port?.number)
    ?? subset?.trafficPolicy?.loadBalancer?.consistentHash
    ?? portLevelHash(rule.trafficPolicy, port)
    ?? rule.trafficPolicy?.loadBalancer?.consistentHash;
}

/** Whether any policy of a rule (top, port-level, subsets) balances by consistent hash. */
export function usesConsistentHash(rule: DestinationRuleSpec): boolean {
  const inPolicy = (p: TrafficPolicy | undefined): boolean => !!p?.loadBalancer?.consistentHash || !!p?.portLevelSettings?.some((s) => !!s.loadBalancer?.consistentHash);
  return inPolicy(rule.trafficPolicy) || !!rule.subsets?.some((s) => inPolicy(s.trafficPolicy));
}
