/**
 * AuthorizationPolicy (security.istio.io/v1) → Envoy RBAC HTTP filters, the
 * way istiod's authz builder writes them (pilot/pkg/security/authz/builder
 * and model, istio/istio 86c9f01f): one policy per rule, named
 * `ns[<ns>]-policy[<name>]-rule[<i>]`; a permission per `to` entry and a
 * principal per `from` entry, each the AND of its fields (values ORed,
 * notValues as `not(or(…))`), with the rule's `when` conditions appended to
 * every one; a policy without rules becomes a policy that matches nothing.
 * Filters come in istiod's order: AUDIT (action LOG), DENY, ALLOW; policies
 * annotated `istio.io/dry-run: "true"` go to `shadow_rules`.
 *
 * Validation is strict and names the field (MeshConfigError): a rule istiod
 * would skip with a log line is refused here, so nothing is silently dropped.
 */
import { MeshConfigError } from '../errors.js';
import type { HeaderMatcher, StringMatcher } from './envoy.js';
import type { HttpFilter } from './translate-inbound.js';
import { type CidrRange, RBAC_TYPE_URL, type RbacPermission, type RbacPolicy, type RbacPrincipal, type RbacRules, type ValueMatcher } from '../core/rbac.js';
import { JWT_AUTHN_FILTER, JWT_PAYLOAD_KEY } from '../core/jwt-authn.js';
import { compileIpBlocks, compilePortList, compileStringPattern } from '../security/authorization-match.js';

const KIND = 'AuthorizationPolicy';

/** istiod's filter names (grpcgen/lds.go uses the first two; the builder names every one `envoy.filters.http.rbac`). */
export const RBAC_ALLOW_FILTER = 'envoy.filters.http.rbac';
export const RBAC_DENY_FILTER = 'envoy.filters.http.rbac.DENY';
export const RBAC_AUDIT_FILTER = 'envoy.filters.http.rbac.AUDIT';

/** An AuthorizationPolicy as written in YAML (the fields read here). */
export interface AuthorizationPolicyInput {
  kind?: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
}

/** One validated policy, translated. */
export interface TranslatedAuthorizationPolicy {
  readonly namespace: string;
  readonly name: string;
  readonly action: 'ALLOW' | 'DENY' | 'AUDIT';
  readonly matchLabels: Readonly<Record<string, string>> | undefined;
  readonly dryRun: boolean;
  /** RBAC policies by Istio's name. */
  readonly policies: Readonly<Record<string, RbacPolicy>>;
}

/** istiod's name for rule `i` of a policy. */
export function rbacPolicyName(namespace: string, name: string, rule: number): string {
  return `ns[${namespace}]-policy[${name}]-rule[${rule}]`;
}

/** istiod's rbacPolicyMatchNever (builder.go): what an ALLOW policy without rules becomes. */
const MATCH_NEVER: RbacPolicy = { permissions: [{ not_rule: { any: true } }], principals: [{ not_id: { any: true } }] };

/** Source fields meshlet reads (config/support.ts lists the same); serviceAccounts / trustDomains (newer Istio) are refused as unknown. */
const SOURCE_FIELDS = new Set(['principals', 'notPrincipals', 'namespaces', 'notNamespaces', 'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks',
  'requestPrincipals', 'notRequestPrincipals']);
const OPERATION_FIELDS = new Set(['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths']);
const HEADER_KEY = /^request\.headers\[([^\]]+)\]$/;

const quote = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Istio's matcher.StringMatcherWithPrefix: `*` any non-empty, `*x` suffix, `x*` prefix, else exact. */
function stringMatcher(v: string, prefix = ''): StringMatcher {
  if (v === '*') return { safe_regex: { regex: '.+' } };
  if (v.startsWith('*')) return prefix === '' ? { suffix: v.slice(1) } : { safe_regex: { regex: `${quote(prefix)}.*${quote(v.slice(1))}` } };
  if (v.endsWith('*')) return { prefix: prefix + v.slice(0, -1) };
  return { exact: prefix + v };
}

/** Istio's matcher.HeaderMatcher: `*` is a presence match. */
function headerMatcher(name: string, v: string): HeaderMatcher {
  if (v === '*') return { name, present_match: true };
  return { name, string_match: stringMatcher(v) };
}

/**
 * Istio's matcher.HostMatcher (case-insensitive `:authority`), plus the same
 * host with a port: a request's authority carries one when the client
 * dialled a non-default port, and `hosts` name hosts, not authorities.
 */
function hostPermissions(v: string): RbacPermission[] {
  const authority = ':authority';
  if (v === '*') return [{ header: { name: authority, present_match: true } }];
  if (v.endsWith('*')) return [{ header: { name: authority, string_match: { prefix: v.slice(0, -1), ignore_case: true } } }];
  const withPort = `(?i)${v.startsWith('*') ? '.*' + quote(v.slice(1)) : quote(v)}:[0-9]+`;
  const own: StringMatcher = v.startsWith('*') ? { suffix: v.slice(1), ignore_case: true } : { exact: v, ignore_case: true };
  return [{ header: { name: authority, string_match: own } }, { header: { name: authority, string_match: { safe_regex: { regex: withPort } } } }];
}

function cidr(block: string): CidrRange {
  const slash = block.indexOf('/');
  const address = slash < 0 ? block : block.slice(0, slash);
  const bits = slash < 0 ? (address.includes(':') ? 128 : 32) : Number(block.slice(slash + 1));
  return { address_prefix: address, prefix_len: { value: bits } };
}

const authenticated = (m: StringMatcher): RbacPrincipal => ({ authenticated: { principal_name: m } });

/** Istio's srcNamespaceGenerator: the namespace segment of the SPIFFE id, `*` as `.*`. */
const namespacePrincipal = (v: string): RbacPrincipal => authenticated({ safe_regex: { regex: `.*/ns/${v.split('*').map(quote).join('.*')}/.*` } });

/** jwt_authn's payload in dynamic metadata, as istiod's authz model matches it (model/util.go). */
const claimMetadata = (claims: string[], value: ValueMatcher, list: boolean): RbacPrincipal => ({
  metadata: {
    filter: JWT_AUTHN_FILTER,
    path: [JWT_PAYLOAD_KEY, ...claims].map((key) => ({ key })),
    // MetadataListValueMatcher with extended JWT: a claim may be a list (aud, groups) or a single value.
    value: list ? { or_match: { value_matchers: [{ list_match: { one_of: value } }, value] } } : value,
  },
});

/** Istio's StringOrMatcher over values. */
function stringOr(values: string[]): ValueMatcher {
  const list = values.map((v): ValueMatcher => ({ string_match: stringMatcher(v) }));
  return list.length === 1 ? list[0]! : { or_match: { value_matchers: list } };
}

const ANY_CLAIM: StringMatcher = { safe_regex: { regex: '.+' } };

/** Istio's requestPrincipalGenerator: `iss/sub` split at the last `/`, each side exact, prefix, suffix or any. */
function requestPrincipal(value: string): RbacPrincipal {
  const idx = value.lastIndexOf('/');
  const found = idx >= 0;
  const iss = found ? value.slice(0, idx) : value;
  const sub = found ? value.slice(idx + 1) : '';
  let matchIss: StringMatcher;
  let matchSub: StringMatcher;
  if (value === '*') {
    matchIss = ANY_CLAIM; matchSub = ANY_CLAIM;
  } else if (value.startsWith('*')) {
    if (found) {
      matchIss = iss === '*' ? ANY_CLAIM : { suffix: iss.slice(1) };
      matchSub = { exact: sub };
    } else {
      matchIss = ANY_CLAIM; matchSub = { suffix: value.slice(1) };
    }
  } else if (value.endsWith('*')) {
    if (found) {
      matchIss = { exact: iss };
      matchSub = sub === '*' ? ANY_CLAIM : { prefix: sub.slice(0, -1) };
    } else {
      matchIss = { prefix: value.slice(0, -1) }; matchSub = ANY_CLAIM;
    }
  } else {
    matchIss = { exact: iss }; matchSub = { exact: sub };
  }
  return { and_ids: { ids: [claimMetadata(['iss'], { string_match: matchIss }, false), claimMetadata(['sub'], { string_match: matchSub }, false)] } };
}

/** Istio's extractNameInNestedBrackets: `[a][b]` → [a, b]; `[a.b]` is one claim. */
function nestedClaims(rest: string): string[] | undefined {
  if (!/^(\[[^\[\]]+\])+$/.test(rest)) return undefined;
  return rest.slice(1, -1).split('][');
}

const orP = (list: RbacPermission[]): RbacPermission => ({ or_rules: { rules: list } });
const orI = (list: RbacPrincipal[]): RbacPrincipal => ({ or_ids: { ids: list } });

class PolicyTranslator {
  constructor(readonly resource: string) {}

  fail(path: string, reason: string): never {
    throw new MeshConfigError(KIND, this.resource, path, reason);
  }

  list(value: unknown, path: string): string[] | undefined {
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value)) this.fail(path, 'must be a list');
    if (value.length === 0) return undefined;
    return value as string[];
  }

  /** Validates a values list with one of the authorization-match compilers (reporting `[index, reason]`). */
  check(values: string[] | undefined, path: string, kind: 'string' | 'port' | 'ip'): string[] | undefined {
    if (values === undefined) return undefined;
    const problem = kind === 'port' ? compilePortList(values) : kind === 'ip' ? compileIpBlocks(values) : undefined;
    if (Array.isArray(problem)) this.fail(`${path}[${problem[0]}]`, problem[1]);
    if (kind === 'string') {
      values.forEach((v, i) => {
        const m = compileStringPattern(v);
        if (typeof m === 'string') this.fail(`${path}[${i}]`, m);
      });
    }
    return values;
  }

  /** values → or(…), notValues → not(or(…)), each appended to `out` (Istio's rule.permission / rule.principal). */
  field<T extends object>(out: T[], values: string[] | undefined, notValues: string[] | undefined, make: (v: string) => T[], or: (l: T[]) => T, not: (t: T) => T): void {
    if (values) out.push(or(values.flatMap(make)));
    if (notValues) out.push(not(or(notValues.flatMap(make))));
  }

  source(src: Record<string, unknown>, path: string): RbacPrincipal[] {
    for (const key of Object.keys(src)) {
      if (!SOURCE_FIELDS.has(key)) this.fail(`${path}.${key}`, 'unknown field');
    }
    const L = (k: string, kind: 'string' | 'ip' = 'string') => this.check(this.list(src[k], `${path}.${k}`), `${path}.${k}`, kind);
    const out: RbacPrincipal[] = [];
    const not = (p: RbacPrincipal): RbacPrincipal => ({ not_id: p });
    // Istio's order (insertFront, model.go): principals, namespaces, remoteIpBlocks, ipBlocks.
    this.field(out, L('principals'), L('notPrincipals'), (v) => [authenticated(stringMatcher(v, 'spiffe://'))], orI, not);
    // requestPrincipals: the whole list is one matcher (extended generator), ORed when several.
    this.field(out, L('requestPrincipals'), L('notRequestPrincipals'), (v) => [requestPrincipal(v)], orI, not);
    this.field(out, L('namespaces'), L('notNamespaces'), (v) => [namespacePrincipal(v)], orI, not);
    this.field(out, L('remoteIpBlocks', 'ip'), L('notRemoteIpBlocks', 'ip'), (v) => [{ remote_ip: cidr(v) }], orI, not);
    this.field(out, L('ipBlocks', 'ip'), L('notIpBlocks', 'ip'), (v) => [{ direct_remote_ip: cidr(v) }], orI, not);
    if (out.length === 0) this.fail(path, 'source must set at least one field');
    return out;
  }

  operation(op: Record<string, unknown>, path: string): RbacPermission[] {
    for (const key of Object.keys(op)) if (!OPERATION_FIELDS.has(key)) this.fail(`${path}.${key}`, 'unknown field');
    const L = (k: string, kind: 'string' | 'port' = 'string') => this.check(this.list(op[k], `${path}.${k}`), `${path}.${k}`, kind);
    const out: RbacPermission[] = [];
    const not = (p: RbacPermission): RbacPermission => ({ not_rule: p });
    // Istio's order: hosts, methods, paths, ports.
    this.field(out, L('hosts'), L('notHosts'), hostPermissions, orP, not);
    this.field(out, L('methods'), L('notMethods'), (v) => [{ header: headerMatcher(':method', v) }], orP, not);
    this.field(out, L('paths'), L('notPaths'), (v) => [{ url_path: { path: stringMatcher(v) } }], orP, not);
    this.field(out, L('ports', 'port'), L('notPorts', 'port'), (v) => [{ destination_port: Number(v) }], orP, not);
    if (out.length === 0) this.fail(path, 'operation must set at least one field');
    return out;
  }

  /** A `when` condition: a permission (destination.*, connection.sni) or a principal (the rest), as model.go sorts them. */
  condition(cond: { key?: unknown; values?: unknown; notValues?: unknown }, path: string, permissions: RbacPermission[], principals: RbacPrincipal[]): void {
    if (typeof cond?.key !== 'string' || cond.key.length === 0) this.fail(`${path}.key`, 'must be a non-empty string');
    const key = cond.key as string;
    const raw = this.list(cond.values, `${path}.values`);
    const rawNot = this.list(cond.notValues, `${path}.notValues`);
    if (!raw && !rawNot) this.fail(path, 'must set values or notValues');
    const V = (kind: 'string' | 'port' | 'ip') => [this.check(raw, `${path}.values`, kind), this.check(rawNot, `${path}.notValues`, kind)] as const;
    const notR = (p: RbacPermission): RbacPermission => ({ not_rule: p });
    const notI = (p: RbacPrincipal): RbacPrincipal => ({ not_id: p });
    const header = HEADER_KEY.exec(key);
    if (header) {
      const name = header[1]!.toLowerCase();
      const [v, n] = V('string');
      return this.field(principals, v, n, (x) => [{ header: headerMatcher(name, x) }], orI, notI);
    }
    if (key.startsWith('request.auth.claims')) {
      const claims = nestedClaims(key.slice('request.auth.claims'.length));
      if (claims === undefined) this.fail(`${path}.key`, `"${key}" must name a claim in brackets: request.auth.claims[name] or request.auth.claims[a][b]`);
      return this.extended(principals, raw, rawNot, path, (vs) => claimMetadata(claims, stringOr(vs), true));
    }
    switch (key) {
      case 'request.auth.principal': return this.extended(principals, raw, rawNot, path, (vs) => (vs.length === 1 ? requestPrincipal(vs[0]!) : orI(vs.map(requestPrincipal))));
      case 'request.auth.audiences': return this.extended(principals, raw, rawNot, path, (vs) => claimMetadata(['aud'], stringOr(vs), true));
      case 'request.auth.presenter': return this.extended(principals, raw, rawNot, path, (vs) => claimMetadata(['azp'], stringOr(vs), true));
      case 'source.ip': { const [v, n] = V('ip'); return this.field(principals, v, n, (x) => [{ direct_remote_ip: cidr(x) }], orI, notI); }
      case 'remote.ip': { const [v, n] = V('ip'); return this.field(principals, v, n, (x) => [{ remote_ip: cidr(x) }], orI, notI); }
      case 'source.namespace': { const [v, n] = V('string'); return this.field(principals, v, n, (x) => [namespacePrincipal(x)], orI, notI); }
      case 'source.principal': { const [v, n] = V('string'); return this.field(principals, v, n, (x) => [authenticated(stringMatcher(x, 'spiffe://'))], orI, notI); }
      case 'destination.ip': { const [v, n] = V('ip'); return this.field(permissions, v, n, (x) => [{ destination_ip: cidr(x) }], orP, notR); }
      case 'destination.port': { const [v, n] = V('port'); return this.field(permissions, v, n, (x) => [{ destination_port: Number(x) }], orP, notR); }
      case 'connection.sni': { const [v, n] = V('string'); return this.field(permissions, v, n, (x) => [{ requested_server_name: stringMatcher(x) }], orP, notR); }
      default:
        this.fail(`${path}.key`, `"${key}" is not a supported condition (request.headers[...], request.auth.principal, request.auth.audiences, request.auth.presenter, request.auth.claims[...], source.ip, remote.ip, source.namespace, source.principal, destination.ip, destination.port, connection.sni)`);
    }
  }

  /** Istio's appendLastExtended: values → one principal; notValues → not(one principal). */
  extended(principals: RbacPrincipal[], values: string[] | undefined, notValues: string[] | undefined, path: string, make: (vs: string[]) => RbacPrincipal): void {
    const v = this.check(values, `${path}.values`, 'string');
    const n = this.check(notValues, `${path}.notValues`, 'string');
    if (v) principals.push(make(v));
    if (n) principals.push({ not_id: make(n) });
  }

  rule(rule: unknown, path: string): RbacPolicy {
    if (typeof rule !== 'object' || rule === null) this.fail(path, 'must be an object');
    const r = rule as { from?: unknown; to?: unknown; when?: unknown };
    const whenPermissions: RbacPermission[] = [];
    const whenPrincipals: RbacPrincipal[] = [];
    (this.list(r.when, `${path}.when`) as unknown[] | undefined)?.forEach((w, i) => this.condition(w as { key?: unknown }, `${path}.when[${i}]`, whenPermissions, whenPrincipals));
    const from = this.list(r.from, `${path}.from`) as unknown[] | undefined;
    const to = this.list(r.to, `${path}.to`) as unknown[] | undefined;
    const principals = (from ?? [undefined]).map((f, i): RbacPrincipal => {
      let own: RbacPrincipal[] = [];
      if (from) {
        const src = (f as { source?: unknown } | null)?.source;
        if (typeof src !== 'object' || src === null) this.fail(`${path}.from[${i}].source`, 'must be set');
        own = this.source(src as Record<string, unknown>, `${path}.from[${i}].source`);
      }
      const ids = [...own, ...whenPrincipals];
      return { and_ids: { ids: ids.length === 0 ? [{ any: true }] : ids } };
    });
    const permissions = (to ?? [undefined]).map((t, i): RbacPermission => {
      let own: RbacPermission[] = [];
      if (to) {
        const op = (t as { operation?: unknown } | null)?.operation;
        if (typeof op !== 'object' || op === null) this.fail(`${path}.to[${i}].operation`, 'must be set');
        own = this.operation(op as Record<string, unknown>, `${path}.to[${i}].operation`);
      }
      const rules = [...own, ...whenPermissions];
      return { and_rules: { rules: rules.length === 0 ? [{ any: true }] : rules } };
    });
    return { permissions, principals };
  }
}

/**
 * Validates one AuthorizationPolicy and translates its rules.
 * @throws MeshConfigError naming the policy and the bad field.
 */
export function translateAuthorizationPolicy(resource: AuthorizationPolicyInput, options: { defaultNamespace?: string } = {}): TranslatedAuthorizationPolicy {
  const name = resource?.metadata?.name;
  const namespace = resource?.metadata?.namespace ?? options.defaultNamespace ?? 'default';
  const t = new PolicyTranslator(`${namespace}/${String(name)}`);
  if (typeof name !== 'string' || name.length === 0) t.fail('metadata.name', 'must be a non-empty string');
  const spec = (resource.spec ?? {}) as Record<string, unknown>;
  if (spec.targetRef !== undefined || spec.targetRefs !== undefined) t.fail('spec.targetRefs', 'targetRef(s) are not supported; use selector');
  if (spec.provider !== undefined) t.fail('spec.provider', 'CUSTOM providers are not supported');
  const action = (spec.action ?? 'ALLOW') as string;
  if (action !== 'ALLOW' && action !== 'DENY' && action !== 'AUDIT') t.fail('spec.action', `"${action}" is not supported (ALLOW, DENY, AUDIT)`);
  let matchLabels: Record<string, string> | undefined;
  if (spec.selector !== undefined) {
    const ml = (spec.selector as { matchLabels?: unknown } | null)?.matchLabels;
    if (ml !== undefined && (typeof ml !== 'object' || ml === null)) t.fail('spec.selector.matchLabels', 'must be a map of labels');
    matchLabels = ml && Object.keys(ml).length > 0 ? { ...(ml as Record<string, string>) } : undefined;
  }
  const dryRunValue = resource.metadata.annotations?.['istio.io/dry-run'];
  if (dryRunValue !== undefined && !/^(true|false|1|0|t|f|TRUE|FALSE|True|False)$/.test(String(dryRunValue))) {
    t.fail("metadata.annotations['istio.io/dry-run']", `"${String(dryRunValue)}" is not a boolean`);
  }
  const dryRun = dryRunValue !== undefined && /^(true|1|t|TRUE|True)$/.test(String(dryRunValue));
  const rules = t.list(spec.rules, 'spec.rules') as unknown[] | undefined;
  const policies: Record<string, RbacPolicy> = {};
  if (rules === undefined) policies[rbacPolicyName(namespace, name, 0)] = MATCH_NEVER;
  else rules.forEach((rule, i) => { policies[rbacPolicyName(namespace, name, i)] = t.rule(rule, `spec.rules[${i}]`); });
  return { namespace, name, action: action as TranslatedAuthorizationPolicy['action'], matchLabels, dryRun, policies };
}

/** Does a translated policy apply to a workload (its namespace or the root namespace, selector matching)? */
export function policySelects(p: TranslatedAuthorizationPolicy, workload: { namespace: string; labels?: Readonly<Record<string, string>> }, rootNamespace: string): boolean {
  if (p.namespace !== workload.namespace && p.namespace !== rootNamespace) return false;
  if (p.matchLabels === undefined) return true;
  const labels = workload.labels ?? {};
  for (const k in p.matchLabels) if (labels[k] !== p.matchLabels[k]) return false;
  return true;
}

/**
 * The RBAC HTTP filters for a workload's policies, in istiod's order (AUDIT,
 * DENY, ALLOW); none when no policy applies.
 */
export function rbacFilters(policies: readonly TranslatedAuthorizationPolicy[]): HttpFilter[] {
  const out: HttpFilter[] = [];
  const build = (action: 'AUDIT' | 'DENY' | 'ALLOW', name: string): void => {
    const selected = policies.filter((p) => p.action === action);
    if (selected.length === 0) return;
    const rbacAction: RbacRules['action'] = action === 'AUDIT' ? 'LOG' : action;
    const collect = (dry: boolean): RbacRules | undefined => {
      const chosen = selected.filter((p) => p.dryRun === dry);
      if (chosen.length === 0) return undefined;
      return { action: rbacAction, policies: Object.assign({}, ...chosen.map((p) => p.policies)) as Record<string, RbacPolicy> };
    };
    const rules = collect(false);
    const shadow = collect(true);
    const prefix = rbacAction === 'ALLOW' ? 'istio_dry_run_allow_' : rbacAction === 'DENY' ? 'istio_dry_run_deny_' : '';
    out.push({ name, typed_config: { '@type': RBAC_TYPE_URL, ...(rules && { rules }), ...(shadow && { shadow_rules: shadow, shadow_rules_stat_prefix: prefix }) } });
  };
  build('AUDIT', RBAC_AUDIT_FILTER);
  build('DENY', RBAC_DENY_FILTER);
  build('ALLOW', RBAC_ALLOW_FILTER);
  return out;
}

/**
 * Translates the AuthorizationPolicies among `resources` that select the
 * workload into RBAC filters (other kinds are skipped).
 * @throws MeshConfigError for an invalid policy.
 */
export function translateAuthorization(resources: readonly AuthorizationPolicyInput[], workload: { namespace: string; labels?: Readonly<Record<string, string>> }, rootNamespace = 'istio-system'): HttpFilter[] {
  const translated = resources.filter((r) => r?.kind === KIND).map((r) => translateAuthorizationPolicy(r));
  return rbacFilters(translated.filter((p) => policySelects(p, workload, rootNamespace)));
}
