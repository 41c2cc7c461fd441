/**
 * `mesh.dispatcher`: an undici Dispatcher that routes every request through
 * the mesh's current snapshot. Works with undici.request, undici.fetch and
 * setGlobalDispatcher. Hosts the mesh does not know pass straight through
 * (ALLOW_ANY) or get 502 NR (REGISTRY_ONLY), as with Istio's
 * outboundTrafficPolicy.
 */
import { context as otelContext, type Context } from '@opentelemetry/api';
import type { AsyncLocalStorage } from 'node:async_hooks';
import { isIP } from 'node:net';
import { Agent, Dispatcher } from 'undici';
import type { CompiledRoute } from '../core/route.js';
import { redirectLocation, redirectStatus } from '../core/redirect.js';
import type { OutboundTargetHandle } from '../telemetry/outbound.js';
import type { MeshTelemetry } from '../telemetry/telemetry.js';
import { RouteTargets } from '../telemetry/route-targets.js';
import { GlobalRateLimits } from '../ratelimit/global-limits.js';
import type { GlobalLimitPolicy } from '../core/global-rate-limit.js';
import type { RouterTracer } from '../core/router-session.js';
import { sendMirror } from './mirror.js';
import type { CompiledCluster } from '../core/cluster.js';
import type { Host } from '../core/load-balancer.js';
import type { RandomSource } from '../core/random.js';
import type { RequestView } from '../core/router.js';
import { selectRoute, type CompiledVirtualHost, type Snapshot } from '../core/snapshot.js';
import { asLegacy, type LegacyHandler } from './handler.js';
import { getHeader, type RawHeaders } from './headers.js';
import { Exchange, type ExchangeContext } from './exchange.js';
import { sendLocalReply, sendResponse, type LocalReplyMode } from './local-reply.js';
import { PoolManager } from './pools.js';
import { Deadlines } from '../core/deadlines.js';
import type { WorkloadIdentity } from '../security/workload-identity.js';

export type OutboundTrafficPolicy = 'ALLOW_ANY' | 'REGISTRY_ONLY';

/** What the dispatcher reads from the mesh on every request. */
export interface DispatcherRuntime {
  readonly snapshot: Snapshot;
  /** the workload identity for mTLS upstreams, when the mesh has one */
  readonly identity: WorkloadIdentity | undefined;
  readonly telemetry: MeshTelemetry;
  /** the inbound request's trace context, set by the inbound middleware */
  readonly context: AsyncLocalStorage<Context>;
}

export interface MeshDispatcherOptions {
  random: RandomSource;
  localReplies: LocalReplyMode;
  /** the mesh's policy; a function when a Sidecar can change it with the config */
  outboundTrafficPolicy: OutboundTrafficPolicy | (() => OutboundTrafficPolicy);
  /** This workload's IP, the downstream address a `source_ip` hash policy hashes for its own calls. */
  sourceAddress?: string | undefined;
}

interface OriginInfo {
  host: string;
  port: number;
  /** the authority the upstream sees in `host` */
  authority: string;
  /** `host:port`, the route-table key */
  key: string;
  /** TLS server name for a DNS host (undefined for an IP), worked out once instead of by undici per request */
  servername: string | undefined;
}

const ORIGIN_CACHE_LIMIT = 10_000;

export class MeshDispatcher extends Dispatcher implements ExchangeContext {
  readonly random: RandomSource;
  readonly localReplies: LocalReplyMode;
  readonly sourceAddress: string | undefined;
  private readonly outboundPolicy: () => OutboundTrafficPolicy;
  private readonly pools: PoolManager;
  private readonly passthrough = new Agent();
  private readonly origins = new Map<string, OriginInfo>();
  private readonly targets: RouteTargets;
  /** The rate-limit service clients, shared with the mesh's gRPC side. */
  readonly globalLimits = new GlobalRateLimits();
  /** Fault delays, route and per-try timeouts, shared with the mesh's gRPC side. */
  readonly deadlines = new Deadlines();
  private closed = false;

  constructor(private readonly runtime: DispatcherRuntime, options: MeshDispatcherOptions) {
    super();
    this.pools = new PoolManager({ identity: () => runtime.identity });
    this.targets = new RouteTargets(() => runtime.telemetry.outbound, 'http');
    this.random = options.random;
    this.localReplies = options.localReplies;
    this.sourceAddress = options.sourceAddress;
    const policy = options.outboundTrafficPolicy;
    this.outboundPolicy = typeof policy === 'function' ? policy : () => policy;
  }

  get telemetry(): MeshTelemetry {
    return this.runtime.telemetry;
  }

  pool(host: Host, cluster: CompiledCluster): Dispatcher {
    return this.pools.get(host, cluster);
  }

  /** A new snapshot is in force: retire the pools of endpoints it no longer has. */
  retain(snapshot: Snapshot): void {
    this.pools.retain(snapshot.clusters.values());
  }

  /** Endpoint pools open (diagnostics, tests). */
  get endpointPools(): number {
    return this.pools.size;
  }

  parentContext(): Context {
    return this.runtime.context.getStore() ?? otelContext.active();
  }

  target(route: CompiledRoute, clusterIndex: number): OutboundTargetHandle {
    return this.targets.get(route, clusterIndex);
  }

  get tracer(): RouterTracer {
    return this.runtime.telemetry.tracer;
  }

  overGlobalLimit(snapshot: Snapshot, policy: GlobalLimitPolicy, descriptors: Array<{ entries: Array<{ key: string; value: string }> }>) {
    return this.globalLimits.check(snapshot, policy, descriptors);
  }

  mirror(snapshot: Snapshot, cluster: string, opts: Dispatcher.DispatchOptions, authority: string, shadowSuffix: boolean): void {
    sendMirror(this, snapshot, cluster, opts, authority, shadowSuffix);
  }

  override dispatch(opts: Dispatcher.DispatchOptions, rawHandler: Dispatcher.DispatchHandler): boolean {
    const handler = asLegacy(rawHandler);
    if (this.closed) {
      handler.onError(Object.assign(new Error('the mesh is closed'), { code: 'MESH_CLOSED' }));
      return false;
    }
    const snapshot = this.runtime.snapshot;
    const origin = this.originInfo(opts.origin!);
    const vhost = snapshot.virtualHost(origin.host, origin.port, origin.key);
    if (!vhost) {
      if (this.outboundPolicy() === 'REGISTRY_ONLY') return this.reply(handler, 'NR', 502, `no route: "${origin.authority}" is not in the mesh registry (REGISTRY_ONLY)`);
      return this.passthrough.dispatch(opts, rawHandler);
    }
    return this.dispatchToVirtualHost(snapshot, vhost, opts, handler, origin.authority, origin);
  }

  /**
   * Routes a request on a given virtual host (the gateway looks its virtual
   * host up in its own route table, then hands over here).
   */
  dispatchToVirtualHost(snapshot: Snapshot, vhost: CompiledVirtualHost, opts: Dispatcher.DispatchOptions, handler: LegacyHandler, authority: string, server: { host: string; port: number; servername?: string | undefined } = this.originInfo(`http://${authority}`), downstream?: string, metadata?: DynamicMetadata): boolean {
    const fullPath = opts.path;
    const q = fullPath.indexOf('?');
    const view = new DispatchView(opts.method, q === -1 ? fullPath : fullPath.slice(0, q), q === -1 ? '' : fullPath.slice(q + 1), opts.headers as RawHeaders, metadata);
    const route = selectRoute(vhost, view);
    if (!route) return this.reply(handler, 'NR', 404, 'route not found');
    if (route.kind === 'direct') {
      handler.onConnect?.(() => undefined);
      sendResponse(handler, route.directStatus, route.directBody, undefined);
      return true;
    }
    if (route.kind === 'redirect') {
      handler.onConnect?.(() => undefined);
      const scheme = String(opts.origin ?? '').startsWith('https:') ? 'https' : 'http';
      const location = redirectLocation(route, { scheme, authority, path: view.path, query: view.query });
      sendResponse(handler, redirectStatus(route.redirect!), '', [Buffer.from('location'), Buffer.from(location)]);
      return true;
    }
    new Exchange(this, snapshot, vhost, route, opts, handler, authority, view.path, server, downstream).start();
    return true;
  }

  private reply(handler: LegacyHandler, flag: 'NR' | 'NC', status: number, message: string): boolean {
    handler.onConnect?.(() => undefined);
    sendLocalReply(handler, this.localReplies, flag, status, message);
    return true;
  }

  private originInfo(origin: string | URL): OriginInfo {
    const key = typeof origin === 'string' ? origin : origin.origin;
    let info = this.origins.get(key);
    if (!info) {
      const url = new URL(key);
      const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
      const host = url.hostname.toLowerCase();
      info = { host, port, authority: url.host, key: `${host}:${port}`, servername: host.startsWith('[') || isIP(host) !== 0 ? undefined : host };
      if (this.origins.size >= ORIGIN_CACHE_LIMIT) this.origins.clear();
      this.origins.set(key, info);
    }
    return info;
  }

  override async close(): Promise<void> {
    await this.shutdown(1000);
  }

  override async destroy(): Promise<void> {
    await this.shutdown(0);
  }

  /** Stops taking requests and drains pools for at most `graceMs`. */
  async shutdown(graceMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.pools.close(graceMs), this.passthrough.close(), this.globalLimits.close()]);
    this.deadlines.close();
  }
}

/** The request as the router sees it; headers are read lazily. */
class DispatchView implements RequestView {
  constructor(readonly method: string, readonly path: string, readonly query: string, private readonly headers: RawHeaders, private readonly metadata?: DynamicMetadata) {}
  header(name: string): string | undefined {
    return getHeader(this.headers, name);
  }

  dynamicMetadata(filter: string, path: readonly string[]): unknown {
    let value: unknown = this.metadata?.[filter];
    for (let i = 0; i < path.length && value !== undefined; i++) value = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)[path[i]!] : undefined;
    return value;
  }
}

/** A request's dynamic metadata by filter namespace (the gateway's jwt_authn payload, for route matching). */
export type DynamicMetadata = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

