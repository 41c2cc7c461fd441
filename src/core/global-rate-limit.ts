/**
 * The global rate limit of a virtual host, compiled from Envoy's ratelimit
 * filter config (domain, failure_mode_deny, timeout, the rate-limit service
 * cluster) and the virtual host's `rate_limits` actions. At request time the
 * actions produce the descriptors sent to the rate-limit service.
 */
import type { Any, HeaderMatcher } from '../config/envoy.js';
import { protoToMs } from './duration.js';
import { compileHeader, headersMatch, type CompiledHeaderMatch } from './router.js';

export interface DescriptorEntry {
  readonly key: string;
  readonly value: string;
}

/**
 * One action of a rate_limits entry: a static entry, one read from a request
 * header (pseudo-headers `:path`, `:method`, `:authority` included), the
 * caller's address, the route's destination cluster, or a static entry that
 * applies only when headers match.
 */
type Action =
  | { readonly kind: 'static'; readonly entry: DescriptorEntry }
  | { readonly kind: 'header'; readonly header: string; readonly key: string; readonly skipIfAbsent: boolean }
  | { readonly kind: 'remote' }
  | { readonly kind: 'cluster' }
  | { readonly kind: 'match'; readonly entry: DescriptorEntry; readonly headers: readonly CompiledHeaderMatch[]; readonly expect: boolean };

export interface GlobalLimitPolicy {
  readonly domain: string;
  readonly failureModeDeny: boolean;
  readonly timeoutMs: number;
  /** status_on_error: the status of a failure_mode_deny reply when the service fails (Envoy's default 500) */
  readonly statusOnError: number;
  /** the Envoy cluster of the rate-limit service */
  readonly cluster: string;
  /** the filter's `stage`: only rate_limits entries of the same stage apply (both default 0) */
  readonly stage: number;
  readonly rateLimits: ReadonlyArray<readonly Action[]>;
}

/** The actions meshlet runs; Envoy's others (metadata, source_cluster, extension …) are refused, never skipped. */
const KNOWN_ACTIONS = new Set(['generic_key', 'request_headers', 'destination_cluster', 'remote_address', 'header_value_match']);
/** The fields of a rate_limits entry meshlet reads. */
const KNOWN_ENTRY_FIELDS = new Set(['actions', 'stage']);

interface RateLimitAction {
  generic_key?: { descriptor_key?: string; descriptor_value: string };
  request_headers?: { header_name: string; descriptor_key: string; skip_if_absent?: boolean };
  destination_cluster?: Record<string, never>;
  remote_address?: Record<string, never>;
  header_value_match?: { descriptor_key?: string; descriptor_value: string; expect_match?: boolean | { value: boolean }; headers?: HeaderMatcher[] };
}

type FilterConfig = Any<{ domain?: string; stage?: number; failure_mode_deny?: boolean; status_on_error?: { code?: number | string }; timeout?: { seconds?: number | string; nanos?: number }; rate_limit_service?: { grpc_service?: { envoy_grpc?: { cluster_name?: string } } } }>;

/**
 * Compiles the filter config and actions; undefined when the virtual host has
 * no global limit. A bad header regex or an unknown action throws
 * `rate_limits[i]…: reason`.
 */
export function compileGlobalLimit(filter: Any | undefined, rateLimits: Array<Record<string, unknown>> | undefined): GlobalLimitPolicy | undefined {
  if (!filter || !rateLimits || rateLimits.length === 0) return undefined;
  const f = filter as FilterConfig;
  const cluster = f.rate_limit_service?.grpc_service?.envoy_grpc?.cluster_name;
  if (!f.domain || !cluster) return undefined;
  const stage = Number(f.stage ?? 0);
  const statusCode = f.status_on_error?.code;
  return {
    domain: f.domain,
    failureModeDeny: f.failure_mode_deny === true,
    timeoutMs: protoToMs(f.timeout) ?? 20,
    statusOnError: statusCode === undefined ? 500 : httpStatusCode(statusCode),
    cluster,
    stage,
    rateLimits: compileRateLimits(rateLimits, stage, 'rate_limits'),
  };
}

/**
 * A route's own global limit (Envoy's RouteAction.rate_limits) on top of its
 * virtual host's policy: the route's entries replace the virtual host's unless
 * `include_vh_rate_limits`, as the ratelimit filter's VhRateLimitOptions
 * OVERRIDE (the default) and INCLUDE. Undefined when the route has none (the
 * virtual host's policy applies). `filter` is the virtual host's ratelimit config.
 */
export function compileRouteGlobalLimit(filter: Any | undefined, rateLimits: Array<Record<string, unknown>> | undefined, includeVh: boolean, vhost: GlobalLimitPolicy | undefined, path: string): GlobalLimitPolicy | undefined {
  if (!rateLimits || rateLimits.length === 0) return undefined;
  const base = vhost ?? compileGlobalLimit(filter, [{ actions: [] }]);
  if (!base) return undefined;
  const own = compileRateLimits(rateLimits, base.stage, path);
  return { ...base, rateLimits: includeVh ? [...own, ...base.rateLimits] : own };
}

/** The action lists of the entries of one stage (Envoy's getApplicableRateLimit(stage)). */
function compileRateLimits(rateLimits: Array<Record<string, unknown>>, stage: number, path: string): Array<readonly Action[]> {
  const out: Array<readonly Action[]> = [];
  rateLimits.forEach((rl, i) => {
    for (const field of Object.keys(rl)) if (!KNOWN_ENTRY_FIELDS.has(field)) throw new Error(`${path}[${i}].${field}: not supported by meshlet (it reads stage and actions)`);
    const actions = ((rl.actions ?? []) as RateLimitAction[]).map((a, j) => compileAction(a, `${path}[${i}].actions[${j}]`));
    if (Number(rl.stage ?? 0) === stage) out.push(actions);
  });
  return out;
}

function httpStatusCode(code: number | string): number {
  // The StatusCode enum arrives as a number or, from YAML/JSON, as its name (`InternalServerError`).
  if (typeof code === 'number') return code;
  const n = Number(code);
  if (Number.isInteger(n)) return n;
  return STATUS_NAMES[code] ?? 500;
}

const STATUS_NAMES: Readonly<Record<string, number>> = { InternalServerError: 500, ServiceUnavailable: 503, TooManyRequests: 429, BadGateway: 502, Forbidden: 403, GatewayTimeout: 504 };

/** Checks a list of rate_limits actions without compiling a policy (translation-time validation). */
export function validateRateLimits(rateLimits: unknown, path: string): void {
  if (!Array.isArray(rateLimits)) throw new Error(`${path}: must be a list`);
  compileRateLimits(rateLimits as Array<Record<string, unknown>>, 0, path);
}

function compileAction(a: RateLimitAction, path: string): Action {
  const keys = Object.keys(a ?? {});
  if (keys.length !== 1 || !KNOWN_ACTIONS.has(keys[0]!)) {
    throw new Error(`${path}: ${keys.length === 0 ? 'no action' : keys.length > 1 ? `one action per entry, got ${keys.join(', ')}` : `unknown action "${keys[0]}"`} (meshlet runs ${[...KNOWN_ACTIONS].join(', ')})`);
  }
  if (a.generic_key) return { kind: 'static', entry: { key: a.generic_key.descriptor_key || 'generic_key', value: a.generic_key.descriptor_value } };
  if (a.header_value_match) {
    const m = a.header_value_match;
    const expect = typeof m.expect_match === 'object' ? m.expect_match.value !== false : m.expect_match !== false;
    return { kind: 'match', entry: { key: m.descriptor_key || 'header_match', value: m.descriptor_value }, headers: (m.headers ?? []).map((h, k) => compileHeader(h, `${path}.header_value_match.headers[${k}]`)), expect };
  }
  if (a.request_headers) {
    if (!a.request_headers.header_name || !a.request_headers.descriptor_key) throw new Error(`${path}.request_headers: header_name and descriptor_key are required`);
    return { kind: 'header', header: a.request_headers.header_name.toLowerCase(), key: a.request_headers.descriptor_key, skipIfAbsent: a.request_headers.skip_if_absent === true };
  }
  if (a.remote_address) return { kind: 'remote' };
  return { kind: 'cluster' };
}

/**
 * The descriptors for one request. As in Envoy, a rate_limits entry whose
 * header action finds no header (unless it has skip_if_absent, which drops just
 * that entry) or whose header match fails produces no descriptor. `header` answers pseudo-headers too; `remoteAddress` is the caller;
 * `destinationCluster` the cluster the route picked (DestinationClusterAction's `destination_cluster` entry).
 */
export function descriptorsFor(policy: GlobalLimitPolicy, header: (name: string) => string | undefined, remoteAddress: () => string | undefined, destinationCluster: () => string | undefined = () => undefined): Array<{ entries: DescriptorEntry[] }> {
  const out: Array<{ entries: DescriptorEntry[] }> = [];
  outer: for (const actions of policy.rateLimits) {
    const entries: DescriptorEntry[] = [];
    for (const action of actions) {
      switch (action.kind) {
        case 'static':
          entries.push(action.entry);
          break;
        case 'match':
          if (headersMatch(action.headers, header) !== action.expect) continue outer;
          entries.push(action.entry);
          break;
        case 'remote': {
          const address = remoteAddress();
          if (address === undefined) continue outer;
          entries.push({ key: 'remote_address', value: address });
          break;
        }
        case 'cluster': {
          const cluster = destinationCluster();
          if (cluster === undefined) continue outer;
          entries.push({ key: 'destination_cluster', value: cluster });
          break;
        }
        case 'header': {
          const value = header(action.header);
          if (value !== undefined) entries.push({ key: action.key, value });
          // Envoy's RequestHeadersAction: skip_if_absent drops only this entry, otherwise the descriptor.
          else if (!action.skipIfAbsent) continue outer;
        }
      }
    }
    if (entries.length > 0) out.push({ entries });
  }
  return out;
}
