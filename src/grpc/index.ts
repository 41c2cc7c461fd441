/**
 * gRPC for the mesh (`mesh.grpc`): client options that make a grpc-js client
 * meshed, a client interceptor for users who bring their own channel, and a
 * server interceptor for the inbound side. Everything here belongs to one
 * mesh object and is closed with it; nothing is registered process-wide.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { credentials as grpcCredentials, status as Status, type ChannelCredentials, type ChannelInterface, type ChannelOptions, type Interceptor, type ServerInterceptor } from '@grpc/grpc-js';
import { context as otelContext, type Context } from '@opentelemetry/api';
import { defaultRandom, type RandomSource } from '../core/random.js';
import { MeshPropagator } from '../telemetry/propagation.js';
import type { MeshTelemetry } from '../telemetry/telemetry.js';
import { MeshChannel, type SnapshotSource } from './channel.js';
import type { Snapshot } from '../core/snapshot.js';
import { EndpointChannels } from './endpoint-channels.js';
import { createClientInterceptor } from './interceptor.js';
import { RoutePolicies, type Abortable, type GrpcRuntime } from './runtime.js';
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
  outboundTrafficPolicy?: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** The store holding the current request's context; share the HTTP side's so traces join across protocols. */
  contextStore?: AsyncLocalStorage<Context>;
  /** Channel credentials the bare {@link MeshGrpc.interceptor} uses for endpoints (default insecure). */
  credentials?: ChannelCredentials;
  /** AuthorizationPolicy for inbound calls (the mesh's). */
  authorize?: ServerInterceptorDeps['authorize'];
  /** The workload identity for ISTIO_MUTUAL endpoints (read when a channel is created). */
  identity?: () => WorkloadIdentity | undefined;
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
  readonly channels = new EndpointChannels();
  readonly telemetry: MeshTelemetry | undefined;
  readonly propagator: MeshPropagator;
  readonly registryOnly: boolean;
  readonly active = new Set<Abortable>();
  readonly interceptor: Interceptor;
  readonly serverInterceptor: ServerInterceptor;
  closed = false;
  /** transport settings per cluster object and endpoint, decoded once */
  private readonly transports = new WeakMap<CompiledCluster, Map<string, UpstreamTls | Error>>();
  private readonly identityOf: () => WorkloadIdentity | undefined;
  private readonly store: AsyncLocalStorage<Context>;
  private readonly policies: RoutePolicies;
  private readonly meshChannels = new Set<MeshChannel>();
  private readonly credentials: ChannelCredentials;
  private closing: Promise<void> | undefined;

  constructor(private readonly source: SnapshotSource, options: MeshGrpcOptions) {
    this.random = options.random ?? defaultRandom;
    this.identityOf = options.identity ?? (() => undefined);
    this.telemetry = options.telemetry;
    this.propagator = options.telemetry?.propagator ?? new MeshPropagator();
    this.registryOnly = options.outboundTrafficPolicy === 'REGISTRY_ONLY';
    this.store = options.contextStore ?? new AsyncLocalStorage<Context>();
    this.policies = new RoutePolicies(this.telemetry);
    this.credentials = options.credentials ?? grpcCredentials.createInsecure();
    this.interceptor = createClientInterceptor(this, source, this.credentials);
    this.serverInterceptor = createServerInterceptor({ telemetry: this.telemetry, propagator: this.propagator, store: this.store, authorize: options.authorize });
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

  faultFor = (route: Parameters<RoutePolicies['faultFor']>[0]) => this.policies.faultFor(route);
  targetFor = (...args: Parameters<RoutePolicies['targetFor']>) => this.policies.targetFor(...args);

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
  }
}
