/**
 * The client the SDK and the gateway use to ask the rate-limit service, with
 * the behaviour of Envoy's ratelimit filter: one reused channel, a short
 * deadline on every call (default 20 ms), and when the service is down, slow
 * or failing, an immediate answer chosen by `failureModeDeny` — traffic never
 * waits on the service longer than the deadline.
 */
import * as grpc from '@grpc/grpc-js';
import { MeshRateLimitServiceError } from '../errors.js';
import type { DescriptorStatus, RateLimitEntry, RateLimitResponse } from './limiter.js';
import { rateLimitClientConstructor } from './protocol.js';

/** Options of {@link createRateLimitClient}. */
export interface RateLimitClientOptions {
  /** `host:port` of the rate-limit service. */
  target: string;
  /** Deadline of one call in ms; default 20 (Envoy's ratelimit filter default). */
  timeoutMs?: number;
  /** When the service cannot answer: true = limit the request (500 `RLSE`), false = let it through. Default false. */
  failureModeDeny?: boolean;
  /** Channel credentials; default insecure. */
  credentials?: grpc.ChannelCredentials;
  /** `DRAFT_VERSION_03` adds `x-ratelimit-limit/remaining/reset` headers (Envoy's `enable_x_ratelimit_headers`); default OFF. */
  enableXRateLimitHeaders?: 'OFF' | 'DRAFT_VERSION_03';
}

/** A descriptor as the SDK sends it (entries and an optional per-request override). */
export interface ClientDescriptor {
  entries: ReadonlyArray<RateLimitEntry>;
  limit?: { requests_per_unit: number; unit: 'SECOND' | 'MINUTE' | 'HOUR' | 'DAY' | 'MONTH' | 'YEAR' };
}

/** The answer of one check. */
export interface RateLimitDecision {
  /** Reject the request: the service said OVER_LIMIT, or it failed and failureModeDeny is set. */
  overLimit: boolean;
  /** Envoy's response flag when rejected: `RL` (over limit, 429) or `RLSE` (service error with failureModeDeny, 500). */
  flag?: 'RL' | 'RLSE';
  /** The HTTP status a rejection answers with: 429 or 500. */
  status?: number;
  /** The service failed (unreachable, deadline, error); a MeshError with code MESH_RATELIMIT_SERVICE. */
  error?: Error;
  /** Headers for the downstream response: `x-envoy-ratelimited: true` on 429, service-sent headers, x-ratelimit-* when enabled. */
  headers?: Record<string, string>;
  /** Headers the service asks to add to the upstream request. */
  requestHeaders?: Record<string, string>;
  /** Per-descriptor statuses, in request order. */
  statuses?: DescriptorStatus[];
}

/** A client of the rate-limit service. */
export interface RateLimitClient {
  /** Asks the service; never rejects, and settles within about `timeoutMs`. */
  shouldRateLimit(domain: string, descriptors: ReadonlyArray<ClientDescriptor>, hitsAddend?: number): Promise<RateLimitDecision>;
  /** Closes the channel; idempotent. Later calls answer per failureModeDeny. */
  close(): void;
}

type WireResponse = RateLimitResponse & {
  response_headers_to_add?: Array<{ key: string; value: string }>;
  request_headers_to_add?: Array<{ key: string; value: string }>;
};

/** Creates a {@link RateLimitClient} with one channel to `target`, connecting eagerly. */
export function createRateLimitClient(options: RateLimitClientOptions): RateLimitClient {
  const timeoutMs = options.timeoutMs ?? 20;
  const failureModeDeny = options.failureModeDeny ?? false;
  const xHeaders = options.enableXRateLimitHeaders === 'DRAFT_VERSION_03';
  const Client = rateLimitClientConstructor();
  const client = new Client(options.target, options.credentials ?? grpc.credentials.createInsecure(), {
    // Come back quickly after a service restart instead of grpc's default backoff (up to 120 s).
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 2000,
  });
  client.getChannel().getConnectivityState(true); // connect now so the first call is not the one paying for it
  let closed = false;
  const failure = (err: unknown): RateLimitDecision => {
    const error = new MeshRateLimitServiceError(`rate limit service ${options.target}: ${(err as Error).message}`, 500, { cause: err });
    return failureModeDeny ? { overLimit: true, flag: 'RLSE', status: 500, error } : { overLimit: false, error };
  };

  return {
    shouldRateLimit(domain, descriptors, hitsAddend) {
      if (closed) return Promise.resolve(failure(new Error('client closed')));
      const request = { domain, descriptors, hits_addend: hitsAddend ?? 0 };
      return new Promise<RateLimitDecision>((resolve) => {
        try {
          client.ShouldRateLimit(request, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: WireResponse) => {
            if (err) resolve(failure(err));
            else resolve(decide(res, xHeaders));
          });
        } catch (err) {
          resolve(failure(err));
        }
      });
    },
    close() {
      if (closed) return;
      closed = true;
      client.close();
    },
  };
}

function decide(res: WireResponse, xHeaders: boolean): RateLimitDecision {
  const statuses = (res.statuses ?? []).map(normalizeStatus);
  const overLimit = res.overall_code === 'OVER_LIMIT';
  const decision: RateLimitDecision = { overLimit, statuses };
  let headers: Record<string, string> | undefined;
  if (overLimit) {
    decision.flag = 'RL';
    decision.status = 429;
    headers = { 'x-envoy-ratelimited': 'true' };
  }
  if (res.response_headers_to_add?.length) {
    headers ??= {};
    for (const h of res.response_headers_to_add) headers[h.key.toLowerCase()] = h.value;
  }
  if (xHeaders) headers = addXRateLimitHeaders(statuses, headers);
  if (headers) decision.headers = headers;
  if (res.request_headers_to_add?.length) {
    const rh: Record<string, string> = {};
    for (const h of res.request_headers_to_add) rh[h.key.toLowerCase()] = h.value;
    decision.requestHeaders = rh;
  }
  return decision;
}

/** proto-loader leaves defaults out and longs as strings; give callers plain numbers. */
function normalizeStatus(s: Partial<DescriptorStatus> & { duration_until_reset?: { seconds?: number | string; nanos?: number } }): DescriptorStatus {
  const out: DescriptorStatus = { code: s.code === 'OVER_LIMIT' ? 'OVER_LIMIT' : 'OK', limit_remaining: s.limit_remaining ?? 0 };
  if (s.current_limit) {
    out.current_limit = { requests_per_unit: s.current_limit.requests_per_unit ?? 0, unit: s.current_limit.unit };
    if (s.current_limit.name) out.current_limit.name = s.current_limit.name;
  }
  if (s.duration_until_reset) {
    out.duration_until_reset = { seconds: Number(s.duration_until_reset.seconds ?? 0), nanos: s.duration_until_reset.nanos ?? 0 };
  }
  return out;
}

const unitSeconds: Record<string, number> = { SECOND: 1, MINUTE: 60, HOUR: 3600, DAY: 86_400, MONTH: 2_592_000, YEAR: 31_536_000 };

/**
 * Envoy's DRAFT_VERSION_03 headers: the status with the fewest requests
 * remaining decides limit/remaining/reset; `x-ratelimit-limit` also lists
 * every limit as `n;w=window[;name="…"]`.
 */
function addXRateLimitHeaders(statuses: DescriptorStatus[], headers: Record<string, string> | undefined): Record<string, string> | undefined {
  let min: DescriptorStatus | undefined;
  const policies: string[] = [];
  for (const s of statuses) {
    if (!s.current_limit) continue;
    if (min === undefined || s.limit_remaining < min.limit_remaining) min = s;
    const name = s.current_limit.name ? `;name="${s.current_limit.name}"` : '';
    policies.push(`${s.current_limit.requests_per_unit};w=${unitSeconds[s.current_limit.unit] ?? 0}${name}`);
  }
  if (min === undefined) return headers;
  const out = headers ?? {};
  out['x-ratelimit-limit'] = `${min.current_limit!.requests_per_unit}, ${policies.join(', ')}`;
  out['x-ratelimit-remaining'] = String(min.limit_remaining);
  if (min.duration_until_reset) out['x-ratelimit-reset'] = String(min.duration_until_reset.seconds);
  return out;
}
