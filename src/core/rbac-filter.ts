/**
 * The inbound filter for Envoy's RBAC HTTP filter: any HTTP filter of an
 * inbound chain whose typed_config is `envoy.extensions.filters.http.rbac.v3.RBAC`
 * (istiod names them `envoy.filters.http.rbac` and `envoy.filters.http.rbac.DENY`).
 * A denial is Envoy's local reply: 403 `RBAC: access denied`, details
 * `rbac_access_denied_matched_policy[<policy>]`; meshlet adds the flag `RBAC`.
 */
import type { InboundFilter, InboundFilterContext, InboundLocalReply, InboundRequestView } from './inbound-policy.js';
import { type CompiledRbacRules, type RbacFilterConfig, type RbacRequest, compileRbac, rbacDenies } from './rbac.js';

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
  get sourcePrincipal(): string | undefined { return this.view!.sourcePrincipal; }
  get sourceIp(): string | undefined { return this.view!.sourceIp; }
  get remoteIp(): string | undefined { return this.view!.remoteIp; }
  get destinationIp(): string | undefined { return this.view!.destinationIp; }
  get destinationPort(): number | undefined { return this.view!.destinationPort; }
  get requestedServerName(): string | undefined { return this.view!.requestedServerName; }
}

/** One RBAC filter of the inbound chain. */
export class RbacFilter implements InboundFilter {
  private readonly adapter = new RbacRequestAdapter();
  readonly authorization = true;
  /** The enforced action, for adapters that want authorization filters only (`LOG` never denies). */
  readonly action: CompiledRbacRules['action'] | undefined;

  constructor(readonly name: string, private readonly rules: CompiledRbacRules | undefined) {
    this.action = rules?.action;
  }

  decodeHeaders(request: InboundRequestView): InboundLocalReply | undefined {
    const rules = this.rules;
    if (rules === undefined || rules.action === 'LOG') return undefined;
    const a = this.adapter;
    a.view = request;
    const denied = rbacDenies(rules, a);
    a.view = undefined;
    return denied === undefined ? undefined : rbacDeniedReply(denied);
  }
}

/** The built-in factory for RBAC filters (registered by type URL in core/inbound-policy). */
export function rbacFilterFactory(context: InboundFilterContext): InboundFilter | undefined {
  const compiled = compileRbac(context.config as RbacFilterConfig | undefined, context.resource);
  // Shadow rules only report (Envoy's shadow engine); without enforced rules the filter lets everything through.
  if (compiled.rules === undefined || compiled.rules.action === 'LOG') return undefined;
  return new RbacFilter(context.name, compiled.rules);
}
