/**
 * The cluster- and route-level policy pieces of the translation (traffic
 * policy → Envoy cluster fields, VirtualService fault → HTTPFault).
 */
import type { Any, Cluster } from './envoy.js';
import type { HTTPRoute, TrafficPolicy } from './istio-types.js';

/** DestinationRule traffic policy → the Envoy cluster fields it sets (besides lb_policy). */
export function translateClusterTrafficPolicy(_policy: TrafficPolicy): Partial<Cluster> {
  return {};
}

/** VirtualService fault → the route's HTTPFault per-filter config. */
export function translateFault(_fault: HTTPRoute['fault']): Any | undefined {
  return undefined;
}
