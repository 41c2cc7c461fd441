/**
 * Reads a validated resource against the support table (support.ts) and
 * returns a warning for every field it sets that meshlet does not apply, so
 * a resource is `partial` with the reason instead of silently half-applied.
 * Also the warning codes (stable: users filter on them) and the schema walk
 * the support test and the docs generator share.
 */
import { kinds } from './istio-schemas.js';
import type { IstioResource, ServiceEntrySpec } from './istio-types.js';
import { isAddressRange } from './registry.js';
import { isPlainObject, type Schema } from './schema.js';
import { SUPPORT, type FieldSupport } from './support.js';

/** One warning about a resource (DESIGN.md §3 `configStatus()`). */
export interface ConfigWarning {
  /** JSON path of the field, e.g. `spec.http[0].corsPolicy`; `''` for the whole resource. */
  readonly path: string;
  /** A stable code from {@link WARNING_CODES}. */
  readonly code: WarningCode;
  readonly message: string;
}

/**
 * meshlet's warning and rejection codes. Stable: documented in
 * docs/configuration.md and docs/istio-compatibility.md.
 */
export const WARNING_CODES = {
  MESHLET_UNSUPPORTED_FIELD: 'The field is accepted (existing YAML loads) but meshlet does not apply it.',
  MESHLET_UNSUPPORTED_VALUE: 'The field is applied, but not this value: meshlet behaves as the message says.',
  MESHLET_UNSUPPORTED_PATCH: 'An EnvoyFilter patch that is not one of the rate-limit recipes meshlet applies; it changes nothing.',
  MESHLET_NO_EFFECT: 'The resource is valid but does nothing where it is loaded (e.g. a WorkloadGroup in embedded mode).',
  MESHLET_INVALID: 'Rejected: the resource failed validation (the MeshConfigError\'s path and reason).',
  MESHLET_REFUSED: 'Rejected: valid Istio, but it uses something meshlet refuses rather than ignore (a support-table entry marked refused).',
  MESHLET_UNSUPPORTED_KIND: 'Rejected: a kind of an API group meshlet reads that it does not know (a typo, or a kind newer than meshlet).',
  MESHLET_DUPLICATE: 'Rejected: another resource with the same kind, namespace and name came first.',
  MESHLET_ROUTE_NOT_ACCEPTED: 'A Gateway API route is not attached to one of its parents (Accepted=False, with the Gateway API reason, e.g. BackendNotFound, NotAllowedByListeners).',
  MESHLET_ROUTE_UNRESOLVED_REFS: 'A Gateway API route names a backend that does not resolve (ResolvedRefs=False: BackendNotFound, InvalidKind, RefNotPermitted); its share of requests gets 500.',
  MESHLET_TRANSLATION_FAILED: 'Rejected: the resource validated but could not be translated to Envoy config; it was left out and the rest is served.',
} as const;

/** A meshlet warning code. */
export type WarningCode = keyof typeof WARNING_CODES;

/** Where the config is loaded: some kinds act in one place only. */
export type LoadContext = 'embedded' | 'control-plane' | 'analyze';

/** The warnings of a validated resource: unsupported fields and values, patches meshlet skips. */
export function supportWarnings(resource: IstioResource, context: LoadContext): ConfigWarning[] {
  const out: ConfigWarning[] = [];
  const kind = SUPPORT[resource.kind];
  const def = kinds[resource.kind];
  if (!kind || !def) return out;
  if (context === 'embedded' && kind.embeddedNoEffect) out.push({ path: '', code: 'MESHLET_NO_EFFECT', message: kind.embeddedNoEffect });
  const tree = supportTree(kind.fields, def.spec);
  if (tree) walk(tree, resource.spec, [], out);
  contextualChecks[resource.kind]?.(resource.spec as never, out);
  return out;
}

/**
 * The support table laid over one kind's schema: a node per schema position
 * with its table entry and pattern, built once per kind, and only where some
 * entry below can warn — a walk skips subtrees nothing in the table can flag
 * (a ServiceEntry's 20,000 endpoints are not visited field by field).
 */
interface SupportNode {
  readonly entry: FieldSupport | undefined;
  readonly schema: Schema;
  /** object: the fields worth visiting; list/map: the item's node (undefined: nothing below can warn). */
  readonly fields?: ReadonlyMap<string, SupportNode>;
  readonly item?: SupportNode;
}

const supportTrees = new WeakMap<Readonly<Record<string, FieldSupport>>, SupportNode | null>();

function supportTree(fields: Readonly<Record<string, FieldSupport>>, schema: Schema): SupportNode | undefined {
  let tree = supportTrees.get(fields);
  if (tree === undefined) {
    const flagging = Object.keys(fields).filter((p) => fields[p]!.status === 'unsupported' || fields[p]!.unsupportedValues !== undefined);
    tree = buildNode(fields, flagging, schema, 'spec') ?? null;
    supportTrees.set(fields, tree);
  }
  return tree ?? undefined;
}

function buildNode(fields: Readonly<Record<string, FieldSupport>>, flagging: readonly string[], schema: Schema, pattern: string): SupportNode | undefined {
  const below = flagging.filter((p) => p === pattern || p.startsWith(`${pattern}.`) || p.startsWith(`${pattern}[`));
  if (below.length === 0) return undefined;
  const entry = fields[pattern];
  // An unsupported field warns once for itself: nothing below it is read.
  if (entry?.status === 'unsupported') return { entry, schema };
  switch (schema.t) {
    case 'object': {
      const children = new Map<string, SupportNode>();
      for (const [k, f] of Object.entries(schema.fields)) {
        const node = buildNode(fields, below, f, `${pattern}.${k}`);
        if (node) children.set(k, node);
      }
      return { entry, schema, fields: children };
    }
    case 'list': {
      const item = buildNode(fields, below, schema.item, `${pattern}[]`);
      return item ? { entry, schema, item } : { entry, schema };
    }
    case 'map': {
      const item = buildNode(fields, below, schema.value, `${pattern}.*`);
      return item ? { entry, schema, item } : { entry, schema };
    }
    default:
      return { entry, schema };
  }
}

/** The JSON path of a walk position (built only for a warning). */
function pathOf(segments: ReadonlyArray<string | number>): string {
  let path = 'spec';
  for (const s of segments) path += typeof s === 'number' ? `[${s}]` : `.${s}`;
  return path;
}

function walk(node: SupportNode, value: unknown, segments: Array<string | number>, out: ConfigWarning[]): void {
  if (value === undefined || value === null) return;
  const entry = node.entry;
  if (entry?.status === 'unsupported') {
    out.push({ path: pathOf(segments), code: 'MESHLET_UNSUPPORTED_FIELD', message: `not supported by meshlet: ${entry.note}` });
    return;
  }
  if (typeof value === 'string' && entry?.unsupportedValues?.[value]) {
    out.push({ path: pathOf(segments), code: 'MESHLET_UNSUPPORTED_VALUE', message: `${value} is not supported by meshlet: ${entry.unsupportedValues[value]}` });
  }
  if (node.fields !== undefined) {
    if (!isPlainObject(value)) return;
    const keys = Object.keys(value);
    for (let i = 0; i < keys.length; i++) {
      const child = node.fields.get(keys[i]!);
      if (child === undefined) continue;
      segments.push(keys[i]!);
      walk(child, value[keys[i]!], segments, out);
      segments.pop();
    }
  } else if (node.item !== undefined) {
    if (node.schema.t === 'list') {
      if (!Array.isArray(value)) return;
      for (let i = 0; i < value.length; i++) {
        segments.push(i);
        walk(node.item, value[i], segments, out);
        segments.pop();
      }
    } else if (isPlainObject(value)) {
      const keys = Object.keys(value);
      for (let i = 0; i < keys.length; i++) {
        segments.push(keys[i]!);
        walk(node.item, value[keys[i]!], segments, out);
        segments.pop();
      }
    }
  }
}

/** Every field path a schema declares (`spec.http[].match[].uri.exact`), parents before children. */
export function schemaPaths(schema: Schema, prefix = 'spec'): string[] {
  const out: string[] = [];
  const visit = (s: Schema, p: string): void => {
    if (s.t === 'object') for (const [k, f] of Object.entries(s.fields)) { out.push(`${p}.${k}`); visit(f, `${p}.${k}`); }
    else if (s.t === 'list') visit(s.item, `${p}[]`);
    else if (s.t === 'map') visit(s.value, `${p}.*`);
  };
  visit(schema, prefix);
  return out;
}

/** The leaf paths of a schema: scalars and `any` fields (what a user sets). */
export function schemaLeaves(schema: Schema, prefix = 'spec'): string[] {
  const out: string[] = [];
  const visit = (s: Schema, p: string): void => {
    if (s.t === 'object') for (const [k, f] of Object.entries(s.fields)) visit(f, `${p}.${k}`);
    else if (s.t === 'list') visit(s.item, `${p}[]`);
    else if (s.t === 'map') visit(s.value, `${p}.*`);
    else out.push(p);
  };
  visit(schema, prefix);
  return out;
}

const HTTP_PROTOCOLS = new Set(['HTTP', 'HTTPS', 'HTTP2', 'GRPC', 'GRPC-WEB']);
/** Service port protocols meshlet routes: HTTP ones, and HTTPS the app originates itself (as through a sidecar). */
const SERVICE_PROTOCOLS = new Set(['HTTP', 'HTTPS', 'HTTP2', 'GRPC', 'GRPC-WEB']);
const LOCAL_RATELIMIT = 'envoy.filters.http.local_ratelimit';
const RATELIMIT = 'envoy.filters.http.ratelimit';
const LOCAL_RATELIMIT_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';

type Check = (spec: never, out: ConfigWarning[]) => void;

/** Checks that depend on more than one field, mirroring what the translators skip. */
const contextualChecks: Record<string, Check> = {
  Gateway(spec: { servers?: Array<{ port?: { protocol?: string }; tls?: { mode?: string } }> }, out) {
    spec.servers?.forEach((s, i) => {
      const protocol = (s.port?.protocol ?? 'HTTP').toUpperCase();
      if (!HTTP_PROTOCOLS.has(protocol)) out.push({ path: `spec.servers[${i}].port.protocol`, code: 'MESHLET_UNSUPPORTED_VALUE', message: `${protocol} servers are not served: the meshlet gateway is L7 only (HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB); this server opens no port` });
    });
  },
  ServiceEntry(spec: ServiceEntrySpec, out) {
    // As istiod: an entry without ports has no listener, route or cluster, so its hosts are unknown hosts.
    if (!spec.ports?.length) {
      out.push({ path: 'spec.ports', code: 'MESHLET_NO_EFFECT', message: 'no ports: as in Istio, the entry gets no route or cluster; calls to its hosts are unknown hosts (ALLOW_ANY passes them through, REGISTRY_ONLY answers 502 NR)' });
    } else if ((spec.resolution ?? 'NONE') === 'NONE' && !spec.endpoints?.length && !spec.workloadSelector) {
      out.push({ path: 'spec.resolution', code: 'MESHLET_UNSUPPORTED_VALUE', message: 'NONE without endpoints is not supported by meshlet: Istio passes calls through to the address the app resolved, meshlet has no endpoint to call (use DNS, or list endpoints)' });
    }
    spec.ports?.forEach((p, i) => {
      const protocol = (p.protocol ?? 'HTTP').toUpperCase();
      if (!SERVICE_PROTOCOLS.has(protocol)) out.push({ path: `spec.ports[${i}].protocol`, code: 'MESHLET_UNSUPPORTED_VALUE', message: `${protocol} is not proxied: meshlet is L7 only (HTTP, HTTP2, GRPC, GRPC-WEB, HTTPS); HTTP calls made through the mesh to port ${p.number} are routed as HTTP, other connections the app opens to it go direct, without routing, policy or telemetry` });
    });
    spec.addresses?.forEach((a, i) => {
      if (isAddressRange(a)) out.push({ path: `spec.addresses[${i}]`, code: 'MESHLET_UNSUPPORTED_VALUE', message: `the range ${a} is not matched: meshlet routes by the request's host, and a range is matched on a listener's address (TCP) in Envoy; single addresses (and /32, /128) are routed` });
    });
  },
  VirtualService(spec: { gateways?: string[]; http?: Array<{ match?: Array<{ headers?: Record<string, unknown>; withoutHeaders?: Record<string, unknown> }> }> }, out) {
    // Istio routes on JWT claims only where jwt_authn runs before the router: gateways. For sidecars
    // (gateways absent or `mesh`) the match is written but never matches, as in Istio.
    if (spec.gateways !== undefined && spec.gateways.length > 0 && !spec.gateways.includes('mesh')) return;
    spec.http?.forEach((h, i) => h.match?.forEach((m, j) => {
      for (const field of ['headers', 'withoutHeaders'] as const) {
        for (const name of Object.keys(m[field] ?? {})) {
          if (!name.toLowerCase().startsWith('@request.auth.claims')) continue;
          out.push({ path: `spec.http[${i}].match[${j}].${field}.${name}`, code: 'MESHLET_UNSUPPORTED_VALUE', message: 'JWT claim matches apply at gateways only, as in Istio: a sidecar (mesh) verifies no JWT before routing, so this match sees no claims' });
        }
      }
    }));
  },
  RateLimit(spec: { host?: string; workloadSelector?: unknown; global?: unknown; local?: unknown }, out) {
    // The inbound chain answers synchronously, so a sidecar cannot wait for the rate-limit service there.
    if (!spec.host && spec.workloadSelector !== undefined && spec.global !== undefined) {
      out.push({ path: 'spec.global', code: 'MESHLET_UNSUPPORTED_VALUE', message: 'with workloadSelector, the global limit applies on the gateways the selector selects; a sidecar workload\'s inbound requests are not checked against the rate-limit service (use spec.host on its callers, or its local limit)' });
    }
    // A gateway runs the authorization part of the inbound chain only.
    if (!spec.host && spec.workloadSelector !== undefined && spec.local !== undefined) {
      out.push({ path: 'spec.local', code: 'MESHLET_UNSUPPORTED_VALUE', message: 'with workloadSelector, the local limit applies to the inbound requests of the sidecar workloads the selector selects; a gateway it selects does not run it (use spec.global for a gateway)' });
    }
  },
  EnvoyFilter(spec: { configPatches?: EnvoyFilterPatch[] }, out) {
    spec.configPatches?.forEach((p, i) => {
      const why = unappliedPatch(p);
      if (why) out.push({ path: `spec.configPatches[${i}]`, code: 'MESHLET_UNSUPPORTED_PATCH', message: why });
    });
  },
};

/** An EnvoyFilter config patch, as far as the recipes meshlet applies read it. */
export interface EnvoyFilterPatch {
  applyTo?: string;
  match?: {
    context?: string;
    listener?: { filterChain?: { filter?: { subFilter?: { name?: string } } } };
    routeConfiguration?: { name?: string; portNumber?: number; portName?: string; gateway?: string; vhost?: { name?: string; domainName?: string; route?: { name?: string; action?: string } } };
  };
  patch?: { operation?: string; value?: Record<string, unknown> };
}

const RATELIMIT_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit';

/** The ratelimit filter by its name, its pre-1.14 name `envoy.ratelimit` (bookinfo's recipe) or its config type. */
export function isRateLimitFilter(value: Record<string, unknown> | undefined): boolean {
  if (!value || value.typed_config === undefined) return false;
  const tc = value.typed_config as Record<string, unknown>;
  return value.name === RATELIMIT || value.name === 'envoy.ratelimit' || tc['@type'] === RATELIMIT_TYPE;
}

/** The route-configuration match fields meshlet does not match on; a patch naming one is not applied. */
function unsupportedRouteMatch(p: EnvoyFilterPatch): string | undefined {
  const m = p.match?.routeConfiguration;
  if (m?.portName) return 'routeConfiguration.portName';
  if (m?.gateway) return 'routeConfiguration.gateway';
  return undefined;
}

/** MERGE values the rate-limit recipes carry: only these keys, so nothing in a patch is dropped unseen. */
function onlyKeys(value: unknown, keys: readonly string[]): boolean {
  return typeof value === 'object' && value !== null && Object.keys(value).length > 0 && Object.keys(value).every((k) => keys.includes(k));
}

/**
 * Why meshlet does not apply an EnvoyFilter patch, or undefined when it does:
 * the recipes translate-inbound.ts and translate-ratelimit-envoyfilter.ts implement.
 */
export function unappliedPatch(p: EnvoyFilterPatch): string | undefined {
  const context = p.match?.context ?? 'ANY';
  const op = p.patch?.operation;
  const value = p.patch?.value;
  const inbound = context === 'SIDECAR_INBOUND' || context === 'ANY';
  const outbound = context === 'SIDECAR_OUTBOUND' || context === 'GATEWAY' || context === 'ANY';
  if (p.applyTo === 'HTTP_FILTER') {
    if (op === 'REMOVE' && p.match?.listener?.filterChain?.filter?.subFilter?.name === LOCAL_RATELIMIT && inbound) return undefined;
    if (isLocalRateLimit(value) && inbound && ['INSERT_FIRST', 'INSERT_BEFORE', 'INSERT_AFTER', 'ADD', 'REPLACE'].includes(op ?? '')) return undefined;
    if (isRateLimitFilter(value) && outbound) return undefined;
    return `HTTP_FILTER ${op ?? ''} ${String(value?.name ?? '')} in context ${context} is not applied: meshlet applies local_ratelimit (SIDECAR_INBOUND) and ratelimit (SIDECAR_OUTBOUND, GATEWAY) filters`.replace(/ {2,}/g, ' ');
  }
  if (p.applyTo === 'CLUSTER' && op === 'ADD') {
    if (typeof value?.name === 'string' && value.load_assignment !== undefined) return undefined;
    return 'CLUSTER ADD is applied only for a named cluster with a load_assignment (the rate-limit service cluster of a ratelimit filter)';
  }
  if (p.applyTo === 'HTTP_ROUTE' && op === 'MERGE' && inbound) {
    const perFilter = (value?.typed_per_filter_config ?? value?.typedPerFilterConfig) as Record<string, unknown> | undefined;
    if (perFilter?.[LOCAL_RATELIMIT] !== undefined) return undefined;
  }
  const badMatch = unsupportedRouteMatch(p);
  if ((p.applyTo === 'HTTP_ROUTE' || p.applyTo === 'VIRTUAL_HOST') && badMatch) return `${p.applyTo} ${op ?? ''} is not applied: meshlet does not match on ${badMatch} (it matches routeConfiguration name and portNumber, vhost name and domainName, route name and action)`.replace(/ {2,}/g, ' ');
  if (p.applyTo === 'HTTP_ROUTE' && op === 'MERGE' && outbound && onlyKeys(value, ['route']) && onlyKeys(value!.route, ['rate_limits', 'include_vh_rate_limits'])) return undefined;
  if (p.applyTo === 'VIRTUAL_HOST' && op === 'MERGE' && outbound && onlyKeys(value, ['rate_limits']) && Array.isArray(value?.rate_limits)) return undefined;
  return `${p.applyTo ?? 'a patch'} ${op ?? ''} in context ${context} is not applied: meshlet applies only the rate-limit recipes of Istio's docs (docs/rate-limiting.md)`.replace(/ {2,}/g, ' ');
}

function isLocalRateLimit(value: Record<string, unknown> | undefined): boolean {
  if (!value) return false;
  if (value.name === LOCAL_RATELIMIT) return true;
  const tc = value.typed_config as Record<string, unknown> | undefined;
  return tc?.['@type'] === LOCAL_RATELIMIT_TYPE || tc?.type_url === LOCAL_RATELIMIT_TYPE || tc?.typeUrl === LOCAL_RATELIMIT_TYPE;
}
