/**
 * Istio AuthorizationPolicy (security.istio.io/v1) compiled into an
 * evaluator. Semantics follow Istio's docs:
 *  - DENY policies are checked first; any match denies.
 *  - No ALLOW policy selects the workload → allow.
 *  - ALLOW policies exist → allow only if one matches.
 *  - A policy without rules (`spec: {}`) matches nothing, so as ALLOW it
 *    denies everything (allow-nothing); `rules: [{}]` matches everything.
 *  - AUDIT policies never change the decision; matches are reported.
 * Inside a rule, `from`, `to` and `when` are ANDed; entries of `from`/`to`
 * are ORed; fields in one source/operation are ANDed; values in a field are
 * ORed and `not*` values exclude.
 */
import { MeshConfigError } from '../errors.js';
import { type StringMatcher, compileIpBlocks, compilePortList, compileStringList } from './authorization-match.js';

/** The request facts a policy can look at; built once per request by the adapter. */
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
  /** The peer's namespace; derived from the principal when absent. */
  sourceNamespace?: string;
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
  metadata: { name: string; namespace?: string };
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

type Pred = (r: RequestAttributes) => boolean;

const KIND = 'AuthorizationPolicy';

/** Options for {@link compileAuthorizationPolicies}. */
export interface AuthorizationOptions {
  /** Policies here apply mesh-wide (Istio's root namespace, default `istio-system`). */
  rootNamespace?: string;
  /** Namespace assumed for policies without one (default `default`). */
  defaultNamespace?: string;
}

interface CompiledPolicy {
  readonly id: string;
  readonly namespace: string;
  readonly action: 'ALLOW' | 'DENY' | 'AUDIT';
  readonly matchLabels: Readonly<Record<string, string>> | undefined;
  readonly rules: readonly Pred[];
  readonly decision: AuthorizationDecision;
}

function namespaceFromPrincipal(principal: string | undefined): string | undefined {
  if (!principal) return undefined;
  const i = principal.indexOf('/ns/');
  if (i < 0) return undefined;
  const end = principal.indexOf('/', i + 4);
  return principal.slice(i + 4, end < 0 ? undefined : end);
}

const sourceNamespace = (r: RequestAttributes): string | undefined => r.sourceNamespace ?? namespaceFromPrincipal(r.sourcePrincipal);

/** Istio principals omit the scheme; requests carry full SPIFFE URIs. */
function principalPatterns(values: readonly unknown[]): unknown[] {
  return values.map((v) => (typeof v === 'string' && !v.startsWith('*') ? `spiffe://${v}` : v));
}

function hostOf(r: RequestAttributes): string | undefined {
  return r.host;
}

/** Host patterns also match a request host that carries a port. */
function hostMatcher(m: StringMatcher): StringMatcher {
  return (host) => {
    if (m(host)) return true;
    if (host === undefined) return false;
    const colon = host.lastIndexOf(':');
    return colon > 0 && !host.endsWith(']') && m(host.slice(0, colon));
  };
}

function pathOf(r: RequestAttributes): string {
  const q = r.path.indexOf('?');
  return q < 0 ? r.path : r.path.slice(0, q);
}

class Compiler {
  constructor(readonly resource: string) {}

  fail(path: string, reason: string): never {
    throw new MeshConfigError(KIND, this.resource, path, reason);
  }

  list(value: unknown, path: string): unknown[] | undefined {
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value)) this.fail(path, 'must be a list');
    if (value.length === 0) return undefined;
    return value;
  }

  /** values/notValues pair on one attribute → predicate, or undefined when neither is set. */
  field<T>(
    values: unknown[] | undefined, notValues: unknown[] | undefined, path: string, notPath: string,
    compile: (list: unknown[]) => ((v: T | undefined) => boolean) | [number, string], get: (r: RequestAttributes) => T | undefined,
  ): Pred | undefined {
    const pos = values && this.check(compile(values), path);
    const neg = notValues && this.check(compile(notValues), notPath);
    if (pos && neg) return (r) => { const v = get(r); return pos(v) && !neg(v); };
    if (pos) return (r) => pos(get(r));
    if (neg) return (r) => !neg(get(r));
    return undefined;
  }

  check<M>(m: M | [number, string], path: string): M {
    if (Array.isArray(m)) this.fail(`${path}[${m[0]}]`, m[1]);
    return m;
  }
}

const and = (preds: Pred[]): Pred => {
  if (preds.length === 0) return () => true;
  if (preds.length === 1) return preds[0]!;
  return (r) => {
    for (const p of preds) if (!p(r)) return false;
    return true;
  };
};
const or = (preds: Pred[]): Pred => {
  if (preds.length === 1) return preds[0]!;
  return (r) => {
    for (const p of preds) if (p(r)) return true;
    return false;
  };
};

const strings = (opts: { ignoreCase?: boolean } = {}) => (l: unknown[]) => compileStringList(l, opts);

const SOURCE_FIELDS = new Set(['principals', 'notPrincipals', 'namespaces', 'notNamespaces', 'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks', 'requestPrincipals', 'notRequestPrincipals']);
const OPERATION_FIELDS = new Set(['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths']);

function compileSource(c: Compiler, source: Record<string, unknown>, path: string): Pred {
  for (const key of Object.keys(source)) {
    if (!SOURCE_FIELDS.has(key)) c.fail(`${path}.${key}`, 'unknown field');
    if (key === 'requestPrincipals' || key === 'notRequestPrincipals') c.fail(`${path}.${key}`, 'request principals (JWT) are not supported by meshlet yet');
  }
  const L = (k: string) => c.list(source[k], `${path}.${k}`);
  const preds = [
    c.field(L('principals') && principalPatterns(L('principals')!), L('notPrincipals') && principalPatterns(L('notPrincipals')!), `${path}.principals`, `${path}.notPrincipals`, strings(), (r) => r.sourcePrincipal),
    c.field(L('namespaces'), L('notNamespaces'), `${path}.namespaces`, `${path}.notNamespaces`, strings(), sourceNamespace),
    c.field(L('ipBlocks'), L('notIpBlocks'), `${path}.ipBlocks`, `${path}.notIpBlocks`, compileIpBlocks, (r) => r.sourceIp),
    c.field(L('remoteIpBlocks'), L('notRemoteIpBlocks'), `${path}.remoteIpBlocks`, `${path}.notRemoteIpBlocks`, compileIpBlocks, (r) => r.remoteIp ?? r.sourceIp),
  ].filter((p): p is Pred => p !== undefined);
  if (preds.length === 0) c.fail(path, 'source must set at least one field');
  return and(preds);
}

function compileOperation(c: Compiler, op: Record<string, unknown>, path: string): Pred {
  for (const key of Object.keys(op)) if (!OPERATION_FIELDS.has(key)) c.fail(`${path}.${key}`, 'unknown field');
  const L = (k: string) => c.list(op[k], `${path}.${k}`);
  const hosts = (l: unknown[]) => {
    const m = compileStringList(l, { ignoreCase: true });
    return Array.isArray(m) ? m : hostMatcher(m);
  };
  const preds = [
    c.field(L('hosts'), L('notHosts'), `${path}.hosts`, `${path}.notHosts`, hosts, hostOf),
    c.field(L('ports'), L('notPorts'), `${path}.ports`, `${path}.notPorts`, compilePortList, (r) => r.port),
    c.field(L('methods'), L('notMethods'), `${path}.methods`, `${path}.notMethods`, strings(), (r) => r.method),
    c.field(L('paths'), L('notPaths'), `${path}.paths`, `${path}.notPaths`, strings(), pathOf),
  ].filter((p): p is Pred => p !== undefined);
  if (preds.length === 0) c.fail(path, 'operation must set at least one field');
  return and(preds);
}

const HEADER_KEY = /^request\.headers\[([^\]]+)\]$/;

function compileCondition(c: Compiler, cond: { key?: unknown; values?: unknown; notValues?: unknown }, path: string): Pred {
  if (typeof cond?.key !== 'string' || cond.key.length === 0) c.fail(`${path}.key`, 'must be a non-empty string');
  const key = cond.key as string;
  const values = c.list(cond.values, `${path}.values`);
  const notValues = c.list(cond.notValues, `${path}.notValues`);
  if (!values && !notValues) c.fail(path, 'must set values or notValues');
  const vp = `${path}.values`;
  const np = `${path}.notValues`;
  const header = HEADER_KEY.exec(key);
  let pred: Pred | undefined;
  if (header) {
    const name = header[1]!.toLowerCase();
    pred = c.field(values, notValues, vp, np, strings(), (r) => r.header?.(name));
  } else {
    switch (key) {
      case 'source.ip': pred = c.field(values, notValues, vp, np, compileIpBlocks, (r) => r.sourceIp); break;
      case 'remote.ip': pred = c.field(values, notValues, vp, np, compileIpBlocks, (r) => r.remoteIp ?? r.sourceIp); break;
      case 'destination.ip': pred = c.field(values, notValues, vp, np, compileIpBlocks, (r) => r.destinationIp); break;
      case 'destination.port': pred = c.field(values, notValues, vp, np, compilePortList, (r) => r.port); break;
      case 'source.namespace': pred = c.field(values, notValues, vp, np, strings(), sourceNamespace); break;
      case 'source.principal':
        pred = c.field(values && principalPatterns(values), notValues && principalPatterns(notValues), vp, np, strings(), (r) => r.sourcePrincipal);
        break;
      case 'connection.sni': pred = c.field(values, notValues, vp, np, strings(), (r) => r.sni); break;
      default:
        c.fail(`${path}.key`, `"${key}" is not a supported condition (request.headers[...], source.ip, remote.ip, source.namespace, source.principal, destination.ip, destination.port, connection.sni)`);
    }
  }
  return pred!;
}

function compileRule(c: Compiler, rule: unknown, path: string): Pred {
  if (typeof rule !== 'object' || rule === null) c.fail(path, 'must be an object');
  const r = rule as { from?: unknown; to?: unknown; when?: unknown };
  const parts: Pred[] = [];
  const from = c.list(r.from, `${path}.from`);
  if (from) {
    parts.push(or(from.map((f, i) => {
      const src = (f as { source?: unknown } | null)?.source;
      if (typeof src !== 'object' || src === null) c.fail(`${path}.from[${i}].source`, 'must be set');
      return compileSource(c, src as Record<string, unknown>, `${path}.from[${i}].source`);
    })));
  }
  const to = c.list(r.to, `${path}.to`);
  if (to) {
    parts.push(or(to.map((t, i) => {
      const op = (t as { operation?: unknown } | null)?.operation;
      if (typeof op !== 'object' || op === null) c.fail(`${path}.to[${i}].operation`, 'must be set');
      return compileOperation(c, op as Record<string, unknown>, `${path}.to[${i}].operation`);
    })));
  }
  const when = c.list(r.when, `${path}.when`);
  if (when) parts.push(and(when.map((w, i) => compileCondition(c, w as { key?: unknown }, `${path}.when[${i}]`))));
  return and(parts);
}

function compilePolicy(resource: AuthorizationPolicyResource, options: Required<AuthorizationOptions>): CompiledPolicy {
  const name = resource?.metadata?.name;
  const namespace = resource?.metadata?.namespace ?? options.defaultNamespace;
  const id = `${namespace}/${String(name)}`;
  const c = new Compiler(id);
  if (typeof name !== 'string' || name.length === 0) c.fail('metadata.name', 'must be a non-empty string');
  const spec = (resource.spec ?? {}) as AuthorizationPolicySpec & Record<string, unknown>;
  if (spec.targetRef !== undefined || spec.targetRefs !== undefined) c.fail('spec.targetRefs', 'targetRef(s) are not supported; use selector');
  if (spec.provider !== undefined) c.fail('spec.provider', 'CUSTOM providers are not supported');
  const action = spec.action ?? 'ALLOW';
  if (action !== 'ALLOW' && action !== 'DENY' && action !== 'AUDIT') c.fail('spec.action', `"${String(action)}" is not supported (ALLOW, DENY, AUDIT)`);
  let matchLabels: Record<string, string> | undefined;
  if (spec.selector !== undefined) {
    const ml = spec.selector?.matchLabels;
    if (ml !== undefined && (typeof ml !== 'object' || ml === null)) c.fail('spec.selector.matchLabels', 'must be a map of labels');
    matchLabels = ml && Object.keys(ml).length > 0 ? { ...ml } : undefined;
  }
  const rules = (c.list(spec.rules, 'spec.rules') ?? []).map((rule, i) => compileRule(c, rule, `spec.rules[${i}]`));
  const decision: AuthorizationDecision = Object.freeze(action === 'DENY'
    ? { allowed: false, policy: id, reason: `denied by DENY policy ${id}` }
    : { allowed: true, policy: id, reason: `allowed by ALLOW policy ${id}` });
  return { id, namespace, action: action as CompiledPolicy['action'], matchLabels, rules, decision };
}

const ALLOW_NO_POLICY: AuthorizationDecision = Object.freeze({ allowed: true, reason: 'no ALLOW policy applies to the workload' });
const DENY_NO_MATCH: AuthorizationDecision = Object.freeze({ allowed: false, reason: 'no ALLOW policy matched' });

/** The evaluator for one workload: only the policies that select it, in Istio's order. */
export class AuthorizationEvaluator {
  readonly #deny: readonly CompiledPolicy[];
  readonly #allow: readonly CompiledPolicy[];
  readonly #audit: readonly CompiledPolicy[];

  /** @internal built by {@link AuthorizationPolicies.forWorkload}. */
  constructor(policies: readonly CompiledPolicy[]) {
    this.#deny = policies.filter((p) => p.action === 'DENY');
    this.#allow = policies.filter((p) => p.action === 'ALLOW');
    this.#audit = policies.filter((p) => p.action === 'AUDIT');
  }

  /** True when no policy applies (callers may skip building attributes). */
  get empty(): boolean {
    return this.#deny.length === 0 && this.#allow.length === 0 && this.#audit.length === 0;
  }

  /** Decides one request. Allocates only when an AUDIT policy matches. */
  evaluate(request: RequestAttributes): AuthorizationDecision {
    const decision = this.#decide(request);
    if (this.#audit.length === 0) return decision;
    let audit: string[] | undefined;
    for (const p of this.#audit) if (matches(p, request)) (audit ??= []).push(p.id);
    return audit ? { ...decision, audit } : decision;
  }

  #decide(request: RequestAttributes): AuthorizationDecision {
    for (const p of this.#deny) if (matches(p, request)) return p.decision;
    if (this.#allow.length === 0) return ALLOW_NO_POLICY;
    for (const p of this.#allow) if (matches(p, request)) return p.decision;
    return DENY_NO_MATCH;
  }
}

function matches(policy: CompiledPolicy, request: RequestAttributes): boolean {
  for (const rule of policy.rules) if (rule(request)) return true;
  return false;
}

/** A validated set of policies; pick the evaluator for a workload once, evaluate per request. */
export class AuthorizationPolicies {
  readonly #policies: readonly CompiledPolicy[];
  readonly #rootNamespace: string;

  /** @internal use {@link compileAuthorizationPolicies}. */
  constructor(policies: readonly CompiledPolicy[], rootNamespace: string) {
    this.#policies = policies;
    this.#rootNamespace = rootNamespace;
  }

  /** Number of compiled policies. */
  get size(): number {
    return this.#policies.length;
  }

  /** The policies that apply to a workload: its namespace's and the root namespace's, filtered by selector. */
  forWorkload(workload: { namespace: string; labels?: Readonly<Record<string, string>> }): AuthorizationEvaluator {
    const labels = workload.labels ?? {};
    return new AuthorizationEvaluator(this.#policies.filter((p) => {
      if (p.namespace !== workload.namespace && p.namespace !== this.#rootNamespace) return false;
      if (!p.matchLabels) return true;
      for (const [k, v] of Object.entries(p.matchLabels)) if (labels[k] !== v) return false;
      return true;
    }));
  }
}

/**
 * Validates and compiles AuthorizationPolicy resources; other kinds in the
 * list are ignored, so a whole config can be passed.
 * @throws MeshConfigError naming the policy and the bad field; nothing is half-compiled.
 */
export function compileAuthorizationPolicies(resources: readonly AuthorizationPolicyResource[], options: AuthorizationOptions = {}): AuthorizationPolicies {
  const opts: Required<AuthorizationOptions> = { rootNamespace: options.rootNamespace ?? 'istio-system', defaultNamespace: options.defaultNamespace ?? 'default' };
  const compiled = resources.filter((r) => r.kind === undefined || r.kind === KIND).map((r) => compilePolicy(r, opts));
  return new AuthorizationPolicies(compiled, opts.rootNamespace);
}
