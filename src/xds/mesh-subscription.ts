/**
 * How a mesh subscribes to its control plane: the ADS client options from
 * `createMesh({ xds })`, over mTLS with the workload's rotating certificate
 * when the mesh has a CA-issued identity, the control plane's identity pinned
 * as for its CA (`ca.identity`, default istiod's SPIFFE id).
 */
import type { EnvoyResources } from '../config/envoy.js';
import type { ProxyInfo } from '../config/translate.js';
import type { MeshOptions } from '../mesh-options.js';
import type { MeshIdentityOptions } from '../security/mesh-security.js';
import type { WorkloadIdentity } from '../security/workload-identity.js';
import { type AdsClient, createAdsClient } from './ads-client.js';
import type { NodeIdentity } from './node.js';
import { DEFAULT_SERVER_LISTENER_TEMPLATE, serverListenerName } from './subscriptions.js';
import { xdsChannelCredentials } from './channel-credentials.js';
import { resolveBootstrap } from './bootstrap.js';

/** What the subscription needs from the mesh. */
export interface SubscribingMesh {
  readonly proxy: ProxyInfo;
  /** CLUSTER_ID, MESH_ID, ISTIO_VERSION for the node metadata (the ones telemetry uses). */
  readonly nodeIdentity: NodeIdentity;
  readonly identity: WorkloadIdentity | undefined;
  readonly trustDomain: string;
  /** Installs a set from the control plane (in slices); rejects (→ NACK) when unusable. */
  onResources(resources: EnvoyResources, version: string): void | Promise<void>;
}

/** Starts the ADS client of a mesh (not yet waited for: call `ready()`). */
export function subscribe(mesh: SubscribingMesh, options: NonNullable<MeshOptions['xds']>, identityOptions: MeshIdentityOptions = {}): AdsClient {
  const credentials = xdsChannelCredentials(options, identityOptions, { identity: mesh.identity, trustDomain: mesh.trustDomain, clusterId: mesh.nodeIdentity.clusterId });
  const inbound = inboundListenerNames(options);
  return createAdsClient({
    ...(credentials !== undefined && { credentials }),
    ...(options.server !== undefined && { server: options.server }),
    ...(options.bootstrap !== undefined && { bootstrap: options.bootstrap }),
    ...(options.apiType !== undefined && { apiType: options.apiType }),
    ...(options.lastKnownGood !== undefined && { lastKnownGood: options.lastKnownGood }),
    ...(options.initialFetchTimeoutMs !== undefined && { initialFetchTimeoutMs: options.initialFetchTimeoutMs }),
    ...(options.listeners !== undefined && { listenerNames: options.listeners }),
    ...(inbound.length > 0 && { inboundListenerNames: inbound }),
    workload: {
      ...mesh.proxy,
      ...mesh.nodeIdentity,
      ...(options.address !== undefined && { address: options.address }),
      ...(options.ports !== undefined && { ports: options.ports }),
      ...(options.autoRegisterGroup !== undefined && { autoRegisterGroup: options.autoRegisterGroup }),
    },
    onResources: (resources, version) => mesh.onResources(resources, version),
  });
}

/**
 * The inbound listeners to ask for, one per server port (`xds.serverPorts`),
 * named by `xds.serverListenerNameTemplate` (the bootstrap's
 * `server_listener_resource_name_template`; default istio's
 * `xds.istio.io/grpc/lds/inbound/%s`) with the workload's address (default
 * 0.0.0.0, as gRPC servers listen).
 */
export function inboundListenerNames(options: NonNullable<MeshOptions['xds']>): string[] {
  const ports = options.serverPorts ?? [];
  if (ports.length === 0) return [];
  const template = options.serverListenerNameTemplate ?? resolveBootstrap(options)?.serverListenerResourceNameTemplate ?? DEFAULT_SERVER_LISTENER_TEMPLATE;
  return [...new Set(ports)].map((port) => serverListenerName(template, options.serverAddress ?? '0.0.0.0', port));
}
