/**
 * The inbound side of a workload as Envoy resources: one `virtual_inbound`
 * listener whose filter chains carry the mTLS mode (PeerAuthentication, as
 * istiod's grpc generator writes it: an `inbound-mtls` chain with a
 * DownstreamTlsContext requiring a client certificate, an `inbound-plaintext`
 * chain, or both; port-level modes as chains matching `destination_port`) and
 * whose HttpConnectionManager carries the inbound HTTP filter chain. Every
 * inbound adapter (Express, Fastify, mesh.createServer, the gRPC server
 * interceptor) enforces that listener in-process (core/inbound-listener.ts,
 * core/inbound-policy.ts) — the same code that reads istiod's
 * `xds.istio.io/grpc/lds/inbound/<ip>:<port>` listeners.
 *
 * Filters come from
 *  - RequestAuthentication → Envoy's jwt_authn filter (security/jwt-policy.ts), first;
 *  - AuthorizationPolicy → Envoy RBAC filters (config/translate-rbac.ts);
 *  - the meshlet `RateLimit` kind with `workloadSelector.matchLabels`
 *    selecting this workload → `envoy.filters.http.local_ratelimit`,
 *    inserted before the router;
 *  - Istio's documented EnvoyFilter recipes for the local rate limit
 *    (context SIDECAR_INBOUND): an HTTP_FILTER patch (INSERT_BEFORE / _AFTER /
 *    _FIRST, ADD, REPLACE, REMOVE) and the route-level HTTP_ROUTE MERGE of
 *    `typed_per_filter_config`, accepted unchanged;
 *  - extra filters from the caller, placed first.
 *
 * The listener is bound to 0.0.0.0:15006 (Istio's inbound capture port) so
 * the snapshot never mistakes it for an outbound api_listener; its route is a
 * single catch-all with `non_forwarding_action` — the app itself answers, as
 * for a gRPC xDS server.
 */
import { toStruct } from './struct.js';
import type { Any, Listener, Route, RouteConfiguration } from './envoy.js';
import { TYPE_URL } from './envoy.js';
import type { IstioResource } from './istio-types.js';
import { labelsMatch } from './registry.js';
import type { ProxyInfo } from './translate.js';
import { type ConfigLocation, translateLocalRateLimitFilter, translateRateLimitLocal } from './translate-resilience.js';
import { MeshConfigError } from '../errors.js';
import { type PathNormalizationType, pathNormalizationSettings } from '../core/path-normalization.js';
import { type MtlsMode, peerAuthenticationFor } from '../security/peer-authentication.js';
import { type AuthorizationPolicyInput, translateAuthorization } from './translate-rbac.js';
import { extensionFilters } from './translate-extensions.js';
import { type RequestAuthenticationInput, translateJwtAuthn } from '../security/jwt-policy.js';

/** Name of the inbound listener (Istio's). */
export const VIRTUAL_INBOUND = 'virtual_inbound';
/** Istio's inbound capture port; the listener's address keeps it out of outbound lookups. */
export const VIRTUAL_INBOUND_PORT = 15006;
/** Name of the inbound route configuration and its virtual host (Istio: `inbound|http|<port>`). */
export const INBOUND_ROUTE_NAME = 'inbound|http|0';

export const HTTP_CONNECTION_MANAGER = 'envoy.filters.network.http_connection_manager';
export const LOCAL_RATELIMIT_FILTER = 'envoy.filters.http.local_ratelimit';
export const ROUTER_FILTER = 'envoy.filters.http.router';

/** One entry of an HCM's `http_filters`. */
export interface HttpFilter {
  name: string;
  typed_config?: Any;
}

/** The HCM of the inbound listener, with its route configuration inline. */
export interface InboundHttpConnectionManager {
  '@type': typeof TYPE_URL.httpConnectionManager;
  stat_prefix: string;
  route_config: RouteConfiguration;
  http_filters: HttpFilter[];
  /** Envoy's path handling, as istiod sets it from `meshConfig.pathNormalization` (listener_builder.go). */
  normalize_path?: { value: boolean } | boolean;
  merge_slashes?: boolean;
  path_with_escaped_slashes_action?: string | number;
}

/** Options of {@link translateInbound}. */
export interface TranslateInboundOptions {
  /** EnvoyFilters in this namespace apply to every workload (Istio's root namespace, default `istio-system`). */
  rootNamespace?: string;
  /** Filters placed first in the chain, before authorization and rate limits (a filter with a factory registered in core/inbound-policy). */
  filters?: readonly HttpFilter[];
  /** `meshConfig.pathNormalization.normalization` (default BASE), written onto the HCM as istiod does. */
  pathNormalization?: PathNormalizationType;
}

type EnvoyFilterPatch = {
  applyTo?: string;
  match?: {
    context?: string;
    listener?: { filterChain?: { filter?: { name?: string; subFilter?: { name?: string } } } };
    routeConfiguration?: { vhost?: { name?: string; route?: { name?: string; action?: string } } };
  };
  patch?: { operation?: string; value?: Record<string, unknown> };
};

/**
 * Builds the `virtual_inbound` listener for `proxy` from the resources that
 * select it. Always returns a listener (with only the router when no inbound
 * policy applies), so the inbound chain is visible in config dumps.
 * @throws MeshConfigError naming the RateLimit or EnvoyFilter and the bad field.
 */
export function translateInbound(resources: readonly IstioResource[], proxy: ProxyInfo, options: TranslateInboundOptions = {}): Listener {
  const rootNamespace = options.rootNamespace ?? 'istio-system';
  // JWT authentication, then authorization (AUDIT, DENY, ALLOW, as istiod orders them) which reads its
  // payload, then rate limits, then the router.
  const jwt = translateJwtAuthn(resources as unknown as RequestAuthenticationInput[], proxy, rootNamespace);
  const authorization = translateAuthorization(resources as unknown as AuthorizationPolicyInput[], proxy, rootNamespace);
  // Extensions meshlet cannot run fail closed ahead of everything (translate-extensions.ts); then JWT, then RBAC.
  const chain: HttpFilter[] = [...(options.filters ?? []), ...extensionFilters(resources, proxy, rootNamespace), ...(jwt ? [jwt as HttpFilter] : []), ...authorization, { name: ROUTER_FILTER, typed_config: { '@type': TYPE_URL.router } }];
  const route: Route = { name: 'default', match: { prefix: '/' } };
  (route as Route & { non_forwarding_action: Record<string, never> }).non_forwarding_action = {};

  for (const r of resources) {
    if (r.kind !== 'RateLimit' || r.spec.host || !r.spec.workloadSelector || r.metadata.namespace !== proxy.namespace) continue;
    if (!labelsMatch(r.spec.workloadSelector.matchLabels ?? {}, proxy.labels)) continue;
    const at: ConfigLocation = { kind: 'RateLimit', resource: `${r.metadata.namespace}/${r.metadata.name}`, path: 'spec.local' };
    const local = translateRateLimitLocal(r.spec.local, at, { statPrefix: `ratelimit.${r.metadata.namespace}.${r.metadata.name}` });
    // Before the router, after authorization: a denied request spends no token.
    if (local) chain.splice(chain.length - 1, 0, { name: LOCAL_RATELIMIT_FILTER, typed_config: local });
  }

  for (const r of resources) {
    if (r.kind !== 'EnvoyFilter') continue;
    const ef = r as { metadata: { name: string; namespace: string }; spec: { workloadSelector?: unknown; configPatches?: unknown } };
    const ns = ef.metadata.namespace;
    if (ns !== proxy.namespace && ns !== rootNamespace) continue;
    const selector = (ef.spec.workloadSelector as { labels?: Record<string, string> } | undefined)?.labels;
    if (selector && !labelsMatch(selector, proxy.labels)) continue;
    const patches = (ef.spec.configPatches ?? []) as EnvoyFilterPatch[];
    patches.forEach((p, i) => {
      const at: ConfigLocation = { kind: 'EnvoyFilter', resource: `${ns}/${ef.metadata.name}`, path: `spec.configPatches[${i}].patch.value` };
      const context = p.match?.context ?? 'ANY';
      if (context !== 'SIDECAR_INBOUND' && context !== 'ANY') return;
      if (p.applyTo === 'HTTP_FILTER') applyFilterPatch(chain, p, at);
      else if (p.applyTo === 'HTTP_ROUTE') applyRoutePatch(route, p, at);
    });
  }

  const hcm: InboundHttpConnectionManager = {
    '@type': TYPE_URL.httpConnectionManager,
    stat_prefix: `inbound_0.0.0.0_${VIRTUAL_INBOUND_PORT}`,
    route_config: { name: INBOUND_ROUTE_NAME, virtual_hosts: [{ name: INBOUND_ROUTE_NAME, domains: ['*'], routes: [route] }] },
    http_filters: chain,
    ...pathNormalizationFields(options.pathNormalization),
  };
  const peerAuthentication = peerAuthenticationFor(resources, proxy, { rootNamespace });
  const filterChains: InboundFilterChain[] = [];
  // Port-level chains first: Envoy picks the chain matching the destination port over a port-less one.
  for (const [port, mode] of peerAuthentication.ports) filterChains.push(...filterChainsFor(mode, port, hcm));
  filterChains.push(...filterChainsFor(peerAuthentication.mode, undefined, hcm));
  const listener = {
    name: VIRTUAL_INBOUND,
    address: { socket_address: { address: '0.0.0.0', port_value: VIRTUAL_INBOUND_PORT } },
    traffic_direction: 'INBOUND',
    filter_chains: filterChains,
    ...telemetryMetadata(resources, proxy.namespace, rootNamespace),
  };
  return listener as unknown as Listener;
}

/** One filter chain of the inbound listener (the fields meshlet writes). */
export interface InboundFilterChain {
  name: string;
  filter_chain_match?: { destination_port?: { value: number }; transport_protocol?: string };
  filters: Array<{ name: string; typed_config: InboundHttpConnectionManager }>;
  transport_socket?: { name: string; typed_config: Any };
}

/**
 * istiod's DownstreamTlsContext for a proxyless server (grpcgen/lds.go
 * buildInboundFilterChains, grpcgen.go buildCommonTLSContext): the
 * certificate and root from the bootstrap's `default` certificate provider,
 * and a client certificate required.
 */
export function inboundTlsContext(): Any {
  const certificate = { instance_name: 'default', certificate_name: 'default' };
  const root = { instance_name: 'default', certificate_name: 'ROOTCA' };
  return {
    '@type': TYPE_URL.downstreamTls,
    common_tls_context: {
      tls_certificate_provider_instance: certificate,
      tls_certificate_certificate_provider_instance: certificate,
      combined_validation_context: {
        default_validation_context: { ca_certificate_provider_instance: root },
        validation_context_certificate_provider_instance: root,
      },
    },
    require_client_certificate: { value: true },
  };
}

/**
 * The filter chains for one mTLS mode, as grpcgen names them (`inbound-mtls`,
 * `inbound-plaintext`): STRICT an mTLS chain; DISABLE a plaintext chain;
 * PERMISSIVE both, told apart by transport protocol as a sidecar's inbound
 * listener does (istiod's grpc generator sends only the plaintext one for
 * PERMISSIVE, since gRPC cannot match on it; meshlet's server can).
 * Each chain gets its own copy of the HCM: Envoy builds filters per chain.
 */
function filterChainsFor(mode: MtlsMode, port: number | undefined, hcm: InboundHttpConnectionManager): InboundFilterChain[] {
  const suffix = port === undefined ? '' : `-${port}`;
  const match = (transport: string | undefined) => {
    const m = { ...(port !== undefined && { destination_port: { value: port } }), ...(transport !== undefined && { transport_protocol: transport }) };
    return Object.keys(m).length === 0 ? {} : { filter_chain_match: m };
  };
  const copy = structuredClone(hcm);
  const chain = (name: string, transport: string | undefined, tls: boolean): InboundFilterChain => ({
    name: `${name}${suffix}`,
    ...match(transport),
    filters: [{ name: `inbound-hcm${name.slice('inbound-'.length)}`, typed_config: copy }],
    ...(tls && { transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: inboundTlsContext() } }),
  });
  if (mode === 'STRICT') return [chain('inbound-mtls', undefined, true)];
  if (mode === 'DISABLE') return [chain('inbound-plaintext', undefined, false)];
  return [chain('inbound-mtls', 'tls', true), chain('inbound-plaintext', 'raw_buffer', false)];
}

/** The HCM fields istiod's buildHTTPConnectionManager sets for a normalization option. */
function pathNormalizationFields(type: PathNormalizationType | undefined): Pick<InboundHttpConnectionManager, 'normalize_path' | 'merge_slashes' | 'path_with_escaped_slashes_action'> {
  const s = pathNormalizationSettings(type);
  return { normalize_path: { value: s.normalizePath }, merge_slashes: s.mergeSlashes, path_with_escaped_slashes_action: s.escapedSlashes };
}

/** The inbound HCM of a `virtual_inbound` listener (as translated or received over LDS), if it has one. */
export function inboundConnectionManager(listener: Listener | undefined): InboundHttpConnectionManager | undefined {
  const chains = (listener?.filter_chains ?? []) as Array<{ filters?: Array<{ name?: string; typed_config?: Any }> }>;
  for (const fc of chains) {
    for (const f of fc.filters ?? []) {
      if (f.typed_config?.['@type'] === TYPE_URL.httpConnectionManager) return f.typed_config as unknown as InboundHttpConnectionManager;
    }
  }
  return undefined;
}

/** Is this patch value a local rate limit filter (by name or by the type it carries)? */
function isLocalRateLimit(value: Record<string, unknown> | undefined): boolean {
  if (!value) return false;
  if (value.name === LOCAL_RATELIMIT_FILTER) return true;
  const tc = value.typed_config as Record<string, unknown> | undefined;
  return tc?.['@type'] === TYPE_URL.localRateLimit || tc?.type_url === TYPE_URL.localRateLimit || tc?.typeUrl === TYPE_URL.localRateLimit;
}

/** Istio's HTTP_FILTER patch semantics on the inbound chain; only local rate limit filters are added. */
function applyFilterPatch(chain: HttpFilter[], p: EnvoyFilterPatch, at: ConfigLocation): void {
  const filter = p.match?.listener?.filterChain?.filter;
  if (filter?.name !== undefined && filter.name !== HTTP_CONNECTION_MANAGER) return;
  const sub = filter?.subFilter?.name;
  const index = sub === undefined ? -1 : chain.findIndex((f) => f.name === sub);
  if (sub !== undefined && index === -1 && p.patch?.operation !== 'INSERT_FIRST' && p.patch?.operation !== 'ADD') return;
  const op = p.patch?.operation;
  if (op === 'REMOVE') {
    if (sub === LOCAL_RATELIMIT_FILTER) for (let i = chain.length - 1; i >= 0; i--) if (chain[i]!.name === sub) chain.splice(i, 1);
    return;
  }
  const value = p.patch?.value;
  if (!isLocalRateLimit(value)) return;
  const made: HttpFilter = { name: String(value!.name ?? LOCAL_RATELIMIT_FILTER), typed_config: translateLocalRateLimitFilter(value!.typed_config, at) };
  switch (op) {
    case 'INSERT_FIRST':
      chain.unshift(made);
      break;
    case 'INSERT_BEFORE':
      // Istio: before the selected sub-filter, or first when none is selected.
      chain.splice(index === -1 ? 0 : index, 0, made);
      break;
    case 'INSERT_AFTER':
      chain.splice(index === -1 ? chain.length : index + 1, 0, made);
      break;
    case 'ADD':
      chain.push(made);
      break;
    case 'REPLACE':
      if (index !== -1) chain[index] = made;
      break;
    default:
      throw new MeshConfigError(at.kind, at.resource, at.path.replace(/\.value$/, '.operation'), `operation ${String(op)} is not supported on HTTP_FILTER`);
  }
}

/**
 * Istio's route-level recipe: HTTP_ROUTE MERGE of `typed_per_filter_config`
 * on the inbound virtual host. meshlet has one inbound route whatever the
 * app's port, so the vhost's port (`inbound|http|9080`) is not compared.
 */
function applyRoutePatch(route: Route, p: EnvoyFilterPatch, at: ConfigLocation): void {
  const vhost = p.match?.routeConfiguration?.vhost;
  if (vhost?.name !== undefined && !vhost.name.startsWith('inbound|')) return;
  if (vhost?.route?.name !== undefined && vhost.route.name !== route.name) return;
  if (p.patch?.operation !== 'MERGE') return;
  const value = p.patch.value ?? {};
  const perFilter = (value.typed_per_filter_config ?? value.typedPerFilterConfig) as Record<string, unknown> | undefined;
  const config = perFilter?.[LOCAL_RATELIMIT_FILTER];
  if (config === undefined) return;
  route.typed_per_filter_config = {
    ...route.typed_per_filter_config,
    [LOCAL_RATELIMIT_FILTER]: translateLocalRateLimitFilter(config, { ...at, path: `${at.path}.typed_per_filter_config['${LOCAL_RATELIMIT_FILTER}']` }),
  };
}

/**
 * Where the inbound listener carries the Telemetry resources (telemetry.istio.io)
 * the SDK resolves for itself: a documented meshlet extension, since istiod
 * sends proxyless clients no telemetry config.
 */
export const TELEMETRY_METADATA_KEY = 'meshlet.telemetry';

/**
 * Telemetry resources of the proxy's namespace and the root namespace, as
 * listener metadata (selection by workload labels happens in the SDK).
 * Security policies travel as Envoy resources: filter chains and RBAC filters.
 */
function telemetryMetadata(resources: readonly IstioResource[], namespace: string, rootNamespace: string): { metadata?: { filter_metadata: Record<string, unknown> } } {
  const inScope = (r: IstioResource): boolean => r.metadata.namespace === namespace || r.metadata.namespace === rootNamespace;
  const telemetry = resources.filter((r) => r.kind === 'Telemetry' && inScope(r));
  if (telemetry.length === 0) return {};
  return { metadata: { filter_metadata: { [TELEMETRY_METADATA_KEY]: toStruct({ resources: telemetry.map((r) => JSON.parse(JSON.stringify(r)) as unknown) }) } } };
}
