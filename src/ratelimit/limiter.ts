/**
 * The rate-limit decision, with envoyproxy/ratelimit's semantics and no
 * transport: fixed windows aligned to the unit (window start = now − now mod
 * unit), the most specific rule per request descriptor (exact key+value, then
 * a `value*` wildcard, then the key-only default), one status per descriptor,
 * OVER_LIMIT overall if any descriptor is over. The gRPC service and the
 * control plane both drive a {@link RateLimiter}.
 */
import { MeshError } from '../errors.js';
import type { RateLimitBackend } from './backend.js';
import { createMemoryBackend } from './backend.js';
import { UNIT_SECONDS, type DescriptorNode, type RateLimitConfig, type RateLimitPolicy, type RateLimitUnit } from './config.js';
import { loadRateLimitConfig, type RateLimitConfigInput } from './load.js';

/** One key/value of a request descriptor. */
export interface RateLimitEntry {
  key: string;
  value: string;
}

/** A request descriptor (`envoy.extensions.common.ratelimit.v3.RateLimitDescriptor`). */
export interface RequestDescriptor {
  entries: readonly RateLimitEntry[];
  /** A limit chosen by the caller instead of the config (still requires a configured domain). */
  limit?: { requests_per_unit?: number; unit?: string } | null;
}

/** `envoy.service.ratelimit.v3.RateLimitRequest` in proto-loader object form. */
export interface RateLimitRequest {
  domain: string;
  descriptors: readonly RequestDescriptor[];
  /** Hits to add; 0 or absent means 1. */
  hits_addend?: number;
}

/** Response code of a descriptor and of the whole request. */
export type RateLimitCode = 'OK' | 'OVER_LIMIT';

/** `RateLimitResponse.DescriptorStatus` in proto-loader object form. */
export interface DescriptorStatus {
  code: RateLimitCode;
  /** The limit the descriptor was counted against; absent when no rule matched. */
  current_limit?: { requests_per_unit: number; unit: RateLimitUnit; name?: string };
  limit_remaining: number;
  duration_until_reset?: { seconds: number; nanos: number };
}

/** `envoy.service.ratelimit.v3.RateLimitResponse` in proto-loader object form. */
export interface RateLimitResponse {
  overall_code: RateLimitCode;
  statuses: DescriptorStatus[];
}

/** A request the service must refuse (empty domain or descriptors): gRPC INVALID_ARGUMENT. */
export class RateLimitRequestError extends MeshError {
  constructor(message: string) {
    super('MESH_RATELIMIT_BAD_REQUEST', message);
  }
}

/** Options of {@link createRateLimiter}. */
export interface RateLimiterOptions {
  config: RateLimitConfigInput;
  /** Where counters live; default an in-memory backend on the same clock. */
  backend?: RateLimitBackend;
  /** Clock in epoch milliseconds; default `Date.now`. Tests inject one to cross windows. */
  now?: () => number;
}

/** Decides ShouldRateLimit requests against a config and a counter backend. */
export interface RateLimiter {
  /** Counts the request's hits and answers per descriptor. Rejects on backend failure. */
  shouldRateLimit(request: RateLimitRequest): Promise<RateLimitResponse>;
  /** Swaps the config atomically; throws MeshConfigError and keeps the old one when invalid. */
  update(config: RateLimitConfigInput): void;
  /** The compiled config in use. */
  readonly config: RateLimitConfig;
  /** Closes the backend; idempotent. */
  close(): Promise<void>;
}

const UNLIMITED_REMAINING = 0xffff_ffff;

/** Creates a {@link RateLimiter}. */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const now = options.now ?? Date.now;
  let config = loadRateLimitConfig(options.config);
  const backend = options.backend ?? createMemoryBackend({ now });
  let closed = false;

  async function shouldRateLimit(request: RateLimitRequest): Promise<RateLimitResponse> {
    const { domain, descriptors } = request;
    if (!domain) throw new RateLimitRequestError('rate limit domain must not be empty');
    if (!descriptors || descriptors.length === 0) throw new RateLimitRequestError('rate limit descriptor list must not be empty');
    const root = config.domains.get(domain);
    const n = descriptors.length;
    const limits = new Array<RateLimitPolicy | undefined>(n);
    let replacing: Set<string> | undefined;
    for (let i = 0; i < n; i++) {
      const d = descriptors[i]!;
      if (!d.entries || d.entries.length === 0) throw new RateLimitRequestError(`descriptor ${i} has no entries`);
      const limit = root === undefined ? undefined : d.limit ? overridePolicy(domain, d) : findLimit(root, d.entries);
      limits[i] = limit;
      if (limit !== undefined && limit.replaces.length > 0) {
        replacing ??= new Set();
        for (const name of limit.replaces) replacing.add(name);
      }
    }
    if (replacing) {
      for (let i = 0; i < n; i++) {
        const name = limits[i]?.name;
        if (name !== undefined && replacing.has(name)) limits[i] = undefined;
      }
    }

    const nowSec = Math.floor(now() / 1000);
    const keys: string[] = [];
    const ttls: number[] = [];
    const counted: number[] = [];
    for (let i = 0; i < n; i++) {
      const limit = limits[i];
      if (limit === undefined || limit.unlimited) continue;
      keys.push(counterKey(domain, descriptors[i]!.entries, nowSec - (nowSec % limit.unitSeconds)));
      ttls.push(limit.unitSeconds);
      counted.push(i);
    }
    const hits = request.hits_addend && request.hits_addend > 0 ? request.hits_addend : 1;
    const totals = keys.length > 0 ? await backend.increment(keys, hits, ttls) : [];

    const statuses = new Array<DescriptorStatus>(n);
    let overall: RateLimitCode = 'OK';
    let next = 0;
    for (let i = 0; i < n; i++) {
      const limit = limits[i];
      if (limit === undefined) {
        statuses[i] = { code: 'OK', limit_remaining: 0 };
        continue;
      }
      if (limit.unlimited) {
        statuses[i] = { code: 'OK', limit_remaining: UNLIMITED_REMAINING };
        continue;
      }
      const total = totals[next]!;
      next++;
      const over = total > limit.requestsPerUnit;
      const code: RateLimitCode = over && !limit.shadowMode ? 'OVER_LIMIT' : 'OK';
      if (code === 'OVER_LIMIT') overall = 'OVER_LIMIT';
      const current: DescriptorStatus['current_limit'] = { requests_per_unit: limit.requestsPerUnit, unit: limit.unit };
      if (limit.name !== undefined) current.name = limit.name;
      statuses[i] = {
        code,
        current_limit: current,
        limit_remaining: over ? 0 : limit.requestsPerUnit - total,
        duration_until_reset: { seconds: limit.unitSeconds - (nowSec % limit.unitSeconds), nanos: 0 },
      };
    }
    return { overall_code: overall, statuses };
  }

  return {
    shouldRateLimit,
    update(input) {
      config = loadRateLimitConfig(input);
    },
    get config() {
      return config;
    },
    async close() {
      if (closed) return;
      closed = true;
      await backend.close();
    },
  };
}

/**
 * Walks the descriptor tree with the request's entries. A rule applies only
 * when it is reached by the last entry (a request deeper or shallower than
 * the config gets no limit), as in envoyproxy/ratelimit.
 */
export function findLimit(root: DescriptorNode, entries: readonly RateLimitEntry[]): RateLimitPolicy | undefined {
  let level = root;
  const last = entries.length - 1;
  for (let i = 0; i <= last; i++) {
    const { key, value } = entries[i]!;
    let node = level.byValue.get(key)?.get(value);
    if (node === undefined) {
      for (const w of level.wildcards) {
        if (w.key === key && value.startsWith(w.prefix)) {
          node = w.node;
          break;
        }
      }
    }
    node ??= level.byKey.get(key);
    if (node === undefined) return undefined;
    if (i === last) return node.limit;
    level = node;
  }
  return undefined;
}

/**
 * The counter key: `domain_key_value_key_value_windowStart`, envoyproxy's
 * format, built from the request's values so a key-only rule counts each
 * value (each client address, each user) separately.
 */
export function counterKey(domain: string, entries: readonly RateLimitEntry[], windowStart: number): string {
  let key = domain + '_';
  for (const e of entries) key += e.key + '_' + e.value + '_';
  return key + windowStart;
}

const unitByNumber: readonly (RateLimitUnit | undefined)[] = [undefined, 'SECOND', 'MINUTE', 'HOUR', 'DAY', 'MONTH', 'YEAR'];

function overridePolicy(domain: string, d: RequestDescriptor): RateLimitPolicy | undefined {
  const raw = d.limit!.unit as unknown;
  const unit = typeof raw === 'number' ? unitByNumber[raw] : (raw as RateLimitUnit | undefined);
  if (unit === undefined || !(unit in UNIT_SECONDS)) return undefined;
  return {
    requestsPerUnit: d.limit!.requests_per_unit ?? 0, unit, unitSeconds: UNIT_SECONDS[unit],
    fullKey: `${domain}.override`, name: undefined, unlimited: false, shadowMode: false, replaces: [],
  };
}
