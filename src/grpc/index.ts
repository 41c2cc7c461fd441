/**
 * gRPC for the mesh (`mesh.grpc`): client options that make a grpc-js client
 * meshed, a client interceptor for users who bring their own channel, and a
 * server interceptor for the inbound side. Everything here belongs to one
 * mesh object and is closed with it; nothing is registered process-wide.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { credentials as grpcCredentials, status as Status, type ChannelCredentials, type Metadata, type ChannelInterface, type ChannelOptions, type Interceptor, type ServerInterceptor } from '@grpc/grpc-js';
import { context as otelContext, type Context } from '@opentelemetry/api';
import { defaultRandom, type RandomSource } from '../core/random.js';
import { MeshPropagator } from '../telemetry/propagation.js';
import type { MeshTelemetry } from '../telemetry/telemetry.js';
import { MeshChannel, type SnapshotSource } from './channel.js';
import type { Snapshot } from '../core/snapshot.js';
import { EndpointChannels } from './endpoint-channels.js';
import { createClientInterceptor } from './interceptor.js';
import type { Abortable, GrpcRuntime, MirrorTarget } from './runtime.js';
import { Deadlines } from '../core/deadlines.js';
import type { GlobalLimitPolicy } from '../core/global-rate-limit.js';
import type { CompiledRoute } from '../core/route.js';
import type { GlobalLimitDecision, RouterTracer } from '../core/router-session.js';
import { GlobalRateLimits } from '../ratelimit/global-limits.js';
import type { OutboundTargetHandle } from '../telemetry/outbound.js';
import { RouteTargets } from '../telemetry/route-targets.js';
import { sendGrpcMirror } from './mirror.js';
import { createServerInterceptor, type ServerInterceptorDeps } from './server.js';
import type { CompiledCluster } from '../core/cluster.js';
import type { Host } from '../core/load-balancer.js';
import { upstreamChannelCredentials } from '../security/grpc-upstream.js';
import { upstreamTlsFor, type UpstreamTls } from '../security/upstream-tls.js';
import type { WorkloadIdentity } from '../security/workload-identity.js';

export { parseTarget, type GrpcTarget } from './target.js';
export { grpcToHttp, grpcStatusForHttp } from './status.js';

/** Options of {@link createMeshGrpc}. */
export interface MeshGrpcOptions {
  /** Weights, faults, load balancing and back-off jitter; seed it in tests (pass the mesh's). */
  random?: RandomSource;
  /** The mesh's telemetry: CLIENT/SERVER spans and istio_* metrics with request_protocol="grpc". */
  telemetry?: MeshTelemetry;
  /** Unknown hosts pass straight through (ALLOW_ANY, default) or fail UNAVAILABLE with flag NR. */
  /** a function when a Sidecar can change it with the config */
  outboundTrafficPolicy?: 'ALLOW_ANY' | 'REGISTRY_ONLY' | (() => 'ALLOW_ANY' | 'REGISTRY_ONLY');
  /** The store holding the current request's context; share the HTTP side's so traces join across protocols. */
  contextStore?: AsyncLocalStorage<Context>;
  /** Channel credentials the bare {@link MeshGrpc.interceptor} uses for endpoints (default insecure). */
  credentials?: ChannelCredentials;
  /** AuthorizationPolicy for inbound calls (the mesh's). */
  authorize?: ServerInterceptorDeps['authorize'];
  /** The mTLS mode for a local port (the snapshot's inbound filter chains): STRICT refuses plaintext calls. */
  inboundMode?: ServerInterceptorDeps['inboundMode'];
  /** The workload identity for ISTIO_MUTUAL endpoints (read when a channel is created). */
  identity?: () => WorkloadIdentity | undefined;
  /** Route and per-try timeouts: share the HTTP side's queues (default: the adapter's own). */
  deadlines?: Deadlines;
  /** Rate-limit service clients: share the HTTP side's (default: the adapter's own, closed with it). */
  globalLimits?: GlobalRateLimits;
  /** This workload's IP, hashed by a `source_ip` hash policy for its calls. */
  sourceAddress?: string | undefined;
}

/** grpc-js client options that route a client's calls through the mesh. */
export interface MeshClientOptions extends ChannelOptions {
  channelFactoryOverride: (target: string, credentials: ChannelCredentials, options: ChannelOptions) => ChannelInterface;
}

/** The gRPC side of one mesh (`mesh.grpc`). */
export interface MeshGrpc {
  /** Options for a grpc-js client constructor: `new CalculateClient(target, creds, mesh.grpc.clientOptions())`. */
  clientOptions(extra?: ChannelOptions): MeshClientOptions;
  /** A client interceptor: routes calls whose `host` call option is a mesh service; traces the rest. */
  readonly interceptor: Interceptor;
  /** The same, for calls to a fixed mesh authority (`calculate.default.svc.cluster.local:9000`). */
  interceptorFor(authority: string): Interceptor;
  /** The server interceptor: inbound context, SERVER spans, destination metrics. */
  readonly serverInterceptor: ServerInterceptor;
  /** The trace context outbound calls use as parent right now. */
  activeContext(): Context;
  /** Endpoint channels open (diagnostics). */
  readonly endpointChannels: number;
  /** A new snapshot is in force: retire the channels of endpoints it no longer has. */
  retain(snapshot: Snapshot): void;
  /** Stops new calls, lets in-flight ones finish for `graceMs`, cancels the rest, closes channels. Idempotent. */
  close(graceMs?: number): Promise<void>;
}

/** Creates the gRPC adapter of a mesh; the mesh exposes it as `mesh.grpc`. */
export function createMeshGrpc(mesh: SnapshotSource, options: MeshGrpcOptions = {}): MeshGrpc {
  return new MeshGrpcImpl(mesh, options);
}

class MeshGrpcImpl implements MeshGrpc, GrpcRuntime {
  readonly random: RandomSource;
  readonly sourceAddress: string | undefined;
  readonly channels = new EndpointChannels();
  readonly telemetry: MeshTelemetry | undefined;
  readonly propagator: MeshPropagator;
  private readonly outboundPolicy: () => 'ALLOW_ANY' | 'REGISTRY_ONLY';
  readonly active = new Set<Abortable>();
  readonly interceptor: Interceptor;
  readonly serverInterceptor: ServerInterceptor;
  closed = false;
  /** transport settings per cluster object and endpoint, decoded once */
  private readonly transports = new WeakMap<CompiledCluster, Map<string, UpstreamTls | Error>>();
  private readonly identityOf: () => WorkloadIdentity | undefined;
  private readonly store: AsyncLocalStorage<Context>;
  readonly deadlines: Deadlines;
  private readonly ownDeadlines: boolean;
  private readonly globalLimits: GlobalRateLimits;
  private readonly ownGlobalLimits: boolean;
  private readonly targets: RouteTargets | undefined;
  private readonly meshChannels = new Set<MeshChannel>();
  private readonly credentials: ChannelCredentials;
  private closing: Promise<void> | undefined;

  get registryOnly(): boolean {
    return this.outboundPolicy() === 'REGISTRY_ONLY';
  }

  constructor(private readonly source: SnapshotSource, options: MeshGrpcOptions) {
    this.random = options.random ?? defaultRandom;
    this.sourceAddress = options.sourceAddress;
    this.identityOf = options.identity ?? (() => undefined);
    this.telemetry = options.telemetry;
    this.propagator = options.telemetry?.propagator ?? new MeshPropagator();
    const policy = options.outboundTrafficPolicy ?? 'ALLOW_ANY';
    this.outboundPolicy = typeof policy === 'function' ? policy : () => policy;
    this.store = options.contextStore ?? new AsyncLocalStorage<Context>();
    const telemetry = this.telemetry;
    this.targets = telemetry && new RouteTargets(() => telemetry.outbound, 'grpc');
    this.ownDeadlines = options.deadlines === undefined;
    this.deadlines = options.deadlines ?? new Deadlines();
    this.ownGlobalLimits = options.globalLimits === undefined;
    this.globalLimits = options.globalLimits ?? new GlobalRateLimits();
    this.credentials = options.credentials ?? grpcCredentials.createInsecure();
    this.interceptor = createClientInterceptor(this, source, this.credentials);
    this.serverInterceptor = createServerInterceptor({
      telemetry: this.telemetry, propagator: this.propagator, store: this.store, authorize: options.authorize, inboundMode: options.inboundMode,
      localPrincipal: () => this.identityOf()?.current.spiffeId,
    });
  }

  /** @internal GrpcRuntime: our SPIFFE id, when the mesh has an identity. */
  localPrincipal(): string | undefined {
    return this.identityOf()?.current.spiffeId;
  }

  clientOptions(extra: ChannelOptions = {}): MeshClientOptions {
    return {
      ...extra,
      channelFactoryOverride: (target, credentials, channelOptions) => {
        if (this.closed) throw new Error('the mesh is closed');
        const channel = new MeshChannel(this, this.source, target, credentials, channelOptions);
        this.meshChannels.add(channel);
        return channel;
      },
    };
  }

  interceptorFor(authority: string): Interceptor {
    return createClientInterceptor(this, this.source, this.credentials, authority);
  }

  activeContext(): Context {
    return this.store.getStore() ?? otelContext.active();
  }

  credentialsFor(cluster: CompiledCluster, host: Host, plaintext: ChannelCredentials): ChannelCredentials | Error {
    let byHost = this.transports.get(cluster);
    if (!byHost) this.transports.set(cluster, (byHost = new Map()));
    let tls = byHost.get(host.id);
    if (!tls) byHost.set(host.id, (tls = upstreamTlsFor(cluster.source, cluster.assignment, host.id)));
    if (tls instanceof Error) return tls;
    try {
      return upstreamChannelCredentials(tls, this.identityOf(), plaintext);
    } catch (err) {
      return err as Error;
    }
  }

  parentContext(): Context {
    return this.store.getStore() ?? otelContext.active();
  }

  get tracer(): RouterTracer | undefined {
    return this.telemetry?.tracer;
  }

  overGlobalLimit(snapshot: Snapshot, policy: GlobalLimitPolicy, descriptors: Array<{ entries: Array<{ key: string; value: string }> }>): Promise<GlobalLimitDecision> {
    return this.globalLimits.check(snapshot, policy, descriptors);
  }

  targetFor(route: CompiledRoute, clusterIndex: number): OutboundTargetHandle | undefined {
    return this.targets?.get(route, clusterIndex);
  }

  mirror(snapshot: Snapshot, cluster: string, authority: string, target: MirrorTarget, path: string, metadata: Metadata, messages: readonly Buffer[]): void {
    sendGrpcMirror(this, snapshot, cluster, authority, target, path, metadata, messages);
  }

  get endpointChannels(): number {
    return this.channels.size;
  }

  retain(snapshot: Snapshot): void {
    this.channels.retain(snapshot.clusters.values());
  }

  close(graceMs = 1000): Promise<void> {
    this.closing ??= this.shutdown(graceMs);
    return this.closing;
  }

  private async shutdown(graceMs: number): Promise<void> {
    this.closed = true;
    const until = Date.now() + graceMs;
    while (this.active.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, Math.min(20, graceMs)));
    for (const call of [...this.active]) call.abort(Status.UNAVAILABLE, 'the mesh is closed');
    // Let the aborted calls' statuses reach their callers before the channels go.
    await new Promise((r) => setImmediate(r));
    for (const c of this.meshChannels) c.close();
    this.meshChannels.clear();
    this.channels.close();
    if (this.ownDeadlines) this.deadlines.close();
    if (this.ownGlobalLimits) await this.globalLimits.close();
  }
}
