/**
 * What a meshed gRPC call needs from the mesh that runs it: the router
 * context (random source, deadline queues, tracer, global rate limits),
 * endpoint channels, telemetry, plus the set of calls in flight (for close).
 */
import type { ChannelCredentials, ChannelOptions } from '@grpc/grpc-js';
import type { Context } from '@opentelemetry/api';
import type { CompiledCluster } from '../core/cluster.js';
import type { Host } from '../core/load-balancer.js';
import type { CompiledRoute } from '../core/route.js';
import type { RouterContext } from '../core/router-session.js';
import type { Snapshot } from '../core/snapshot.js';
import type { OutboundTargetHandle } from '../telemetry/outbound.js';
import type { MeshPropagator } from '../telemetry/propagation.js';
import type { MeshTelemetry } from '../telemetry/telemetry.js';
import type { EndpointChannels } from './endpoint-channels.js';

/** A call the runtime can abort on close. */
export interface Abortable {
  abort(code: number, details: string): void;
}

/** The shared state of one mesh's gRPC adapter. */
export interface GrpcRuntime extends RouterContext {
  readonly channels: EndpointChannels;
  readonly telemetry: MeshTelemetry | undefined;
  /** Injects trace headers when there is no telemetry (propagation still works). */
  readonly propagator: MeshPropagator;
  readonly registryOnly: boolean;
  /** Calls in flight. */
  readonly active: Set<Abortable>;
  readonly closed: boolean;
  /** The context outbound calls are children of (the inbound call's, when inside a handler). */
  parentContext(): Context;
  /** The channel credentials for an endpoint: mTLS per the cluster's transport socket, else `plaintext`. */
  credentialsFor(cluster: CompiledCluster, host: Host, plaintext: ChannelCredentials): ChannelCredentials | Error;
  /** This workload's SPIFFE id (the certificate ISTIO_MUTUAL channels present), for source_principal. */
  localPrincipal?(): string | undefined;
  /** The telemetry handle of a route's destination cluster (undefined without telemetry). */
  targetFor(route: CompiledRoute, clusterIndex: number): OutboundTargetHandle | undefined;
  /** Sends a fire-and-forget copy of a call (its whole request) to a mirror cluster. */
  mirror(snapshot: Snapshot, cluster: string, authority: string, target: MirrorTarget, path: string, metadata: import('@grpc/grpc-js').Metadata, messages: readonly Buffer[]): void;
}

/** The caller's channel settings a mirrored copy reuses. */
export interface MirrorTarget {
  readonly credentials: ChannelCredentials;
  readonly options: ChannelOptions;
}
