/**
 * Everything telemetry for one mesh, built once by createMesh and closed
 * with it: propagator, tracer, istio_* metrics, metadata exchange, and the
 * inbound/outbound helpers the adapters call.
 */
import type { TracerProvider } from '@opentelemetry/api';
import type { Registry } from 'prom-client';
import { InboundTelemetry } from './inbound.js';
import { BUILD_TAG, IstioMetrics, type IstioLabels } from './metrics.js';
import { OutboundTelemetry } from './outbound.js';
import { encodePeerMetadata, exchangedLabels, PeerMetadataCache, type PeerMetadata, type PeerMetadataHeaders, peerLabels } from './peer-metadata.js';
import { MeshPropagator, type PropagationFormat } from './propagation.js';
import type { RandomSource } from '../core/random.js';
import { affectsTracing, ALL_METRICS, type TelemetryPolicy } from './telemetry-policy.js';
import { MeshTracer } from './tracing.js';
import { AccessLogConfigError, AccessLogSinks, compileAccessLogs, type AccessLogger, type EnvoyAccessLog } from './access-log.js';
import type { Listener } from '../config/envoy.js';

/** The access logs compiled from a set of listeners, ready to install. */
export interface CompiledAccessLogs {
  readonly client: readonly AccessLogger[];
  readonly server: readonly AccessLogger[];
}

import { DEFAULT_CLUSTER_ID } from '../xds/node.js';
/** istiod's default cluster id (its `--clusterID` flag, env CLUSTER_ID): what Kiali's health queries select. */
export { DEFAULT_CLUSTER_ID };

/** Options of {@link MeshTelemetry}. */
export interface MeshTelemetryOptions {
  /** This workload (DESIGN.md §3 `workload`). */
  workload: {
    name: string;
    namespace?: string;
    labels?: Readonly<Record<string, string>>;
    serviceAccount?: string;
    /** CLUSTER_ID and the *_cluster labels (default {@link DEFAULT_CLUSTER_ID}, as istiod). */
    clusterId?: string;
    /** MESH_ID (default the trust domain, as istiod's meshConfig.meshId). */
    meshId?: string;
    /** ISTIO_VERSION in metadata exchange and `istio_build`'s tag (default {@link BUILD_TAG}). */
    istioVersion?: string;
  };
  /** Cap on access-log bytes waiting for a slow sink, per file (default 1 MiB); past it lines are dropped and counted. */
  accessLogBufferBytes?: number;
  /** The service this workload serves, for destination_service* on inbound; default `<app or name>.<namespace>.svc.cluster.local`. */
  service?: { host: string; name?: string; namespace?: string };
  tracerProvider?: TracerProvider;
  /** prom-client Registry; default a new one for this mesh. */
  registry?: Registry;
  /** Formats injected on outbound requests (default W3C + B3 multi). */
  propagation?: readonly PropagationFormat[];
  /** Header names recorded on spans (secrets are always dropped). */
  recordHeaders?: readonly string[];
  /** Cap on distinct metric series per metric (default 2000). */
  maxSeries?: number;
  /** Cap on distinct peers (metadata-exchange label sets) per reporter (default 100); past it, `overflow`. */
  maxPeers?: number;
  /** Istio's canonical service/revision labels (default true, as Istio). */
  canonicalLabels?: boolean;
  /** Send and read Istio metadata-exchange headers (default true). */
  metadataExchange?: boolean;
  /** Record the istio_* metrics (default true). */
  metrics?: boolean;
  /** Clock in ms (tests). */
  now?: () => number;
  /** The mesh's random source (Telemetry sampling draws); default Math.random. */
  random?: RandomSource;
}

/** The telemetry of one mesh. */
export class MeshTelemetry {
  readonly propagator: MeshPropagator;
  readonly tracer: MeshTracer;
  readonly metrics: IstioMetrics;
  readonly peers: PeerMetadataCache;
  /** Our metadata-exchange header values (encoded once). */
  readonly ownHeaders: PeerMetadataHeaders | undefined;
  readonly inbound: InboundTelemetry;
  readonly outbound: OutboundTelemetry;
  /** The access-log files of this mesh, by path. */
  readonly accessLogSinks: AccessLogSinks;

  constructor(options: MeshTelemetryOptions) {
    const w = options.workload;
    const namespace = w.namespace ?? 'default';
    const self: PeerMetadata = {
      name: w.name,
      namespace,
      workloadName: w.name,
      labels: w.labels ?? {},
      serviceAccount: w.serviceAccount,
      clusterId: w.clusterId ?? DEFAULT_CLUSTER_ID,
      meshId: w.meshId ?? 'cluster.local',
      istioVersion: w.istioVersion ?? BUILD_TAG,
    };
    this.propagator = new MeshPropagator({ inject: options.propagation });
    this.tracer = new MeshTracer({ tracerProvider: options.tracerProvider, recordHeaders: options.recordHeaders, random: options.random });
    this.metrics = new IstioMetrics({
      registry: options.registry, maxSeries: options.maxSeries, maxPeers: options.maxPeers, canonicalLabels: options.canonicalLabels,
      ...(w.istioVersion !== undefined && { buildTag: w.istioVersion }),
    });
    this.peers = new PeerMetadataCache();
    this.accessLogSinks = new AccessLogSinks(options.accessLogBufferBytes);
    this.ownHeaders = options.metadataExchange === false ? undefined : encodePeerMetadata({ ...self, labels: exchangedLabels(self.labels ?? {}, w.name) });
    const app = w.labels?.app ?? w.name;
    const host = options.service?.host ?? `${app}.${namespace}.svc.cluster.local`;
    const destination: IstioLabels = {
      ...peerLabels(self, 'destination'),
      destination_service: host,
      destination_service_name: options.service?.name ?? host.split('.')[0],
      destination_service_namespace: options.service?.namespace ?? namespace,
    };
    const now = options.now;
    this.inbound = new InboundTelemetry({
      propagator: this.propagator, tracer: this.tracer, metrics: this.metrics, peers: this.peers,
      destination, ownHeaders: this.ownHeaders, now, recordMetrics: options.metrics,
    });
    this.outbound = new OutboundTelemetry({
      propagator: this.propagator, tracer: this.tracer, metrics: this.metrics, peers: this.peers,
      source: peerLabels(self, 'source'), ownHeaders: this.ownHeaders, now, recordMetrics: options.metrics,
    });
  }

  /**
   * Installs the Telemetry API settings resolved for this workload
   * (telemetry-policy.ts), or none. Synchronous, so no request sees half of a push.
   */
  applyPolicy(policy: TelemetryPolicy | undefined): void {
    this.tracer.policy = affectsTracing(policy) ? policy : undefined;
    this.inbound.setMetricMask(policy?.serverMetrics ?? ALL_METRICS);
    this.outbound.setMetricMask(policy?.clientMetrics ?? ALL_METRICS);
  }

  /**
   * Compiles the access logs the listeners carry (HCM `access_log`): the
   * outbound api_listeners' for CLIENT, the inbound listener's for SERVER.
   * Nothing is installed until {@link installAccessLogs}.
   * @throws AccessLogConfigError (with the listener in its path) for an entry meshlet cannot apply.
   */
  compileAccessLogs(listeners: readonly Listener[]): CompiledAccessLogs {
    let client: AccessLogger[] | undefined;
    let server: AccessLogger[] | undefined;
    for (const l of listeners) {
      const where = `listener ${l.name}`;
      try {
        if (l.api_listener !== undefined) {
          // Every outbound listener of a workload carries the same logs (Istio configures them per proxy).
          client ??= compileAccessLogs(l.api_listener.api_listener.access_log as EnvoyAccessLog[] | undefined, this.accessLogSinks);
          continue;
        }
        // A request passes one filter chain (mTLS or plaintext, one port), and every chain of a workload's
        // inbound listeners carries the same logs (Istio configures them per proxy): read the first one.
        if (server !== undefined) continue;
        for (const chain of (l.filter_chains ?? []) as Array<{ filters?: Array<{ typed_config?: { access_log?: EnvoyAccessLog[] } }> }>) {
          const hcm = chain.filters?.find((f) => f.typed_config?.access_log !== undefined);
          if (hcm !== undefined) {
            server = compileAccessLogs(hcm.typed_config!.access_log, this.accessLogSinks);
            break;
          }
        }
      } catch (err) {
        if (err instanceof AccessLogConfigError) throw new AccessLogConfigError(`${where}: ${err.path}`, err.reason);
        throw err;
      }
    }
    return { client: client ?? [], server: server ?? [] };
  }

  /** Installs compiled access logs (synchronously: no request sees half a push) and closes files no longer written. */
  installAccessLogs(logs: CompiledAccessLogs): void {
    this.outbound.setAccessLogs(logs.client);
    this.inbound.setAccessLogs(logs.server);
    this.accessLogSinks.retain(new Set([...logs.client, ...logs.server].map((l) => l.sink)));
  }

  /** The istio_* exposition text (`await mesh.metrics()`). */
  text(): Promise<string> {
    return this.metrics.text();
  }

  /** Unregisters the metrics and flushes and closes the access-log files; idempotent. Spans are the provider's to flush. */
  async close(): Promise<void> {
    this.metrics.close();
    this.inbound.setAccessLogs([]);
    this.outbound.setAccessLogs([]);
    await this.accessLogSinks.close();
  }
}
