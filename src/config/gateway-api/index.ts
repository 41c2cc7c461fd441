/**
 * The Kubernetes Gateway API (gateway.networking.k8s.io), read the way istiod
 * reads it: routes become VirtualServices with Gateway API semantics and go
 * through the same translator as the VirtualServices a user writes, so both
 * dialects produce the same Envoy resources. Entry points for translate.ts,
 * resources.ts and admission.ts.
 */
import type { IstioResource } from '../istio-types.js';
import { buildRegistry } from '../registry.js';
import { ingressRoutes, type IngressRoutes } from './ingress.js';
import { meshRoutes, type MeshRoutes, type ParentStatus } from './mesh-routes.js';

export { translateGatewayApiRoute } from './envoy-patch.js';
export { usesGatewaySemantics } from './mesh-routes.js';

/** The annotation meshlet puts on a consumer route's VirtualService: the namespace whose proxies it applies to. */
export const CONSUMER_NAMESPACE = 'internal.meshlet.dev/consumer-namespace';

interface Expansion {
  readonly resources: readonly IstioResource[];
  /** Per route (`Kind/ns/name`), its parent statuses, mesh and Gateway parents. */
  readonly routes: Map<string, ParentStatus[]>;
  readonly gateways: IngressRoutes['gatewayProblems'];
}

const expanded = new WeakMap<readonly IstioResource[], Expansion>();

function expand(resources: readonly IstioResource[]): Expansion {
  let out = expanded.get(resources);
  if (out) return out;
  if (!resources.some((r) => r.kind === 'HTTPRoute' || r.kind === 'GRPCRoute' || r.kind === 'KubernetesGateway')) {
    out = { resources, routes: new Map(), gateways: new Map() };
  } else {
    const registry = buildRegistry(resources);
    const has = (h: string) => registry.has(h);
    const mesh: MeshRoutes = meshRoutes(resources, has);
    const ingress = ingressRoutes(resources, has);
    for (const vs of mesh.consumer) vs.metadata.annotations![CONSUMER_NAMESPACE] = vs.metadata.namespace;
    const routes = new Map(mesh.status);
    for (const [k, v] of ingress.status) routes.set(k, [...(routes.get(k) ?? []), ...v]);
    // Gateway API routes first: for one host, an HTTPRoute wins over a VirtualService
    // (istiod lists gateway-semantics routes of the proxy's namespace first).
    out = { resources: [...mesh.producer, ...mesh.consumer, ...ingress.gateways, ...ingress.virtualServices, ...resources], routes, gateways: ingress.gatewayProblems };
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
export function routeStatuses(resources: readonly IstioResource[]): Map<string, ParentStatus[]> {
  return expand(resources).routes;
}

/** Per Kubernetes Gateway of class `istio` (`ns/name`), the listeners it cannot serve. */
export function gatewayProblems(resources: readonly IstioResource[]): IngressRoutes['gatewayProblems'] {
  return expand(resources).gateways;
}
