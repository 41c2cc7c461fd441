/**
 * The telemetry of one mesh, built from `createMesh` options: the workload's
 * labels and node identity (the same CLUSTER_ID / MESH_ID / ISTIO_VERSION the
 * xDS node metadata carries) and the telemetry switches.
 */
import type { ProxyInfo } from './config/translate.js';
import type { MeshOptions } from './mesh-options.js';
import { MeshTelemetry } from './telemetry/telemetry.js';
import type { NodeIdentity } from './xds/node.js';

/** The MeshTelemetry for a workload's options. */
export function meshTelemetry(options: MeshOptions, proxy: ProxyInfo, node: NodeIdentity): MeshTelemetry {
  return new MeshTelemetry({
    workload: {
      name: proxy.name, namespace: proxy.namespace, labels: proxy.labels, clusterId: node.clusterId,
      meshId: node.meshId, istioVersion: node.istioVersion,
      ...(proxy.serviceAccount !== undefined && { serviceAccount: proxy.serviceAccount }),
    },
    ...(options.tracerProvider && { tracerProvider: options.tracerProvider }),
    ...(options.meterRegistry && { registry: options.meterRegistry }),
    ...(options.propagation && { propagation: options.propagation }),
    ...(options.tracing?.recordHeaders && { recordHeaders: options.tracing.recordHeaders }),
    ...(options.telemetry?.metrics === false && { metrics: false }),
    ...(options.telemetry?.metadataExchange === false && { metadataExchange: false }),
    ...(options.telemetry?.maxPeers !== undefined && { maxPeers: options.telemetry.maxPeers }),
    ...(options.telemetry?.accessLogBufferBytes !== undefined && { accessLogBufferBytes: options.telemetry.accessLogBufferBytes }),
    ...(options.telemetry?.maxSeries !== undefined && { maxSeries: options.telemetry.maxSeries }),
    ...(options.telemetry?.canonicalLabels === false && { canonicalLabels: false }),
    ...(options.random && { random: options.random }),
  });
}
