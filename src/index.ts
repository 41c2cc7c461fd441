/**
 * meshlet — a proxyless service mesh for Node.js. See DESIGN.md §3 for the
 * public contract.
 */
export { createMesh, Mesh, type MeshOptions, type WorkloadOptions } from './mesh.js';
export {
  MeshError,
  MeshConfigError,
  MeshTimeoutError,
  MeshFaultAbortError,
  MeshNoHealthyUpstreamError,
  MeshOverflowError,
  MeshRateLimitedError,
  MeshRateLimitServiceError,
  MeshRetriesExhaustedError,
  MeshUpstreamConnectError,
  MeshNoRouteError,
  MeshNoClusterError,
  type ConfigSourceRef,
  type ResponseFlag,
} from './errors.js';
export { seededRandom, type RandomSource } from './core/random.js';
export type { ConfigSource } from './config/load.js';
export type { EnvoyResources } from './config/envoy.js';
export type { IstioResource } from './config/istio-types.js';
export type { MeshConfigOptions } from './config/mesh-config.js';
export { DEFAULT_SERVER_TIMEOUTS, type ServerTimeouts } from './security/server-timeouts.js';
export { normalizePath, pathNormalizationSettings, type PathNormalizationType, type PathNormalizationSettings, type PathNormalizationResult } from './core/path-normalization.js';
export type { ResourceStatus } from './config/admission.js';
export { WARNING_CODES, type ConfigWarning, type WarningCode } from './config/support-check.js';
export { istioAgentOptions, type IstioAgentOptions, ISTIOD_DISCOVERY_ADDRESS } from './xds/istio-agent.js';
export { type ControlPlaneTlsOptions, ISTIO_ROOT_CERT_FILE, ISTIO_TOKEN_FILE } from './xds/channel-credentials.js';
