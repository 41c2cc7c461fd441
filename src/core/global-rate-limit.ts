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
 * caller's address, or a static entry that applies only when headers match.
 */
type Action =
  | { readonly kind: 'static'; readonly entry: DescriptorEntry }
  | { readonly kind: 'header'; readonly header: string; readonly key: string; readonly skipIfAbsent: boolean }
  | { readonly kind: 'remote' }
  | { readonly kind: 'match'; readonly entry: DescriptorEntry; readonly headers: readonly CompiledHeaderMatch[]; readonly expect: boolean };

export interface GlobalLimitPolicy {
  readonly domain: string;
  readonly failureModeDeny: boolean;
  readonly timeoutMs: number;
  /** the Envoy cluster of the rate-limit service */
  readonly cluster: string;
  readonly rateLimits: ReadonlyArray<readonly Action[]>;
}

interface RateLimitAction {
  generic_key?: { descriptor_key?: string; descriptor_value: string };
  request_headers?: { header_name: string; descriptor_key: string; skip_if_absent?: boolean };
  destination_cluster?: Record<string, never>;
  remote_address?: Record<string, never>;
  header_value_match?: { descriptor_key?: string; descriptor_value: string; expect_match?: boolean | { value: boolean }; headers?: HeaderMatcher[] };
}

/**
 * Compiles the filter config and actions; undefined when the virtual host has
 * no global limit. A bad header regex throws `rate_limits[i]…: reason`.
 */
export function compileGlobalLimit(filter: Any | undefined, rateLimits: Array<Record<string, unknown>> | undefined): GlobalLimitPolicy | undefined {
  if (!filter || !rateLimits || rateLimits.length === 0) return undefined;
  const f = filter as Any<{ domain?: string; failure_mode_deny?: boolean; timeout?: { seconds?: number | string; nanos?: number }; rate_limit_service?: { grpc_service?: { envoy_grpc?: { cluster_name?: string } } } }>;
  const cluster = f.rate_limit_service?.grpc_service?.envoy_grpc?.cluster_name;
  if (!f.domain || !cluster) return undefined;
  return {
    domain: f.domain,
    failureModeDeny: f.failure_mode_deny === true,
    timeoutMs: protoToMs(f.timeout) ?? 20,
    cluster,
    rateLimits: rateLimits.map((rl, i) => ((rl.actions ?? []) as RateLimitAction[]).map((a, j) => compileAction(a, `rate_limits[${i}].actions[${j}]`)).filter((a): a is Action => a !== undefined)),
  };
}

function compileAction(a: RateLimitAction, path: string): Action | undefined {
  if (a.generic_key) return { kind: 'static', entry: { key: a.generic_key.descriptor_key || 'generic_key', value: a.generic_key.descriptor_value } };
  if (a.header_value_match) {
    const m = a.header_value_match;
    const expect = typeof m.expect_match === 'object' ? m.expect_match.value !== false : m.expect_match !== false;
    return { kind: 'match', entry: { key: m.descriptor_key || 'header_match', value: m.descriptor_value }, headers: (m.headers ?? []).map((h, k) => compileHeader(h, `${path}.header_value_match.headers[${k}]`)), expect };
  }
  if (a.request_headers) return { kind: 'header', header: a.request_headers.header_name.toLowerCase(), key: a.request_headers.descriptor_key, skipIfAbsent: a.request_headers.skip_if_absent === true };
  if (a.remote_address) return { kind: 'remote' };
  return undefined;
}

/**
 * The descriptors for one request. As in Envoy, a rate_limits entry whose
 * header action finds no header (unless it has skip_if_absent, which drops just
 * that entry) or whose header match fails produces no descriptor. `header` answers pseudo-headers too; `remoteAddress` is the caller.
 */
export function descriptorsFor(policy: GlobalLimitPolicy, header: (name: string) => string | undefined, remoteAddress: () => string | undefined): Array<{ entries: DescriptorEntry[] }> {
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
