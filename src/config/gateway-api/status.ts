/**
 * Gateway API route status as a controller writes it (per parentRef:
 * Accepted, ResolvedRefs, with the Gateway API's reason strings), reported
 * through meshlet's config status: a route whose conditions are not all True
 * is `partial`, with one warning per failed condition, and every route's
 * status carries its `conditions`.
 */
import type { ResourceStatus } from '../admission.js';
import type { IstioResource } from '../istio-types.js';
import type { ConfigWarning } from '../support-check.js';
import { gatewayProblems, routeStatuses } from './index.js';
import { GATEWAY_CLASS } from './ingress.js';

/** One Gateway API condition: of a route for one parent (status.parents[].conditions[]), or of a Gateway. */
export interface RouteCondition {
  /** `Service/ns/name[:port]` or `Gateway/ns/name[/section]`. */
  readonly parent: string;
  readonly type: 'Accepted' | 'ResolvedRefs' | 'Programmed';
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
}

/** The statuses with Gateway API route conditions added. */
export function withRouteConditions(resources: readonly IstioResource[], statuses: ResourceStatus[]): ResourceStatus[] {
  if (!resources.some((r) => r.kind === 'HTTPRoute' || r.kind === 'GRPCRoute' || r.kind === 'KubernetesGateway')) return statuses;
  const byRoute = routeStatuses(resources);
  const problems = gatewayProblems(resources);
  const classes = new Map(resources.filter((r) => r.kind === 'KubernetesGateway').map((r) => [`${r.metadata.namespace}/${r.metadata.name}`, (r.spec as { gatewayClassName: string }).gatewayClassName]));
  return statuses.map((s) => {
    if (s.kind === 'KubernetesGateway' && s.status !== 'rejected') return gatewayStatus(s, classes.get(`${s.namespace}/${s.name}`), problems.get(`${s.namespace}/${s.name}`) ?? []);
    if ((s.kind !== 'HTTPRoute' && s.kind !== 'GRPCRoute') || s.status === 'rejected') return s;
    const parents = byRoute.get(`${s.kind}/${s.namespace}/${s.name}`) ?? [];
    const conditions: RouteCondition[] = [];
    const warnings: ConfigWarning[] = [...s.warnings];
    for (const p of parents) {
      const ref = p.parentRef;
      const parent = `${ref.kind ?? 'Gateway'}/${ref.namespace}/${ref.name}${ref.port !== undefined ? `:${ref.port}` : ref.sectionName ? `/${ref.sectionName}` : ''}`;
      conditions.push({ parent, type: 'Accepted', status: p.accepted.status ? 'True' : 'False', reason: p.accepted.reason, message: p.accepted.message });
      conditions.push({ parent, type: 'ResolvedRefs', status: p.resolvedRefs.status ? 'True' : 'False', reason: p.resolvedRefs.reason, message: p.resolvedRefs.message });
      if (!p.accepted.status) warnings.push({ path: 'spec.parentRefs', code: 'MESHLET_ROUTE_NOT_ACCEPTED', message: `Accepted=False (${p.accepted.reason}) for ${parent}: ${p.accepted.message}` });
      if (!p.resolvedRefs.status && !warnings.some((w) => w.code === 'MESHLET_ROUTE_UNRESOLVED_REFS')) {
        warnings.push({ path: 'spec.rules', code: 'MESHLET_ROUTE_UNRESOLVED_REFS', message: `ResolvedRefs=False (${p.resolvedRefs.reason}): ${p.resolvedRefs.message}` });
      }
    }
    return { ...s, status: warnings.length > 0 ? 'partial' : s.status, warnings, conditions };
  });
}

/** A Kubernetes Gateway's status: Accepted and Programmed, a warning per listener meshlet does not serve. */
function gatewayStatus(s: ResourceStatus, className: string | undefined, problems: ReadonlyArray<{ listener: string; reason: string; message: string }>): ResourceStatus {
  if (className !== GATEWAY_CLASS) {
    return { ...s, status: 'partial', warnings: [...s.warnings, { path: 'spec.gatewayClassName', code: 'MESHLET_NO_EFFECT', message: `class ${String(className)} is not served: meshlet serves Gateways of class ${GATEWAY_CLASS}` }] };
  }
  const warnings: ConfigWarning[] = [...s.warnings, ...problems.map((p) => ({ path: `spec.listeners[name=${p.listener}]`, code: 'MESHLET_UNSUPPORTED_VALUE' as const, message: `listener ${p.listener} not programmed (${p.reason}): ${p.message}` }))];
  const conditions: RouteCondition[] = [
    { parent: `Gateway/${s.namespace}/${s.name}`, type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Resource accepted' },
    { parent: `Gateway/${s.namespace}/${s.name}`, type: 'Programmed', status: problems.length === 0 ? 'True' : 'False', reason: problems.length === 0 ? 'Programmed' : 'Invalid', message: problems.length === 0 ? 'served by meshlet gateways labelled gateway.networking.k8s.io/gateway-name' : problems.map((p) => p.message).join('; ') },
  ];
  return { ...s, status: warnings.length > 0 ? 'partial' : s.status, warnings, conditions };
}
