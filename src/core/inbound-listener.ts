/**
 * The inbound listeners of a snapshot, read as a proxyless gRPC server reads
 * them (gRFC A36): which listener serves a port, which of its filter chains
 * apply, and the mTLS mode those chains say.
 *
 * Two shapes arrive, both Envoy Listeners:
 *  - istiod's grpc generator: one listener per port, named
 *    `xds.istio.io/grpc/lds/inbound/<ip>:<port>` (pilot/pkg/networking/grpcgen/lds.go);
 *  - meshlet's translator: one `virtual_inbound` listener for every port,
 *    with chains per port (`filter_chain_match.destination_port`) where
 *    portLevelMtls says so.
 * A filter chain with a DownstreamTlsContext whose require_client_certificate
 * is true is an mTLS chain, one without a transport socket a plaintext chain:
 * mTLS only is STRICT, plaintext only DISABLE, both PERMISSIVE. Every chain
 * of a port must carry the same HTTP filters (both shapes do), so the inbound
 * policy does not depend on the transport. Protocol-neutral.
 */
import type { Any, EnvoyResources, Listener } from '../config/envoy.js';
import { TYPE_URL } from '../config/envoy.js';
import { type InboundHttpConnectionManager, VIRTUAL_INBOUND } from '../config/translate-inbound.js';
import { MeshConfigError } from '../errors.js';

/** The mTLS mode a server applies to a connection (PeerAuthentication's names). */
export type InboundMtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

/** istiod's name prefix for a proxyless server's inbound listener (pkg/istio-agent/grpcxds). */
export const GRPC_INBOUND_LISTENER_PREFIX = 'xds.istio.io/grpc/lds/inbound/';

/** Mode when no inbound listener speaks for a port: Istio's default PeerAuthentication (PERMISSIVE). */
export const DEFAULT_INBOUND_MODE: InboundMtlsMode = 'PERMISSIVE';

interface FilterChain {
  name?: string;
  filter_chain_match?: { destination_port?: { value: number } | number; transport_protocol?: string };
  filters?: Array<{ name?: string; typed_config?: Any }>;
  transport_socket?: { name?: string; typed_config?: Any<{ require_client_certificate?: { value?: boolean } | boolean }> };
}

/** What serves one port: the mode and the HCM its chains share. */
export interface InboundPort {
  /** The listener (for error messages and config dumps). */
  readonly listener: string;
  readonly mode: InboundMtlsMode;
  /** The HTTP connection manager of the port's chains, when they have one. */
  readonly hcm: InboundHttpConnectionManager | undefined;
  /** Field path of that HCM in the listener (`filter_chains[i].filters[j]`), for errors. */
  readonly path: string;
  /** Names this listener and chain set across snapshots (filter state is kept under it). */
  readonly key: string;
}

/**
 * Is `listener` an inbound listener? meshlet's `virtual_inbound` and istiod's
 * `xds.istio.io/grpc/lds/inbound/…` by name; any other name (a bootstrap's
 * `server_listener_resource_name_template` may make one) by gRFC A36's shape:
 * no api_listener, and an HCM whose inline route answers with
 * `non_forwarding_action` (the server itself handles the request). A
 * sidecar's `virtualInbound`, full of network filters, is not one.
 */
export function isInboundListener(listener: Listener): boolean {
  const name = listener.name ?? '';
  if (name === VIRTUAL_INBOUND || name.startsWith(GRPC_INBOUND_LISTENER_PREFIX)) return true;
  if ((listener as { api_listener?: unknown }).api_listener !== undefined) return false;
  for (const chain of (listener.filter_chains ?? []) as FilterChain[]) {
    const hcm = hcmOf(chain)?.[0];
    for (const vh of hcm?.route_config?.virtual_hosts ?? []) {
      for (const route of vh.routes ?? []) if ((route as { non_forwarding_action?: unknown }).non_forwarding_action !== undefined) return true;
    }
  }
  return false;
}

function portOf(value: { value: number } | number | undefined): number | undefined {
  if (value === undefined || value === null) return undefined;
  return typeof value === 'number' ? value : Number(value.value);
}

function hcmOf(chain: FilterChain): [InboundHttpConnectionManager, number] | undefined {
  const filters = chain.filters ?? [];
  for (let j = 0; j < filters.length; j++) {
    const f = filters[j]!;
    if (f.typed_config?.['@type'] === TYPE_URL.httpConnectionManager) return [f.typed_config as unknown as InboundHttpConnectionManager, j];
  }
  return undefined;
}

/**
 * The mode and HCM of a set of filter chains (those that apply to one port).
 * @throws MeshConfigError for a TLS chain meshlet cannot serve, or chains with different HTTP filters.
 */
export function compileInboundChains(listener: string, chains: readonly FilterChain[], paths: readonly string[]): InboundPort {
  let tls = false;
  let plain = false;
  let hcm: InboundHttpConnectionManager | undefined;
  let path = paths[0] ?? 'filter_chains';
  let filters: string | undefined;
  chains.forEach((chain, i) => {
    const socket = chain.transport_socket?.typed_config;
    if (socket === undefined) {
      plain = true;
    } else {
      if (socket['@type'] !== TYPE_URL.downstreamTls) throw new MeshConfigError('Listener', listener, `${paths[i]}.transport_socket`, `transport socket ${String(socket['@type'])} is not supported inbound`);
      const require = socket.require_client_certificate;
      if ((typeof require === 'boolean' ? require : require?.value) !== true) {
        throw new MeshConfigError('Listener', listener, `${paths[i]}.transport_socket.typed_config.require_client_certificate`, 'inbound TLS without a client certificate is not supported: meshlet serves mutual TLS (STRICT/PERMISSIVE) or plaintext');
      }
      tls = true;
    }
    const found = hcmOf(chain);
    const own = found?.[0];
    const key = JSON.stringify(own?.http_filters ?? null);
    if (filters !== undefined && key !== filters) {
      throw new MeshConfigError('Listener', listener, `${paths[i]}.filters`, 'filter chains of one port must carry the same HTTP filters (meshlet applies one inbound chain per port, whatever the transport)');
    }
    filters = key;
    if (hcm === undefined && found !== undefined) {
      hcm = own;
      path = `${paths[i]}.filters[${found[1]}]`;
    }
  });
  const mode: InboundMtlsMode = tls && plain ? 'PERMISSIVE' : tls ? 'STRICT' : 'DISABLE';
  return { listener, mode, hcm, path, key: `${listener}#${paths.join(',')}` };
}

/** The inbound listeners of one snapshot, resolved per port on demand (and cached). */
export class InboundListeners {
  /** istiod-style listeners by their address port. */
  private readonly byPort = new Map<number, Listener>();
  /** A listener for every port (`virtual_inbound`, or an inbound listener without a port). */
  private readonly wildcard: Listener | undefined;
  private readonly resolved = new Map<number | undefined, InboundPort | undefined>();

  constructor(resources: EnvoyResources) {
    let wildcard: Listener | undefined;
    for (const l of resources.listeners) {
      if (!isInboundListener(l)) continue;
      const port = (l.address as { socket_address?: { port_value?: number } } | undefined)?.socket_address?.port_value;
      if (l.name === VIRTUAL_INBOUND || port === undefined || port === 0) wildcard ??= l;
      else if (!this.byPort.has(port)) this.byPort.set(port, l);
    }
    this.wildcard = wildcard;
  }

  /** True when the snapshot has no inbound listener at all. */
  get empty(): boolean {
    return this.wildcard === undefined && this.byPort.size === 0;
  }

  /**
   * What serves `port` (undefined: the workload's default — the wildcard
   * listener's port-independent chains, else the lowest-numbered per-port listener).
   * @throws MeshConfigError when the chains cannot be served.
   */
  forPort(port: number | undefined): InboundPort | undefined {
    if (this.resolved.has(port)) return this.resolved.get(port);
    const result = this.resolve(port);
    this.resolved.set(port, result);
    return result;
  }

  /** Every port the snapshot's listeners name, and undefined for the default. */
  ports(): Array<number | undefined> {
    const out = new Set<number | undefined>([undefined, ...this.byPort.keys()]);
    for (const chain of (this.wildcard?.filter_chains ?? []) as FilterChain[]) {
      const p = portOf(chain.filter_chain_match?.destination_port);
      if (p !== undefined) out.add(p);
    }
    return [...out];
  }

  /** Resolves every port (see {@link ports}), so a snapshot is checked whole when applied. */
  validate(): void {
    for (const port of this.ports()) this.forPort(port);
  }

  /** The mTLS mode for connections to `port`. */
  modeFor(port: number | undefined): InboundMtlsMode {
    return this.forPort(port)?.mode ?? DEFAULT_INBOUND_MODE;
  }

  private resolve(port: number | undefined): InboundPort | undefined {
    // A port no listener names (or the default, undefined) falls back to the wildcard listener, else to
    // the lowest-numbered per-port one: istiod writes the same RBAC filters on every port, and an
    // unnamed port must not go unguarded.
    const listener = (port !== undefined ? this.byPort.get(port) : undefined)
      ?? this.wildcard
      ?? (this.byPort.size > 0 ? this.byPort.get(Math.min(...this.byPort.keys())) : undefined);
    if (listener === undefined) return undefined;
    const chains = (listener.filter_chains ?? []) as FilterChain[];
    const indexed = chains.map((chain, i) => ({ chain, i, port: portOf(chain.filter_chain_match?.destination_port) }));
    // Envoy's filter chain match: chains for the exact destination port win over port-less ones.
    let picked = port === undefined ? [] : indexed.filter((c) => c.port === port);
    if (picked.length === 0) picked = indexed.filter((c) => c.port === undefined);
    if (picked.length === 0) return undefined;
    return compileInboundChains(listener.name, picked.map((c) => c.chain), picked.map((c) => `filter_chains[${c.i}]`));
  }
}

const cache = new WeakMap<EnvoyResources, InboundListeners>();

/** The inbound listeners of a set of resources (one instance per resources object). */
export function inboundListenersOf(resources: EnvoyResources): InboundListeners {
  let l = cache.get(resources);
  if (l === undefined) cache.set(resources, (l = new InboundListeners(resources)));
  return l;
}
