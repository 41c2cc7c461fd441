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
import { xdsChannelCredentials } from './channel-credentials.js';

/** What the subscription needs from the mesh. */
export interface SubscribingMesh {
  readonly proxy: ProxyInfo;
  readonly clusterId: string;
  readonly identity: WorkloadIdentity | undefined;
  readonly trustDomain: string;
  /** Installs a set from the control plane; throws (→ NACK) when unusable. */
  onResources(resources: EnvoyResources, version: string): void;
}

/** Starts the ADS client of a mesh (not yet waited for: call `ready()`). */
export function subscribe(mesh: SubscribingMesh, options: NonNullable<MeshOptions['xds']>, identityOptions: MeshIdentityOptions = {}): AdsClient {
  const credentials = xdsChannelCredentials(options, identityOptions, mesh);
  return createAdsClient({
    ...(credentials !== undefined && { credentials }),
    ...(options.server !== undefined && { server: options.server }),
    ...(options.bootstrap !== undefined && { bootstrap: options.bootstrap }),
    ...(options.lastKnownGood !== undefined && { lastKnownGood: options.lastKnownGood }),
    ...(options.initialFetchTimeoutMs !== undefined && { initialFetchTimeoutMs: options.initialFetchTimeoutMs }),
    workload: {
      ...mesh.proxy,
      clusterId: mesh.clusterId,
      ...(options.address !== undefined && { address: options.address }),
      ...(options.ports !== undefined && { ports: options.ports }),
      ...(options.autoRegisterGroup !== undefined && { autoRegisterGroup: options.autoRegisterGroup }),
    },
    onResources: (resources, version) => mesh.onResources(resources, version),
  });
}
