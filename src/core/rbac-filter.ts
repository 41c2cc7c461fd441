/**
 * The inbound filter for Envoy's RBAC HTTP filter: any HTTP filter of an
 * inbound chain whose typed_config is `envoy.extensions.filters.http.rbac.v3.RBAC`
 * (istiod names them `envoy.filters.http.rbac` and `envoy.filters.http.rbac.DENY`).
 * A denial is Envoy's local reply: 403 `RBAC: access denied`, details
 * `rbac_access_denied_matched_policy[<policy>]`; meshlet adds the flag `RBAC`.
 */
import type { InboundFilter, InboundFilterContext, InboundLocalReply, InboundRequestView } from './inbound-policy.js';
import { type CompiledRbacRules, RBAC_PER_ROUTE_TYPE_URL, type RbacFilterConfig, type RbacRequest, compileRbac, matchingPolicy, rbacDenies } from './rbac.js';

/** Envoy RBAC's local-reply body. */
export const RBAC_ACCESS_DENIED = 'RBAC: access denied';
/** The response flag meshlet records for an authorization denial (Envoy sets none; details carry the policy). */
export const RBAC_FLAG = 'RBAC';

/** Istio's policy names `ns[<ns>]-policy[<name>]-rule[<i>]` → `<ns>/<name>`; other names as they are. */
export function policyOfRbacName(name: string): string {
  const m = /^(?:.*-)?ns\[([^\]]*)\]-policy\[([^\]]*)\]-rule\[\d+\]$/.exec(name);
  if (m !== null) return `${m[1]}/${m[2]}`;
  // grpcgen's `<ns>-<name>-<i>` cannot be split reliably (names have dashes): keep it whole.
  return name;
}

/** The local reply for a denial whose matched policy is `policy` (`none` when an ALLOW filter matched nothing). */
export function rbacDeniedReply(policy: string): InboundLocalReply {
  return {
    status: 403, flags: RBAC_FLAG, details: `rbac_access_denied_matched_policy[${policy}]`, body: RBAC_ACCESS_DENIED, headers: [],
    source: policy === 'none' ? 'none' : policyOfRbacName(policy),
  };
}

/**
 * An InboundRequestView seen as Envoy's RBAC sees a request: pseudo-headers
 * answer from the view (`:authority` falls back to `host`), the rest from its
 * headers. One per filter, re-pointed per request (evaluation is synchronous).
 */
class RbacRequestAdapter implements RbacRequest {
  view: InboundRequestView | undefined;

  header(name: string): string | undefined {
    const v = this.view!;
    if (name.charCodeAt(0) === 58 /* ':' */) {
      if (name === ':method') return v.method;
      if (name === ':path') return v.header(':path') ?? v.path;
      if (name === ':authority') return v.header(':authority') ?? v.header('host');
      if (name === ':scheme') return v.header(':scheme');
    }
    return v.header(name);
  }

  get path(): string { return this.view!.path; }

  dynamicMetadata(filter: string, path: readonly string[]): unknown {
    let value: unknown = this.view!.metadata?.(filter);
    for (let i = 0; i < path.length && value !== undefined; i++) {
      value = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)[path[i]!] : undefined;
    }
    return value;
  }
  get sourcePrincipal(): string | undefined { return this.view!.sourcePrincipal; }
  get sourceIp(): string | undefined { return this.view!.sourceIp; }
  get remoteIp(): string | undefined { return this.view!.remoteIp; }
  get destinationIp(): string | undefined { return this.view!.destinationIp; }
  get destinationPort(): number | undefined { return this.view!.destinationPort; }
  get requestedServerName(): string | undefined { return this.view!.requestedServerName; }
}

/**
 * One RBAC filter of the inbound chain. Enforced rules (ALLOW, DENY) decide;
 * LOG rules and shadow rules only report their first matching policy to the
 * request view's {@link InboundRequestView.rbacLog} (Envoy's access-log hint
 * and shadow engine result), when the adapter listens.
 */
export class RbacFilter implements InboundFilter {
  private readonly adapter = new RbacRequestAdapter();
  /** Only enforcing filters count as authorization (LOG and shadow-only ones never deny). */
  readonly authorization: boolean;

  constructor(readonly name: string, private readonly rules: CompiledRbacRules | undefined, private readonly shadow: CompiledRbacRules | undefined) {
    this.authorization = rules !== undefined && rules.action !== 'LOG';
  }

  decodeHeaders(request: InboundRequestView): InboundLocalReply | undefined {
    const a = this.adapter;
    a.view = request;
    try {
      const log = request.rbacLog;
      if (log !== undefined) {
        if (this.shadow !== undefined) {
          const hit = matchingPolicy(this.shadow, a);
          if (hit !== undefined) log.call(request, { policy: hit, action: this.shadow.action, shadow: true });
        }
        if (this.rules?.action === 'LOG') {
          const hit = matchingPolicy(this.rules, a);
          if (hit !== undefined) log.call(request, { policy: hit, action: 'LOG', shadow: false });
        }
      }
      if (!this.authorization) return undefined;
      const denied = rbacDenies(this.rules!, a);
      return denied === undefined ? undefined : rbacDeniedReply(denied);
    } finally {
      a.view = undefined;
    }
  }
}

/** Envoy's RBACPerRoute: `{ rbac }` overrides the filter on the route; without `rbac` the filter is off there. */
function effectiveConfig(config: Record<string, unknown> | undefined): RbacFilterConfig | undefined {
  if (config?.['@type'] === RBAC_PER_ROUTE_TYPE_URL) return config.rbac as RbacFilterConfig | undefined;
  return config as RbacFilterConfig | undefined;
}

/** The built-in factory for RBAC filters (registered by type URL in core/inbound-policy). */
export function rbacFilterFactory(context: InboundFilterContext): InboundFilter | undefined {
  const compiled = compileRbac(effectiveConfig(context.config), context.resource);
  if (compiled.rules === undefined && compiled.shadow === undefined) return undefined;
  return new RbacFilter(context.name, compiled.rules, compiled.shadow);
}
