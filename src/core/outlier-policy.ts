/**
 * The policy half of outlier detection: `Cluster.outlier_detection` and the
 * panic threshold compiled with Envoy's defaults. The detector that applies
 * them lives in outlier-detection.ts.
 */
import type { Cluster, OutlierDetection } from '../config/envoy.js';
import { MeshConfigError } from '../errors.js';
import { protoToMs, type ProtoDuration } from './duration.js';

/** OutlierDetection with the Envoy fields envoy.ts does not list yet. */
export interface OutlierDetectionV3 extends OutlierDetection {
  max_ejection_time?: ProtoDuration;
  max_ejection_time_jitter?: ProtoDuration;
  always_eject_one_host?: { value: boolean };
  enforcing_success_rate?: { value: number };
  enforcing_local_origin_success_rate?: { value: number };
}

/** A compiled Cluster.outlier_detection; percentages are 0–100 as in Envoy. */
export interface OutlierDetectionPolicy {
  readonly consecutive5xx: number;
  readonly enforcingConsecutive5xx: number;
  readonly consecutiveGatewayFailure: number;
  readonly enforcingConsecutiveGatewayFailure: number;
  readonly consecutiveLocalOriginFailure: number;
  readonly enforcingConsecutiveLocalOriginFailure: number;
  readonly splitExternalLocalOriginErrors: boolean;
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionTimeMs: number;
  readonly maxEjectionTimeJitterMs: number;
  readonly maxEjectionPercent: number;
  readonly alwaysEjectOneHost: boolean;
}

/** Why a host was ejected: Envoy's OutlierEjectionType names. */
export type EjectionReason = 'CONSECUTIVE_5XX' | 'CONSECUTIVE_GATEWAY_FAILURE' | 'CONSECUTIVE_LOCAL_ORIGIN_FAILURE';

/**
 * A non-HTTP outcome of an attempt (Envoy's Outlier::Result): the connection
 * was made, could not be made, timed out, or was reset before a response.
 */
export type LocalOriginResult = 'connect_success' | 'connect_failed' | 'timeout' | 'reset';

/** Percent fields (Envoy's proto validates `lte: 100`) and the field path an error names. */
const percentFields = [
  ['enforcingConsecutive5xx', 'enforcing_consecutive_5xx'],
  ['enforcingConsecutiveGatewayFailure', 'enforcing_consecutive_gateway_failure'],
  ['enforcingConsecutiveLocalOriginFailure', 'enforcing_consecutive_local_origin_failure'],
  ['maxEjectionPercent', 'max_ejection_percent'],
] as const;

/** Envoy's default healthy_panic_threshold, in percent. */
export const DEFAULT_PANIC_THRESHOLD = 50;

const KIND = 'envoy.config.cluster.v3.Cluster';

function wrapped(v: { value: number } | undefined, fallback: number): number {
  return v === undefined || v === null ? fallback : Number(v.value ?? 0);
}

/**
 * Compiles `Cluster.outlier_detection` with Envoy's defaults (5 consecutive
 * 5xx enforced 100%, 5 gateway failures enforced 0%, 5 local-origin failures
 * enforced 100%, interval 10 s, base ejection 30 s, max ejection
 * max(300 s, base), max ejection 10%). Undefined when the cluster has none.
 * @throws MeshConfigError when max_ejection_time < base_ejection_time or a percent is > 100.
 */
export function compileOutlierDetection(cluster: Pick<Cluster, 'name' | 'outlier_detection'>): OutlierDetectionPolicy | undefined {
  const od = cluster.outlier_detection as OutlierDetectionV3 | undefined;
  if (!od) return undefined;
  const baseEjectionTimeMs = protoToMs(od.base_ejection_time) ?? 30_000;
  const maxEjectionTimeMs = protoToMs(od.max_ejection_time) ?? Math.max(300_000, baseEjectionTimeMs);
  if (maxEjectionTimeMs < baseEjectionTimeMs) {
    throw new MeshConfigError(KIND, cluster.name, 'outlier_detection.max_ejection_time', "outlier detector's max_ejection_time cannot be smaller than base_ejection_time");
  }
  const intervalMs = protoToMs(od.interval) ?? 10_000;
  if (!(intervalMs > 0)) throw new MeshConfigError(KIND, cluster.name, 'outlier_detection.interval', 'must be greater than 0');
  const policy: OutlierDetectionPolicy = {
    consecutive5xx: wrapped(od.consecutive_5xx, 5),
    enforcingConsecutive5xx: wrapped(od.enforcing_consecutive_5xx, 100),
    consecutiveGatewayFailure: wrapped(od.consecutive_gateway_failure, 5),
    enforcingConsecutiveGatewayFailure: wrapped(od.enforcing_consecutive_gateway_failure, 0),
    consecutiveLocalOriginFailure: wrapped(od.consecutive_local_origin_failure, 5),
    enforcingConsecutiveLocalOriginFailure: wrapped(od.enforcing_consecutive_local_origin_failure, 100),
    splitExternalLocalOriginErrors: od.split_external_local_origin_errors === true,
    intervalMs,
    baseEjectionTimeMs,
    maxEjectionTimeMs,
    maxEjectionTimeJitterMs: protoToMs(od.max_ejection_time_jitter) ?? 0,
    maxEjectionPercent: wrapped(od.max_ejection_percent, 10),
    alwaysEjectOneHost: od.always_eject_one_host?.value === true,
  };
  for (const [key, field] of percentFields) {
    if (policy[key] > 100) throw new MeshConfigError(KIND, cluster.name, `outlier_detection.${field}`, `${policy[key]} is above 100`);
  }
  return Object.freeze(policy);
}

/** `common_lb_config.healthy_panic_threshold` in percent (Envoy default 50; 0 disables panic). */
export function compilePanicThreshold(cluster: Pick<Cluster, 'common_lb_config'>): number {
  const value = cluster.common_lb_config?.healthy_panic_threshold?.value;
  // Envoy rounds the Percent to an integer (PROTOBUF_PERCENT_TO_ROUNDED_INTEGER_OR_DEFAULT).
  return value === undefined || value === null ? DEFAULT_PANIC_THRESHOLD : Math.min(100, Math.max(0, Math.round(Number(value))));
}

