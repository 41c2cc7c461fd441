/**
 * What a meshed gRPC call needs from the mesh that runs it: the random
 * source, endpoint channels, telemetry and the compiled
 * per-route policies, plus the set of calls in flight (for close).
 */
import type { Context } from '@opentelemetry/api';
import { TYPE_URL } from '../config/envoy.js';
import type { CompiledCluster } from '../core/cluster.js';
import { compileFault, type FaultPolicy } from '../core/fault.js';
import type { RandomSource } from '../core/random.js';
import type { CompiledRoute } from '../core/route.js';
import type { OutboundTargetHandle } from '../telemetry/outbound.js';
import type { MeshPropagator } from '../telemetry/propagation.js';
import type { MeshTelemetry } from '../telemetry/telemetry.js';
import type { EndpointChannels } from './endpoint-channels.js';

import type { ChannelCredentials } from '@grpc/grpc-js';
import type { Host } from '../core/load-balancer.js';

/** A call the runtime can abort on close. */
export interface Abortable {
  abort(code: number, details: string): void;
}

/** The shared state of one mesh's gRPC adapter. */
export interface GrpcRuntime {
  readonly random: RandomSource;
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
  /** The route's compiled fault policy (compiled once per route object). */
  faultFor(route: CompiledRoute): FaultPolicy | undefined;
  /** The telemetry handle of a route's destination cluster. */
  targetFor(route: CompiledRoute, clusterIndex: number, cluster: CompiledCluster): OutboundTargetHandle | undefined;
}

const FAULT_FILTER = 'envoy.filters.http.fault';
const none = Symbol('none');

/** Per-route compiled policies, cached on the (immutable) route object. */
export class RoutePolicies {
  private readonly faults = new WeakMap<CompiledRoute, FaultPolicy | typeof none>();
  private readonly targets = new WeakMap<CompiledRoute, Array<OutboundTargetHandle | undefined>>();

  constructor(private readonly telemetry: MeshTelemetry | undefined) {}

  faultFor(route: CompiledRoute): FaultPolicy | undefined {
    let f = this.faults.get(route);
    if (f === undefined) {
      const any = route.filterConfig[FAULT_FILTER];
      // A bad fault config was already rejected at compile time by the HTTP side; never fail a call over it.
      try {
        f = (any && any['@type'] === TYPE_URL.fault ? compileFault(any, route.name) : undefined) ?? none;
      } catch {
        f = none;
      }
      this.faults.set(route, f);
    }
    return f === none ? undefined : f;
  }

  targetFor(route: CompiledRoute, clusterIndex: number, cluster: CompiledCluster): OutboundTargetHandle | undefined {
    const telemetry = this.telemetry;
    if (telemetry === undefined) return undefined;
    let list = this.targets.get(route);
    if (list === undefined) this.targets.set(route, (list = []));
    let handle = list[clusterIndex];
    if (handle === undefined) {
      // Istio cluster names are outbound|port|subset|host.
      const parts = cluster.name.split('|');
      const service = parts.length === 4 ? parts[3]! : cluster.name;
      handle = telemetry.outbound.target({
        service,
        protocol: 'grpc',
        cluster: cluster.name,
        route: route.name,
      });
      list[clusterIndex] = handle;
    }
    return handle;
  }
}
