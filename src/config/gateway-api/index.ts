/**
 * The Kubernetes Gateway API (gateway.networking.k8s.io), read the way istiod
 * reads it: routes become VirtualServices with Gateway API semantics and go
 * through the same translator as the VirtualServices a user writes, so both
 * dialects produce the same Envoy resources. Entry points for translate.ts,
 * resources.ts and admission.ts.
 */
import type { IstioResource } from '../istio-types.js';
import { buildRegistry } from '../registry.js';
import { meshRoutes, type MeshRoutes } from './mesh-routes.js';

export { translateGatewayApiRoute } from './envoy-patch.js';
export { usesGatewaySemantics } from './mesh-routes.js';

/** The annotation meshlet puts on a consumer route's VirtualService: the namespace whose proxies it applies to. */
export const CONSUMER_NAMESPACE = 'internal.meshlet.dev/consumer-namespace';

const expanded = new WeakMap<readonly IstioResource[], { resources: readonly IstioResource[]; mesh: MeshRoutes }>();

function expand(resources: readonly IstioResource[]): { resources: readonly IstioResource[]; mesh: MeshRoutes } {
  let out = expanded.get(resources);
  if (out) return out;
  if (!resources.some((r) => r.kind === 'HTTPRoute' || r.kind === 'GRPCRoute')) {
    out = { resources, mesh: { producer: [], consumer: [], status: new Map() } };
  } else {
    const registry = buildRegistry(resources);
    const mesh = meshRoutes(resources, (h) => registry.has(h));
    for (const vs of mesh.consumer) vs.metadata.annotations![CONSUMER_NAMESPACE] = vs.metadata.namespace;
    // Gateway API routes first: for one host, an HTTPRoute wins over a VirtualService
    // (istiod lists gateway-semantics routes of the proxy's namespace first).
    out = { resources: [...mesh.producer, ...mesh.consumer, ...resources], mesh };
  }
  expanded.set(resources, out);
  return out;
}

/**
 * The resources with the VirtualServices of every Gateway API route added
 * (the same array object for the same input, so translation caches hold).
 */
export function withGatewayApiRoutes(resources: readonly IstioResource[]): readonly IstioResource[] {
  return expand(resources).resources;
}

/** Per route (`Kind/ns/name`), its parent statuses (Accepted, ResolvedRefs). */
export function routeStatuses(resources: readonly IstioResource[]): MeshRoutes['status'] {
  return expand(resources).mesh.status;
}
