/**
 * Envoy's RBAC HTTP filter (`envoy.extensions.filters.http.rbac.v3.RBAC`),
 * compiled into plain predicates once per snapshot: a Policy matches when any
 * of its permissions and any of its principals match (rbac.proto). The
 * action decides what a match means — ALLOW: a request no policy matches is
 * denied; DENY: a request a policy matches is denied; LOG: never denies, the
 * match is reported. `shadow_rules` are evaluated and reported, never enforced.
 *
 * The matchers are the ones Istio's authz builder emits (any, header,
 * url_path, destination_ip/port, requested_server_name, metadata, and/or/not;
 * principals any, authenticated, direct_remote_ip, remote_ip, source_ip,
 * header, metadata, and/or/not). Anything else is refused with the field
 * path, never skipped. Protocol-neutral: the adapter supplies an
 * {@link RbacRequest}.
 */
import { BlockList, isIP } from 'node:net';
import type { HeaderMatcher, MetadataMatcher, StringMatcher, ValueMatcher } from '../config/envoy.js';
import { MeshConfigError } from '../errors.js';
import { compileHeader, compileMetadataMatcher, compileStringMatcher, headersMatch, type StringTest } from './router.js';

/** The Envoy type URL of the RBAC HTTP filter config. */
export const RBAC_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
/** Its per-route override (`typed_per_filter_config`): `{ rbac }`, no rbac disabling the filter on the route. */
export const RBAC_PER_ROUTE_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute';

/** Envoy `config.core.v3.CidrRange` (prefix_len is a UInt32Value on the wire). */
export interface CidrRange { address_prefix: string; prefix_len?: { value: number } | number }

export type { MetadataMatcher, ValueMatcher };

/** Envoy `config.rbac.v3.Permission`. */
export interface RbacPermission {
  any?: boolean;
  and_rules?: { rules: RbacPermission[] };
  or_rules?: { rules: RbacPermission[] };
  not_rule?: RbacPermission;
  header?: HeaderMatcher;
  url_path?: { path: StringMatcher };
  destination_ip?: CidrRange;
  destination_port?: number;
  requested_server_name?: StringMatcher;
  metadata?: MetadataMatcher;
}

/** Envoy `config.rbac.v3.Principal`. */
export interface RbacPrincipal {
  any?: boolean;
  and_ids?: { ids: RbacPrincipal[] };
  or_ids?: { ids: RbacPrincipal[] };
  not_id?: RbacPrincipal;
  authenticated?: { principal_name?: StringMatcher };
  source_ip?: CidrRange;
  direct_remote_ip?: CidrRange;
  remote_ip?: CidrRange;
  header?: HeaderMatcher;
  metadata?: MetadataMatcher;
}

/** Envoy `config.rbac.v3.Policy`. */
export interface RbacPolicy { permissions: RbacPermission[]; principals: RbacPrincipal[] }

/** Envoy `config.rbac.v3.RBAC`. The action is ALLOW when absent (proto3 default). */
export interface RbacRules { action?: 'ALLOW' | 'DENY' | 'LOG'; policies?: Record<string, RbacPolicy> }

/** Envoy `extensions.filters.http.rbac.v3.RBAC`. */
export interface RbacFilterConfig { rules?: RbacRules; shadow_rules?: RbacRules; shadow_rules_stat_prefix?: string }

/** What an inbound request's connection tells the filters (RBAC's connection properties). */
export interface InboundConnectionView {
  /** The peer certificate's URI SAN (`spiffe://…`) when the connection is mutual TLS. */
  readonly sourcePrincipal: string | undefined;
  /** The connection's peer address (direct_remote_ip, source_ip). */
  readonly sourceIp: string | undefined;
  /** The original client per X-Forwarded-For (remote_ip), when the adapter knows it; else sourceIp is used. */
  readonly remoteIp?: string | undefined;
  /** The local address and port the request arrived on (destination_ip / destination_port). */
  readonly destinationIp?: string | undefined;
  readonly destinationPort?: number | undefined;
  /** The TLS SNI the client sent (requested_server_name). */
  readonly requestedServerName?: string | undefined;
}

/** What the RBAC engine reads from a request; the inbound adapters build one per request. */
export interface RbacRequest extends InboundConnectionView {
  /** A header by lower-case name; `:method`, `:path`, `:authority` included. */
  header(name: string): string | undefined;
  /** Path without the query string (url_path matches it). */
  readonly path: string;
  /** Dynamic metadata (`filter` namespace, key path): jwt_authn's verified payload under `envoy.filters.http.jwt_authn`. */
  dynamicMetadata?(filter: string, path: readonly string[]): unknown;
}

type Test = (r: RbacRequest) => boolean;

/** One compiled RBAC rule set: policies sorted by name, as Envoy keeps them. */
export interface CompiledRbacRules {
  readonly action: 'ALLOW' | 'DENY' | 'LOG';
  readonly policies: ReadonlyArray<{ readonly name: string; readonly test: Test }>;
}

/** A compiled RBAC filter config. */
export interface CompiledRbac {
  readonly rules: CompiledRbacRules | undefined;
  readonly shadow: CompiledRbacRules | undefined;
}

/** The first policy (by name) of `rules` that matches, or undefined. */
export function matchingPolicy(rules: CompiledRbacRules, request: RbacRequest): string | undefined {
  const policies = rules.policies;
  for (let i = 0; i < policies.length; i++) if (policies[i]!.test(request)) return policies[i]!.name;
  return undefined;
}

/**
 * Envoy's decision for `rules`: `undefined` lets the request through; a
 * string is the deny's matched policy (`none` when ALLOW matched nothing).
 */
export function rbacDenies(rules: CompiledRbacRules, request: RbacRequest): string | undefined {
  if (rules.action === 'LOG') return undefined;
  const matched = matchingPolicy(rules, request);
  if (rules.action === 'DENY') return matched;
  return matched === undefined ? 'none' : undefined;
}

class RbacCompiler {
  constructor(private readonly resource: string) {}

  fail(path: string, reason: string): never {
    throw new MeshConfigError('Listener', this.resource, path, reason);
  }

  rules(r: RbacRules | undefined, path: string): CompiledRbacRules | undefined {
    if (r === undefined || r === null) return undefined;
    const action = (r.action ?? 'ALLOW') as string;
    if (action !== 'ALLOW' && action !== 'DENY' && action !== 'LOG') this.fail(`${path}.action`, `"${action}" is not an RBAC action (ALLOW, DENY, LOG)`);
    const names = Object.keys(r.policies ?? {}).sort();
    const policies = names.map((name) => ({ name, test: this.policy(r.policies![name]!, `${path}.policies['${name}']`) }));
    return { action, policies };
  }

  policy(p: RbacPolicy, path: string): Test {
    // A CEL condition narrows a policy: evaluating without it would widen ALLOW and DENY alike.
    for (const key of ['condition', 'checked_condition'] as const) {
      if ((p as unknown as Record<string, unknown>)?.[key] !== undefined) this.fail(`${path}.${key}`, 'CEL conditions are not supported');
    }
    if (!Array.isArray(p?.permissions) || p.permissions.length === 0) this.fail(`${path}.permissions`, 'must list at least one permission');
    if (!Array.isArray(p.principals) || p.principals.length === 0) this.fail(`${path}.principals`, 'must list at least one principal');
    const permission = any(p.permissions.map((x, i) => this.permission(x, `${path}.permissions[${i}]`)));
    const principal = any(p.principals.map((x, i) => this.principal(x, `${path}.principals[${i}]`)));
    return (r) => permission(r) && principal(r);
  }

  permission(p: RbacPermission, path: string): Test {
    if (p?.any === true) return () => true;
    if (p.and_rules) return all((p.and_rules.rules ?? []).map((x, i) => this.permission(x, `${path}.and_rules.rules[${i}]`)));
    if (p.or_rules) return any((p.or_rules.rules ?? []).map((x, i) => this.permission(x, `${path}.or_rules.rules[${i}]`)));
    if (p.not_rule) {
      const inner = this.permission(p.not_rule, `${path}.not_rule`);
      return (r) => !inner(r);
    }
    if (p.header) return this.header(p.header, `${path}.header`);
    if (p.url_path) {
      const test = this.string(p.url_path.path, `${path}.url_path.path`);
      return (r) => test(r.path);
    }
    if (p.destination_ip) {
      const test = this.cidr(p.destination_ip, `${path}.destination_ip`);
      return (r) => test(r.destinationIp);
    }
    if (p.destination_port !== undefined) {
      const port = Number(p.destination_port);
      return (r) => r.destinationPort === port;
    }
    if (p.requested_server_name) {
      const test = this.string(p.requested_server_name, `${path}.requested_server_name`);
      return (r) => test(r.requestedServerName ?? '');
    }
    if (p.metadata) return this.metadata(p.metadata, `${path}.metadata`);
    return this.fail(path, `permission ${describe(p)} is not supported`);
  }

  principal(p: RbacPrincipal, path: string): Test {
    if (p?.any === true) return () => true;
    if (p.and_ids) return all((p.and_ids.ids ?? []).map((x, i) => this.principal(x, `${path}.and_ids.ids[${i}]`)));
    if (p.or_ids) return any((p.or_ids.ids ?? []).map((x, i) => this.principal(x, `${path}.or_ids.ids[${i}]`)));
    if (p.not_id) {
      const inner = this.principal(p.not_id, `${path}.not_id`);
      return (r) => !inner(r);
    }
    if (p.authenticated) {
      // Envoy: no peer certificate never matches; without principal_name any authenticated peer does.
      const name = p.authenticated.principal_name;
      if (name === undefined || name === null) return (r) => r.sourcePrincipal !== undefined;
      const test = this.string(name, `${path}.authenticated.principal_name`);
      return (r) => r.sourcePrincipal !== undefined && test(r.sourcePrincipal);
    }
    if (p.direct_remote_ip || p.source_ip) {
      const test = this.cidr((p.direct_remote_ip ?? p.source_ip)!, `${path}.${p.direct_remote_ip ? 'direct_remote_ip' : 'source_ip'}`);
      return (r) => test(r.sourceIp);
    }
    if (p.remote_ip) {
      const test = this.cidr(p.remote_ip, `${path}.remote_ip`);
      return (r) => test(r.remoteIp ?? r.sourceIp);
    }
    if (p.header) return this.header(p.header, `${path}.header`);
    if (p.metadata) return this.metadata(p.metadata, `${path}.metadata`);
    return this.fail(path, `principal ${describe(p)} is not supported`);
  }

  header(h: HeaderMatcher, path: string): Test {
    if (typeof h?.name !== 'string' || h.name.length === 0) this.fail(`${path}.name`, 'must be a header name');
    const legacy = h as HeaderMatcher & { exact_match?: string; prefix_match?: string; suffix_match?: string; safe_regex_match?: { regex: string } };
    const string_match = h.string_match ?? (legacy.exact_match !== undefined ? { exact: legacy.exact_match }
      : legacy.prefix_match !== undefined ? { prefix: legacy.prefix_match }
        : legacy.suffix_match !== undefined ? { suffix: legacy.suffix_match }
          : legacy.safe_regex_match !== undefined ? { safe_regex: legacy.safe_regex_match } : undefined);
    const compiled = [this.guard(() => compileHeader({ ...h, ...(string_match && { string_match }) }, path))];
    return (r) => headersMatch(compiled, (name) => r.header(name));
  }

  string(m: StringMatcher | undefined, path: string): StringTest {
    if (m === undefined || m === null || typeof m !== 'object') this.fail(path, 'must be a string matcher');
    return this.guard(() => compileStringMatcher(m, path));
  }

  metadata(m: MetadataMatcher, path: string): Test {
    return this.guard(() => compileMetadataMatcher(m, path));
  }

  cidr(c: CidrRange, path: string): (ip: string | undefined) => boolean {
    const address = c?.address_prefix;
    const family = typeof address === 'string' ? isIP(address) : 0;
    if (family === 0) this.fail(`${path}.address_prefix`, `"${String(address)}" is not an IP address`);
    const raw = c.prefix_len;
    const bits = raw === undefined ? 0 : typeof raw === 'number' ? raw : Number(raw.value ?? 0);
    if (!(Number.isInteger(bits) && bits >= 0 && bits <= (family === 4 ? 32 : 128))) this.fail(`${path}.prefix_len`, `${String(bits)} is not a prefix length`);
    const list = new BlockList();
    list.addSubnet(address, bits, family === 4 ? 'ipv4' : 'ipv6');
    return (ip) => {
      if (ip === undefined) return false;
      // Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d.
      const v = ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
      const f = isIP(v);
      return f !== 0 && list.check(v, f === 4 ? 'ipv4' : 'ipv6');
    };
  }

  /** Runs a matcher compiler from core/router, turning its `path: reason` errors into MeshConfigError. */
  guard<T>(make: () => T): T {
    try {
      return make();
    } catch (err) {
      const message = (err as Error).message;
      const colon = message.indexOf(': ');
      return this.fail(colon > 0 ? message.slice(0, colon) : 'rules', colon > 0 ? message.slice(colon + 2) : message);
    }
  }
}

function describe(value: object): string {
  const keys = Object.keys(value ?? {}).filter((k) => k !== 'rule' && k !== 'identifier');
  return keys.length === 0 ? '(empty)' : keys.join(', ');
}

const all = (tests: Test[]): Test => {
  if (tests.length === 1) return tests[0]!;
  return (r) => {
    for (let i = 0; i < tests.length; i++) if (!tests[i]!(r)) return false;
    return true;
  };
};
const any = (tests: Test[]): Test => {
  if (tests.length === 1) return tests[0]!;
  return (r) => {
    for (let i = 0; i < tests.length; i++) if (tests[i]!(r)) return true;
    return false;
  };
};

/**
 * Compiles an RBAC filter config (rules and shadow_rules).
 * @param resource the listener (and filter) named in a MeshConfigError
 * @param path the config's field path in errors
 * @throws MeshConfigError on a matcher meshlet cannot evaluate, a bad regex, CIDR or action.
 */
export function compileRbac(config: RbacFilterConfig | undefined, resource: string, path = 'typed_config'): CompiledRbac {
  const c = new RbacCompiler(resource);
  // The unified matcher API replaces `rules`: reading only `rules` would enforce nothing.
  for (const key of ['matcher', 'shadow_matcher'] as const) {
    if ((config as Record<string, unknown> | undefined)?.[key] !== undefined) c.fail(`${path}.${key}`, 'the RBAC matcher API is not supported; use rules');
  }
  return { rules: c.rules(config?.rules, `${path}.rules`), shadow: c.rules(config?.shadow_rules, `${path}.shadow_rules`) };
}
