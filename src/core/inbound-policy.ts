/**
 * Inbound policy: the HTTP filter chain of a snapshot's inbound listener
 * (meshlet's `virtual_inbound` or istiod's `xds.istio.io/grpc/lds/inbound/…`,
 * see core/inbound-listener) compiled into filters the inbound adapters (Express, Fastify, a
 * gRPC server interceptor) run on every request before the app sees it.
 *
 * Compiled once per snapshot (cached in a WeakMap keyed by the snapshot
 * object); a filter's state — a rate limiter's token bucket — is carried over
 * to the next snapshot when its configuration did not change, so a config
 * push does not hand every client a fresh bucket.
 *
 * Built in: `envoy.filters.http.local_ratelimit` (by name), Envoy's RBAC
 * filter and its jwt_authn filter (by their typed_config types, core/rbac-filter,
 * core/jwt-authn; jwt_authn writes the dynamic metadata RBAC reads). Other filters plug in
 * through {@link InboundFilterFactory} by Envoy filter name, or per snapshot
 * through the `authorization` option. Protocol-neutral: no http, undici or grpc here.
 */
import type { Any, EnvoyResources } from '../config/envoy.js';
import { TYPE_URL } from '../config/envoy.js';
import { INBOUND_ROUTE_NAME, type InboundHttpConnectionManager, LOCAL_RATELIMIT_FILTER, ROUTER_FILTER } from '../config/translate-inbound.js';
import { InboundListeners, type InboundPort, inboundListenersOf } from './inbound-listener.js';
import { RBAC_TYPE_URL, type InboundConnectionView } from './rbac.js';
import { rbacFilterFactory } from './rbac-filter.js';
import { JWT_AUTHN_TYPE_URL, type JwksSource, jwtAuthnFilterFactory } from './jwt-authn.js';
import { MeshConfigError } from '../errors.js';
import { validateInboundPath } from './inbound-path.js';
import { defaultRandom, type RandomSource } from './random.js';
import { LocalRateLimiter, RateLimitOutcome, compileLocalRateLimit } from './token-bucket.js';

/** An inbound request as a filter sees it; the adapter implements it over its framework's request. */
export interface InboundRequestView extends InboundConnectionView {
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  /** A request header by lower-case name; a repeated header as its values joined with `,` (as Envoy's matchers). */
  header(name: string): string | undefined;
  /** Sets a request header the app will see (e.g. `x-local-rate-limit` when limited but not enforced). */
  setRequestHeader(name: string, value: string): void;
  /** Adds a header to the response the app will send (e.g. `x-ratelimit-remaining`). */
  addResponseHeader(name: string, value: string): void;
  /** The request target with its query string (jwt_authn's from_params); `path` when absent. */
  readonly url?: string;
  /** Removes a request header before the app sees it (jwt_authn without `forward`). */
  removeRequestHeader?(name: string): void;
  /** Envoy's dynamic metadata of this request by filter namespace (jwt_authn writes, RBAC metadata matchers read). */
  metadata?(filter: string): Record<string, unknown> | undefined;
  setMetadata?(filter: string, value: Record<string, unknown>): void;
  /** Called when an RBAC LOG policy (Istio AUDIT) or a shadow (dry-run) policy matches; optional. */
  rbacLog?(event: { readonly policy: string; readonly action: 'ALLOW' | 'DENY' | 'LOG'; readonly shadow: boolean }): void;
}

/** The mesh answers the request itself (Envoy's sendLocalReply). */
export interface InboundLocalReply {
  readonly status: number;
  /** Envoy response flag: `RL` for a rate limit, `RBAC` for an authorization denial. */
  readonly flags: string;
  /** Envoy's response code details, e.g. `local_rate_limited`. */
  readonly details: string;
  readonly body: string;
  /** Extra response headers, lower-case names. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** What answered: the rate limiter's stat_prefix, the deciding policy … (span events). */
  readonly source: string;
}

/** One compiled filter of the inbound chain. */
export interface InboundFilter {
  /** Envoy filter name. */
  readonly name: string;
  /** Decides a request: undefined to let it through, or the local reply to send. */
  decodeHeaders(request: InboundRequestView): InboundLocalReply | undefined;
  /** True for authorization filters (RBAC): adapters outside the HTTP chain (gRPC, the gateway) run only these. */
  readonly authorization?: boolean;
}

/** What a filter factory gets for one filter of the chain. */
export interface InboundFilterContext {
  /** Envoy filter name. */
  readonly name: string;
  /** The filter's config: the inbound route's typed_per_filter_config for this name when set, else the filter's typed_config. */
  readonly config: Any | undefined;
  /** Resource name for MeshConfigError. */
  readonly resource: string;
  readonly now: () => number;
  readonly random: RandomSource;
  /** Remote JWKS keys for jwt_authn filters (the mesh's cache); undefined when validating only. */
  readonly jwks?: JwksSource;
  /** State kept from the previous snapshot under `key` (same filter, same config), else `make()`. */
  keep<T>(key: string, make: () => T): T;
}

/** Compiles one filter; undefined when the filter does nothing (e.g. a rate limit without a bucket). */
export type InboundFilterFactory = (context: InboundFilterContext) => InboundFilter | undefined;

/** What a snapshot must offer: its Envoy resources. */
export interface InboundPolicySource {
  readonly resources: EnvoyResources;
}

/** Options of {@link InboundPolicyCompiler}. */
export interface InboundPolicyOptions {
  /** Clock for token buckets in ms (default Date.now); tests inject one. */
  now?: () => number;
  random?: RandomSource;
  /** Where jwt_authn filters get remote JWKS keys (security/jwks.ts); without it a remote_jwks provider fails every token. */
  jwks?: JwksSource;
  /** Factories by Envoy filter name, in addition to (or replacing) the built-in local rate limit. */
  factories?: Readonly<Record<string, InboundFilterFactory>>;
  /**
   * Extension point: a filter per snapshot, run before the listener's own
   * filters (so a request it denies spends no token). AuthorizationPolicy
   * does not need it: it arrives as the listener's RBAC filters.
   */
  authorization?: (snapshot: InboundPolicySource) => InboundFilter | undefined;
}

/** The compiled inbound chain of one snapshot. */
export class InboundPolicy {
  /** True when no filter applies: adapters skip building a request view. */
  readonly empty: boolean;

  /** The authorization filters of the chain, in order. */
  readonly authorization: readonly InboundFilter[];

  constructor(readonly filters: readonly InboundFilter[]) {
    this.empty = filters.length === 0;
    this.authorization = filters.filter((f) => f.authorization === true);
  }

  /** Runs the chain: the first local reply wins; undefined lets the request through to the app. */
  decodeHeaders(request: InboundRequestView): InboundLocalReply | undefined {
    const filters = this.filters;
    for (let i = 0; i < filters.length; i++) {
      const reply = filters[i]!.decodeHeaders(request);
      if (reply !== undefined) return reply;
    }
    return undefined;
  }
}

/** The policy of a snapshot with no inbound listener. */
export const EMPTY_INBOUND_POLICY = new InboundPolicy([]);

/**
 * Filters meshlet implements elsewhere (telemetry, metadata exchange) or that
 * have no in-process meaning; Istio's own inbound chain carries them.
 */
const HANDLED_ELSEWHERE = new Set([
  ROUTER_FILTER, 'istio.metadata_exchange', 'istio.stats', 'istio.alpn', 'envoy.filters.http.grpc_stats',
  'envoy.filters.http.fault', 'envoy.filters.http.cors', 'envoy.filters.http.grpc_web',
]);

const builtInFactories: Readonly<Record<string, InboundFilterFactory>> = {
  [LOCAL_RATELIMIT_FILTER]: localRateLimitFactory,
};

/**
 * Compiles and caches the inbound policy of snapshots for one workload. Make
 * one per mesh and share it between adapters so they share token buckets.
 */
export class InboundPolicyCompiler {
  private readonly cache = new WeakMap<InboundPolicySource, Map<InboundHttpConnectionManager | undefined, InboundPolicy>>();
  /** Filter state of the last snapshot compiled, and of the one being compiled (chains compile lazily, per port). */
  private previous = new Map<string, unknown>();
  private current = new Map<string, unknown>();
  private currentSnapshot: InboundPolicySource | undefined;
  private readonly now: () => number;
  private readonly random: RandomSource;
  private readonly factories: Readonly<Record<string, InboundFilterFactory>>;

  constructor(private readonly options: InboundPolicyOptions = {}) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? defaultRandom;
    this.factories = { ...builtInFactories, ...options.factories };
  }

  /**
   * The policy of a snapshot for connections to local `port` (the inbound
   * listener and filter chain that serve it; undefined: the workload's
   * default chain), compiled on first use.
   * @throws MeshConfigError when the inbound chain cannot be compiled (see {@link validateInboundPolicy}).
   */
  forSnapshot(snapshot: InboundPolicySource, port?: number): InboundPolicy {
    let byChain = this.cache.get(snapshot);
    if (byChain === undefined) this.cache.set(snapshot, (byChain = new Map()));
    const served = inboundListenersOf(snapshot.resources).forPort(port);
    const hcm = served?.hcm;
    let policy = byChain.get(hcm);
    if (policy === undefined) {
      if (this.currentSnapshot !== snapshot) {
        this.previous = this.current;
        this.current = new Map();
        this.currentSnapshot = snapshot;
      }
      const authz = this.options.authorization?.(snapshot);
      policy = compile(served, this.factories, authz, this.now, this.random, this.previous, this.current, this.options.jwks);
      byChain.set(hcm, policy);
    }
    return policy;
  }
}

/**
 * Compiles a set of resources' inbound chains (every port an inbound
 * listener names) without keeping anything: call it when a snapshot is
 * applied so a bad chain is rejected with the rest of the config instead of
 * failing requests later. Also checks the HCM's path normalization fields
 * (core/inbound-path) and the filter chains' transport sockets.
 * @throws MeshConfigError naming the listener and the bad filter or field.
 */
export function validateInboundPolicy(resources: EnvoyResources, factories?: Readonly<Record<string, InboundFilterFactory>>): void {
  validateInboundPath({ resources });
  const listeners = new InboundListeners(resources);
  listeners.validate();
  const all = { ...builtInFactories, ...factories };
  const seen = new Set<InboundHttpConnectionManager | undefined>();
  for (const port of listeners.ports()) {
    const served = listeners.forPort(port);
    if (seen.has(served?.hcm)) continue;
    seen.add(served?.hcm);
    compile(served, all, undefined, Date.now, defaultRandom, new Map(), new Map());
  }
}

/** Factories by the typed_config's type: istiod names its RBAC filters freely (`envoy.filters.http.rbac.DENY`). */
const factoriesByType: Readonly<Record<string, InboundFilterFactory>> = {
  [RBAC_TYPE_URL]: rbacFilterFactory,
  [JWT_AUTHN_TYPE_URL]: jwtAuthnFilterFactory,
};

function compile(
  served: InboundPort | undefined,
  factories: Readonly<Record<string, InboundFilterFactory>>,
  authz: InboundFilter | undefined,
  now: () => number,
  random: RandomSource,
  previous: Map<string, unknown>,
  next: Map<string, unknown>,
  jwks?: JwksSource,
): InboundPolicy {
  const filters: InboundFilter[] = [];
  if (authz !== undefined) filters.push(authz);
  const hcm = served?.hcm;
  if (served === undefined || hcm === undefined) return filters.length === 0 ? EMPTY_INBOUND_POLICY : new InboundPolicy(filters);
  const listener = served.listener;
  // meshlet has one inbound route: its per-filter configs override the chain's, as Envoy's per-route config.
  const route = hcm.route_config?.virtual_hosts?.find((vh) => vh.name === INBOUND_ROUTE_NAME)?.routes?.[0]
    ?? hcm.route_config?.virtual_hosts?.[0]?.routes?.[0];
  const perRoute = route?.typed_per_filter_config ?? {};
  const seen = new Map<string, number>();
  for (let i = 0; i < (hcm.http_filters ?? []).length; i++) {
    const f = hcm.http_filters[i]!;
    if (f.name === ROUTER_FILTER || f.typed_config?.['@type'] === TYPE_URL.router) break; // the router is terminal: filters after it never run
    const factory = factories[f.name] ?? factoriesByType[String(f.typed_config?.['@type'])];
    if (factory === undefined) {
      if (HANDLED_ELSEWHERE.has(f.name) || (f as { is_optional?: boolean }).is_optional === true) continue;
      throw new MeshConfigError('Listener', listener, `${served.path}.typed_config.http_filters[${i}]`, `HTTP filter "${f.name}" is not supported inbound`);
    }
    const config = perRoute[f.name] ?? f.typed_config;
    const configKey = `${served.key}\u0000${f.name}\u0000${JSON.stringify(config ?? null)}`;
    const occurrence = seen.get(configKey) ?? 0;
    seen.set(configKey, occurrence + 1);
    const filter = factory({
      name: f.name,
      config,
      resource: `${listener}/http_filters[${i}]`,
      now,
      random,
      ...(jwks !== undefined && { jwks }),
      keep<T>(key: string, make: () => T): T {
        // Two identical filters in one chain are still two buckets: the occurrence is part of the key.
        const k = `${configKey}\u0000${occurrence}\u0000${key}`;
        const value = (next.has(k) ? next.get(k) : previous.has(k) ? previous.get(k) : make()) as T;
        next.set(k, value);
        return value;
      },
    });
    if (filter !== undefined) filters.push(filter);
  }
  return filters.length === 0 ? EMPTY_INBOUND_POLICY : new InboundPolicy(filters);
}

/** Envoy's local rate limit body and details. */
const LOCAL_RATE_LIMITED = 'local_rate_limited';

/** The built-in `envoy.filters.http.local_ratelimit` factory. */
export function localRateLimitFactory(context: InboundFilterContext): InboundFilter | undefined {
  const policy = compileLocalRateLimit(context.config, context.resource);
  if (policy === undefined || policy.tokenBucket === undefined) return undefined;
  const limiter = context.keep('limiter', () => new LocalRateLimiter(policy, { now: context.now, random: context.random }));
  return new LocalRateLimitFilter(context.name, limiter);
}

/** One local rate limit in the inbound chain (Envoy's LocalRateLimit filter decodeHeaders/encodeHeaders). */
export class LocalRateLimitFilter implements InboundFilter {
  /** stat_prefix, reported as the span event's limiter name. */
  readonly source: string;

  constructor(readonly name: string, readonly limiter: LocalRateLimiter) {
    this.source = limiter.policy.statPrefix || name;
  }

  decodeHeaders(request: InboundRequestView): InboundLocalReply | undefined {
    const outcome = this.limiter.check();
    if (outcome === RateLimitOutcome.Disabled) return undefined;
    if (outcome === RateLimitOutcome.Limited) {
      const policy = this.limiter.policy;
      const headers: Array<readonly [string, string]> = [...policy.responseHeadersToAdd];
      const x = this.limiter.xRateLimitHeaders();
      if (x !== undefined) for (const name in x) headers.push([name, x[name as keyof typeof x]]);
      return { status: policy.status, flags: 'RL', details: LOCAL_RATE_LIMITED, body: LOCAL_RATE_LIMITED, headers, source: this.source };
    }
    if (outcome === RateLimitOutcome.LimitedNotEnforced) {
      for (const [name, value] of this.limiter.policy.requestHeadersToAddWhenNotEnforced) request.setRequestHeader(name, value);
    }
    const x = this.limiter.xRateLimitHeaders();
    if (x !== undefined) for (const name in x) request.addResponseHeader(name, x[name as keyof typeof x]);
    return undefined;
  }
}
