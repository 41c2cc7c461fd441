/**
 * Istio AuthorizationPolicy (security.istio.io/v1) evaluated directly, for
 * callers that hold resources rather than a snapshot (`meshlet analyze`,
 * admission, tests). It is the same code path as the inbound chain: the
 * policies are translated into Envoy RBAC filters (config/translate-rbac, as
 * istiod's authz builder writes them) and those are compiled by core/rbac.
 * Semantics, as Istio documents them:
 *  - DENY policies are checked first; any match denies.
 *  - No ALLOW policy selects the workload → allow.
 *  - ALLOW policies exist → allow only if one matches.
 *  - A policy without rules (`spec: {}`) matches nothing, so as ALLOW it
 *    denies everything (allow-nothing); `rules: [{}]` matches everything.
 *  - AUDIT policies never change the decision; matches are reported.
 */
import { type TranslatedAuthorizationPolicy, policySelects, rbacFilters, translateAuthorizationPolicy } from '../config/translate-rbac.js';
import { type CompiledRbacRules, type RbacFilterConfig, type RbacRequest, compileRbac, matchingPolicy } from '../core/rbac.js';
import { policyOfRbacName } from '../core/rbac-filter.js';

/** The request facts a policy can look at; built once per request by the caller. */
export interface RequestAttributes {
  method: string;
  /** Path, with or without a query string (the query is ignored). */
  path: string;
  /** Host / :authority, possibly with a port. */
  host?: string;
  /** Destination port the request arrived on. */
  port?: number;
  /** Header lookup by lower-case name. */
  header?: (name: string) => string | undefined;
  /** The peer's SPIFFE id (`spiffe://td/ns/x/sa/y`) when mTLS authenticated it. */
  sourcePrincipal?: string;
  /** The peer's IP address (ipBlocks, source.ip). */
  sourceIp?: string;
  /** The client IP per X-Forwarded-For (remoteIpBlocks, remote.ip); defaults to sourceIp. */
  remoteIp?: string;
  destinationIp?: string;
  sni?: string;
}

/** The outcome of an evaluation. Decisions without audits are shared objects: do not mutate. */
export interface AuthorizationDecision {
  readonly allowed: boolean;
  /** `namespace/name` of the policy that decided, when one did. */
  readonly policy?: string;
  readonly reason: string;
  /** `namespace/name` of AUDIT policies that matched. */
  readonly audit?: readonly string[];
}

/** An AuthorizationPolicy as written in YAML. */
export interface AuthorizationPolicyResource {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  spec?: AuthorizationPolicySpec;
}

/** `spec` of an AuthorizationPolicy (the fields meshlet enforces). */
export interface AuthorizationPolicySpec {
  selector?: { matchLabels?: Record<string, string> };
  action?: 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';
  rules?: Array<{
    from?: Array<{ source?: Record<string, string[] | undefined> }>;
    to?: Array<{ operation?: Record<string, string[] | undefined> }>;
    when?: Array<{ key: string; values?: string[]; notValues?: string[] }>;
  }>;
}

/** Options for {@link compileAuthorizationPolicies}. */
export interface AuthorizationOptions {
  /** Policies here apply mesh-wide (Istio's root namespace, default `istio-system`). */
  rootNamespace?: string;
  /** Namespace assumed for policies without one (default `default`). */
  defaultNamespace?: string;
}

const ALLOW_NO_POLICY: AuthorizationDecision = Object.freeze({ allowed: true, reason: 'no ALLOW policy applies to the workload' });
const DENY_NO_MATCH: AuthorizationDecision = Object.freeze({ allowed: false, reason: 'no ALLOW policy matched' });

/** RequestAttributes as the RBAC engine reads them (pseudo-headers from the attributes). */
class AttributesRequest implements RbacRequest {
  a: RequestAttributes = { method: '', path: '' };

  header(name: string): string | undefined {
    const a = this.a;
    if (name === ':method') return a.method;
    if (name === ':authority' || name === 'host') return a.host ?? a.header?.(name);
    if (name === ':path') return a.path;
    return a.header?.(name);
  }

  get path(): string {
    const q = this.a.path.indexOf('?');
    return q < 0 ? this.a.path : this.a.path.slice(0, q);
  }

  get sourcePrincipal(): string | undefined { return this.a.sourcePrincipal; }
  get sourceIp(): string | undefined { return this.a.sourceIp; }
  get remoteIp(): string | undefined { return this.a.remoteIp; }
  get destinationIp(): string | undefined { return this.a.destinationIp; }
  get destinationPort(): number | undefined { return this.a.port; }
  get requestedServerName(): string | undefined { return this.a.sni; }
}

/** The evaluator for one workload: its RBAC filters, in Istio's order. */
export class AuthorizationEvaluator {
  readonly #deny: CompiledRbacRules | undefined;
  readonly #allow: CompiledRbacRules | undefined;
  readonly #audit: CompiledRbacRules | undefined;
  readonly #decisions = new Map<string, AuthorizationDecision>();
  readonly #request = new AttributesRequest();

  /** @internal built by {@link AuthorizationPolicies.forWorkload}. */
  constructor(policies: readonly TranslatedAuthorizationPolicy[]) {
    let deny: CompiledRbacRules | undefined;
    let allow: CompiledRbacRules | undefined;
    let audit: CompiledRbacRules | undefined;
    for (const f of rbacFilters(policies)) {
      const rules = compileRbac(f.typed_config as RbacFilterConfig, f.name).rules;
      if (rules?.action === 'DENY') deny = rules;
      else if (rules?.action === 'ALLOW') allow = rules;
      else if (rules?.action === 'LOG') audit = rules;
    }
    [this.#deny, this.#allow, this.#audit] = [deny, allow, audit];
    for (const [rules, allowed, word] of [[deny, false, 'denied by DENY'], [allow, true, 'allowed by ALLOW']] as const) {
      for (const p of rules?.policies ?? []) {
        const policy = policyOfRbacName(p.name);
        this.#decisions.set(p.name, Object.freeze({ allowed, policy, reason: `${word} policy ${policy}` }));
      }
    }
  }

  /** True when no policy applies (callers may skip building attributes). */
  get empty(): boolean {
    return this.#deny === undefined && this.#allow === undefined && this.#audit === undefined;
  }

  /** Decides one request. Allocates only when an AUDIT policy matches. */
  evaluate(request: RequestAttributes): AuthorizationDecision {
    const r = this.#request;
    r.a = request;
    const decision = this.#decide(r);
    if (this.#audit === undefined) return decision;
    let audit: string[] | undefined;
    for (const p of this.#audit.policies) {
      const id = policyOfRbacName(p.name);
      if (p.test(r) && !audit?.includes(id)) (audit ??= []).push(id);
    }
    return audit ? { ...decision, audit } : decision;
  }

  #decide(r: RbacRequest): AuthorizationDecision {
    if (this.#deny !== undefined) {
      const denied = matchingPolicy(this.#deny, r);
      if (denied !== undefined) return this.#decisions.get(denied)!;
    }
    if (this.#allow === undefined) return ALLOW_NO_POLICY;
    const allowed = matchingPolicy(this.#allow, r);
    return allowed === undefined ? DENY_NO_MATCH : this.#decisions.get(allowed)!;
  }
}

/** A validated set of policies; pick the evaluator for a workload once, evaluate per request. */
export class AuthorizationPolicies {
  readonly #policies: readonly TranslatedAuthorizationPolicy[];
  readonly #rootNamespace: string;

  /** @internal use {@link compileAuthorizationPolicies}. */
  constructor(policies: readonly TranslatedAuthorizationPolicy[], rootNamespace: string) {
    this.#policies = policies;
    this.#rootNamespace = rootNamespace;
  }

  /** Number of compiled policies. */
  get size(): number {
    return this.#policies.length;
  }

  /** The policies that apply to a workload: its namespace's and the root namespace's, filtered by selector. */
  forWorkload(workload: { namespace: string; labels?: Readonly<Record<string, string>> }): AuthorizationEvaluator {
    return new AuthorizationEvaluator(this.#policies.filter((p) => policySelects(p, workload, this.#rootNamespace)));
  }
}

/**
 * Validates and compiles AuthorizationPolicy resources; other kinds in the
 * list are ignored, so a whole config can be passed.
 * @throws MeshConfigError naming the policy and the bad field; nothing is half-compiled.
 */
export function compileAuthorizationPolicies(resources: readonly AuthorizationPolicyResource[], options: AuthorizationOptions = {}): AuthorizationPolicies {
  const defaultNamespace = options.defaultNamespace ?? 'default';
  const translated = resources
    .filter((r) => r.kind === undefined || r.kind === 'AuthorizationPolicy')
    .map((r) => translateAuthorizationPolicy(r as Parameters<typeof translateAuthorizationPolicy>[0], { defaultNamespace }));
  // Compiling each policy's RBAC now reports a bad regex or CIDR at admission, not at the first request.
  for (const f of rbacFilters(translated)) compileRbac(f.typed_config as RbacFilterConfig, f.name);
  return new AuthorizationPolicies(translated, options.rootNamespace ?? 'istio-system');
}
