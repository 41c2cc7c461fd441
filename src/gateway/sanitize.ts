/**
 * What the ingress gateway trusts in a request from outside: Envoy's HTTP
 * connection manager header sanitizing with `use_remote_address: true` (what
 * istiod sets on every gateway listener), read from Envoy's
 * source/common/http/conn_manager_utility.cc (`mutateRequestHeaders`,
 * `cleanInternalHeaders`, `mutateXfccRequestHeader`).
 *
 * A request is *internal* only when it arrived without `x-forwarded-for` and
 * its trusted client address is inside `internal_address_config`; every other
 * request is an *edge* request: Envoy's internal `x-envoy-*` control headers
 * are removed, `x-envoy-external-address` and `x-request-id` are set by the
 * gateway. Since Envoy 1.33 no address is internal unless configured (before,
 * RFC 1918 and loopback were), and istiod leaves the list empty unless
 * ENABLE_HCM_INTERNAL_NETWORKS names mesh networks.
 *
 * Compiled once from the gateway's options; the request path only reads it.
 */
import { BlockList, isIP } from 'node:net';
import { MeshConfigError } from '../errors.js';

/** Envoy's `forward_client_cert_details` (Istio's `ProxyConfig.gatewayTopology.forwardClientCertDetails`). */
export type ForwardClientCertDetails = 'SANITIZE' | 'FORWARD_ONLY' | 'APPEND_FORWARD' | 'SANITIZE_SET' | 'ALWAYS_FORWARD_ONLY';

const FCC_MODES: ReadonlySet<string> = new Set<ForwardClientCertDetails>(['SANITIZE', 'FORWARD_ONLY', 'APPEND_FORWARD', 'SANITIZE_SET', 'ALWAYS_FORWARD_ONLY']);

/**
 * Istio's `ProxyConfig.gatewayTopology`: set per gateway Deployment with the
 * `proxy.istio.io/config` annotation, or mesh-wide in
 * `meshConfig.defaultConfig.gatewayTopology`. Same field names and meaning.
 */
export interface GatewayTopology {
  /**
   * Trusted proxies (load balancers) in front of the gateway: Envoy's
   * `xff_num_trusted_hops`. The client address is the n-th address from the
   * right of the incoming `x-forwarded-for`. Default 0: the TCP peer.
   */
  numTrustedProxies?: number;
  /** What happens to `x-forwarded-client-cert`. Default `SANITIZE_SET`, as istiod sets on gateways. */
  forwardClientCertDetails?: ForwardClientCertDetails | 'UNDEFINED';
  /** PROXY protocol from the load balancer: not supported (refused). */
  proxyProtocol?: unknown;
}

/** The request-sanitizing options of `createGateway` (docs/gateway.md, "What the gateway trusts"). */
export interface GatewayEdgeOptions {
  /** Istio's gateway topology (trusted hops, client certificate forwarding). */
  gatewayTopology?: GatewayTopology;
  /**
   * Envoy's `internal_address_config.cidr_ranges`: downstream addresses whose
   * requests (without `x-forwarded-for`) are internal and keep Envoy's
   * `x-envoy-*` control headers. Default none, as Envoy 1.33+. Istio fills it
   * from meshNetworks `fromCidr` endpoints when ENABLE_HCM_INTERNAL_NETWORKS is
   * on. `ENVOY_LEGACY_INTERNAL_ADDRESSES` is the pre-1.33 default.
   */
  internalAddresses?: readonly string[];
  /** Envoy's `preserve_external_request_id`: keep an edge request's `x-request-id` (default false: regenerate). */
  preserveExternalRequestId?: boolean;
}

/**
 * The addresses Envoy before 1.33 treated as internal when
 * `internal_address_config` was unset (`Network::Utility::isInternalAddress`):
 * RFC 1918, the IPv4 loopback address itself, `fd00::/8` and `::1`.
 */
export const ENVOY_LEGACY_INTERNAL_ADDRESSES: readonly string[] = Object.freeze([
  '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '127.0.0.1/32', 'fd00::/8', '::1/128',
]);

/**
 * Removed from every request that is not internal: Envoy's
 * `cleanInternalHeaders` list (with `use_remote_address` every non-internal
 * request is an edge request, so the three edge-only headers are in it too),
 * plus meshlet's own `x-meshlet-flags`, which only the mesh may write.
 * `x-envoy-internal`, `x-envoy-external-address`, `x-forwarded-client-cert`
 * and the peer-metadata headers have their own rules (forward.ts).
 */
export const EDGE_REMOVED_HEADERS: readonly string[] = Object.freeze([
  'x-envoy-decorator-operation', 'x-envoy-downstream-service-cluster', 'x-envoy-downstream-service-node',
  'x-envoy-retriable-status-codes', 'x-envoy-retriable-header-names', 'x-envoy-retry-on', 'x-envoy-retry-grpc-on',
  'x-envoy-max-retries', 'x-envoy-upstream-alt-stat-name', 'x-envoy-upstream-rq-timeout-ms',
  'x-envoy-upstream-rq-per-try-timeout-ms', 'x-envoy-upstream-rq-timeout-alt-response', 'x-envoy-expected-rq-timeout-ms',
  'x-envoy-force-trace', 'x-envoy-ip-tags', 'x-envoy-original-url', 'x-envoy-hedge-on-per-try-timeout',
  'x-meshlet-flags',
]);

/** The compiled options; immutable, shared by every request of one gateway. */
export interface EdgePolicy {
  readonly numTrustedProxies: number;
  readonly forwardClientCert: ForwardClientCertDetails;
  readonly preserveExternalRequestId: boolean;
  /** undefined: no address is internal. */
  readonly internal: BlockList | undefined;
}

/** Istio's gateway defaults: no trusted hop, SANITIZE_SET, nothing internal, request ids regenerated at the edge. */
export const DEFAULT_EDGE_POLICY: EdgePolicy = Object.freeze({
  numTrustedProxies: 0,
  forwardClientCert: 'SANITIZE_SET',
  preserveExternalRequestId: false,
  internal: undefined,
});

/**
 * Validates and compiles the options. `resource` names the gateway workload
 * (`namespace/name`) in errors, which read as Istio's ProxyConfig fields.
 * @throws MeshConfigError naming the bad field
 */
export function compileEdgePolicy(options: GatewayEdgeOptions, resource: string): EdgePolicy {
  const { gatewayTopology: topology, internalAddresses, preserveExternalRequestId } = options;
  if (topology === undefined && internalAddresses === undefined && preserveExternalRequestId === undefined) return DEFAULT_EDGE_POLICY;
  const fail = (path: string, reason: string): never => {
    throw new MeshConfigError('ProxyConfig', resource, path, reason);
  };
  let numTrustedProxies = 0;
  let forwardClientCert: ForwardClientCertDetails = 'SANITIZE_SET';
  if (topology !== undefined) {
    if (topology === null || typeof topology !== 'object') fail('gatewayTopology', 'must be an object');
    for (const key of Object.keys(topology)) {
      if (key === 'proxyProtocol') fail('gatewayTopology.proxyProtocol', 'PROXY protocol is not supported by the meshlet gateway');
      else if (key !== 'numTrustedProxies' && key !== 'forwardClientCertDetails') fail(`gatewayTopology.${key}`, 'unknown field');
    }
    const n = topology.numTrustedProxies;
    if (n !== undefined) {
      if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) fail('gatewayTopology.numTrustedProxies', `must be a non-negative integer, got ${String(n)}`);
      numTrustedProxies = n;
    }
    const mode = topology.forwardClientCertDetails;
    // UNDEFINED is the proto's zero value: istiod keeps its SANITIZE_SET default.
    if (mode !== undefined && mode !== 'UNDEFINED') {
      if (!FCC_MODES.has(mode)) fail('gatewayTopology.forwardClientCertDetails', `must be one of ${[...FCC_MODES].join(', ')}, got ${String(mode)}`);
      forwardClientCert = mode;
    }
  }
  if (preserveExternalRequestId !== undefined && typeof preserveExternalRequestId !== 'boolean') fail('preserveExternalRequestId', 'must be a boolean');
  let internal: BlockList | undefined;
  if (internalAddresses !== undefined) {
    if (!Array.isArray(internalAddresses)) fail('internalAddresses', 'must be a list of CIDR ranges');
    internalAddresses.forEach((cidr, i) => {
      const range = parseCidr(cidr);
      if (typeof range === 'string') return fail(`internalAddresses[${i}]`, range);
      (internal ??= new BlockList()).addSubnet(range.address, range.prefix, range.family);
    });
  }
  return Object.freeze({ numTrustedProxies, forwardClientCert, preserveExternalRequestId: preserveExternalRequestId ?? false, internal });
}

/** `10.0.0.0/8`, `fd00::/8`, or a bare address (one host); a reason string when malformed. */
function parseCidr(cidr: unknown): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | string {
  if (typeof cidr !== 'string') return 'must be a CIDR range string';
  const slash = cidr.indexOf('/');
  const address = slash === -1 ? cidr : cidr.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return `${cidr} is not an IP address or CIDR range`;
  const max = version === 4 ? 32 : 128;
  const prefix = slash === -1 ? max : Number(cidr.slice(slash + 1));
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (slash !== -1 && cidr.length === slash + 1)) return `${cidr}: prefix length must be 0..${max}`;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** Node reports IPv4 peers of a dual-stack socket as `::ffff:a.b.c.d`; ranges and headers use the IPv4 form. */
export function plainAddress(address: string): string {
  return address.length > 7 && address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** True when `address` is inside the policy's internal ranges. */
export function isInternalAddress(policy: EdgePolicy, address: string): boolean {
  const internal = policy.internal;
  if (internal === undefined) return false;
  const version = isIP(address);
  return version !== 0 && internal.check(address, version === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Envoy's `getLastAddressFromXFF(headers, skip)`: the address `skip` entries
 * from the right of `x-forwarded-for`, or undefined when there are not that
 * many or it is not an IP address.
 */
export function forwardedForEntry(xff: string, skip: number): string | undefined {
  let end = xff.length;
  for (let i = 0; i < skip; i++) {
    const comma = end > 0 ? xff.lastIndexOf(',', end - 1) : -1;
    if (comma === -1) return undefined;
    end = comma;
  }
  const comma = end > 0 ? xff.lastIndexOf(',', end - 1) : -1;
  const entry = xff.slice(comma + 1, end).trim();
  return isIP(entry) !== 0 ? plainAddress(entry) : undefined;
}

/** How the gateway sees one downstream request. */
export interface Downstream {
  /** Internal (trusted) request: keeps `x-envoy-*` control headers and gets `x-envoy-internal: true`. */
  readonly internal: boolean;
  /** The trusted client address (Envoy's final remote address): `x-envoy-external-address` of an edge request. */
  readonly client: string | undefined;
  /** The TCP peer, appended to `x-forwarded-for`. */
  readonly peer: string | undefined;
}

/**
 * Classifies a request as Envoy does with `use_remote_address: true`: the
 * client is the `numTrustedProxies`-th address from the right of the incoming
 * `x-forwarded-for` (the TCP peer when that is absent or not an address); the
 * request is internal only when no `x-forwarded-for` arrived at all and the
 * client is in the internal ranges.
 * @param xff the request's `x-forwarded-for` (duplicates joined), undefined when absent
 */
export function classifyDownstream(policy: EdgePolicy, remoteAddress: string | undefined, xff: string | undefined): Downstream {
  const peer = remoteAddress === undefined ? undefined : plainAddress(remoteAddress);
  const hops = policy.numTrustedProxies;
  const client = (hops > 0 && xff !== undefined ? forwardedForEntry(xff, hops - 1) : undefined) ?? peer;
  const internal = xff === undefined && client !== undefined && isInternalAddress(policy, client);
  return { internal, client, peer };
}
