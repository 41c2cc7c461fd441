/**
 * Istio `Gateway` + the VirtualServices bound to it → the Envoy resources an
 * ingress gateway runs on, named as istiod names them: one Listener
 * `0.0.0.0_<port>` per server port (its HCM asks RDS for `http.<port>`), and
 * one RouteConfiguration per port with a virtual host `<host>:<port>` per
 * host a bound VirtualService serves there.
 */
import { MeshConfigError } from '../errors.js';
import type { Any, HttpConnectionManager, Listener, RouteConfiguration, VirtualHost } from './envoy.js';
import { TYPE_URL } from './envoy.js';
import type { HTTPRoute, IstioResource, VirtualServiceSpec } from './istio-types.js';
import { expandHost, labelsMatch } from './registry.js';
import type { ProxyInfo } from './translate.js';
import { translateHttpRoute, type ClusterNamer } from './translate-routes.js';
import { translateGatewayApiRoute } from './gateway-api/envoy-patch.js';
import { usesGatewaySemantics } from './gateway-api/mesh-routes.js';

/** The labels of Istio's default ingress gateway workload (`istio: ingressgateway`). */
export const DEFAULT_GATEWAY_LABELS: Readonly<Record<string, string>> = Object.freeze({ istio: 'ingressgateway' });

/** What {@link translateGateway} produces; the caller merges it into the proxy's resources. */
export interface GatewayTranslation {
  listeners: Listener[];
  routes: RouteConfiguration[];
}

/** The subset of Istio's Gateway spec the translator reads (validated by istio-schemas). */
interface GatewayServer {
  port: { number: number; protocol?: string; name?: string };
  hosts: string[];
  tls?: { mode?: string; serverCertificate?: string; privateKey?: string; caCertificates?: string; credentialName?: string; httpsRedirect?: boolean; subjectAltNames?: string[] };
  name?: string;
}

interface GatewaySpec {
  selector?: Record<string, string>;
  servers?: GatewayServer[];
}

/** One Gateway server, resolved: which gateway, which port, which hosts (with namespace constraints). */
interface BoundServer {
  gateway: string;
  port: number;
  hosts: Array<{ namespace: string; host: string }>;
}

/** A port's listener and route table under construction. */
interface PortState {
  routeConfig: string;
  tls: boolean;
  chains: Array<Record<string, unknown>>;
  vhosts: Map<string, VirtualHost>;
  /** `<vs>\0<vhost>` pairs already merged, so a VirtualService bound twice adds its routes once */
  merged: Set<string>;
}

const HTTP_PROTOCOLS = new Set(['HTTP', 'HTTPS', 'HTTP2', 'GRPC', 'GRPC-WEB']);

/**
 * Translates every Gateway whose `selector` matches `proxy.labels` and the
 * VirtualServices bound to it (`gateways: [<ns>/<name> | <name>]`). `namer`
 * resolves (and makes exist) the cluster of a destination, as for sidecars.
 * HTTP servers on a port share the route table `http.<port>`; TLS servers on
 * a port share `https.<port>` (Istio keeps one per server and picks it by SNI;
 * one Node server per port picks the certificate by SNI instead).
 */
export function translateGateway(
  resources: readonly IstioResource[],
  proxy: ProxyInfo,
  namer: (vsNamespace: string, port: number) => ClusterNamer,
): GatewayTranslation {
  const servers = new Map<string, BoundServer[]>();
  const ports = new Map<number, PortState>();

  for (const r of resources) {
    if (r.kind !== 'Gateway') continue;
    const spec = r.spec as GatewaySpec;
    if (!labelsMatch(spec.selector, proxy.labels)) continue;
    const key = `${r.metadata.namespace}/${r.metadata.name}`;
    const bound: BoundServer[] = [];
    (spec.servers ?? []).forEach((server, i) => {
      const protocol = (server.port.protocol ?? 'HTTP').toUpperCase();
      if (!HTTP_PROTOCOLS.has(protocol)) return; // TCP/TLS passthrough servers are not HTTP routes
      // TLS passthrough forwards bytes by SNI (L4): accepted with a warning (support-check.ts), no port opened.
      if (server.tls?.mode === 'PASSTHROUGH' || server.tls?.mode === 'AUTO_PASSTHROUGH') return;
      const where = `spec.servers[${i}]`;
      // A Kubernetes secret meshlet cannot read is a secret that never arrives: Envoy never serves that listener, and the
      // Gateway's other servers go on (the support table warns on credentialName).
      if (server.tls?.credentialName && !(server.tls.serverCertificate && server.tls.privateKey)) return;
      const tls = terminatesTls(server, key, where);
      const port = server.port.number;
      let state = ports.get(port);
      if (!state) {
        state = { routeConfig: tls ? `https.${port}` : `http.${port}`, tls, chains: [], vhosts: new Map(), merged: new Set() };
        ports.set(port, state);
      } else if (state.tls !== tls) {
        throw new MeshConfigError('Gateway', key, `${where}.port.number`, `port ${port} mixes plain HTTP and TLS servers; one port serves one or the other`);
      }
      if (tls) state.chains.push(tlsChain(server));
      bound.push({
        gateway: key,
        port,
        hosts: server.hosts.map((h) => splitGatewayHost(h, r.metadata.namespace)),
      });
    });
    servers.set(key, bound);
  }
  if (servers.size === 0) return { listeners: [], routes: [] };

  for (const r of resources) {
    if (r.kind !== 'VirtualService') continue;
    const ns = r.metadata.namespace;
    for (const ref of r.spec.gateways ?? []) {
      const gateway = ref.includes('/') ? ref : `${ns}/${ref}`;
      const bound = servers.get(gateway);
      if (!bound) continue;
      // Gateway API routes (route-semantics gateway) are translated with their own semantics.
      const translateRoute = usesGatewaySemantics(r) ? translateGatewayApiRoute : translateHttpRoute;
      for (const server of bound) bindVirtualService(r.spec, `${ns}/${r.metadata.name}`, ns, gateway, server, ports.get(server.port)!, namer, translateRoute);
    }
  }

  const listeners: Listener[] = [];
  const routes: RouteConfiguration[] = [];
  for (const [port, state] of [...ports].sort((a, b) => a[0] - b[0])) {
    listeners.push(gatewayListener(port, state));
    routes.push({ name: state.routeConfig, virtual_hosts: [...state.vhosts.values()] });
  }
  return { listeners, routes };
}

/** Adds a VirtualService's routes to the virtual hosts of the hosts it shares with one server. */
function bindVirtualService(spec: VirtualServiceSpec, vsKey: string, ns: string, gateway: string, server: BoundServer, state: PortState, namer: (vsNamespace: string, port: number) => ClusterNamer, translateRoute: typeof translateHttpRoute): void {
  const domains = new Set<string>();
  for (const raw of spec.hosts ?? []) {
    const vsHost = expandHost(raw, ns);
    for (const allowed of server.hosts) {
      if (allowed.namespace !== '*' && allowed.namespace !== ns) continue;
      const host = intersectHosts(vsHost, allowed.host);
      if (host !== undefined) domains.add(host);
    }
  }
  if (domains.size === 0) return;
  const name = namer(ns, server.port);
  const routes = (spec.http ?? []).flatMap((http, i) => {
    const scoped = forGateway(http, gateway, ns);
    return scoped ? translateRoute(scoped, i, server.port, name) : [];
  });
  for (const host of domains) {
    const vhostName = `${host}:${server.port}`;
    const mergeKey = `${vsKey}\0${vhostName}`;
    if (state.merged.has(mergeKey)) continue;
    state.merged.add(mergeKey);
    let vhost = state.vhosts.get(vhostName);
    if (!vhost) {
      vhost = { name: vhostName, domains: host.startsWith('*') ? [host] : [host, `${host}:${server.port}`], routes: [] };
      state.vhosts.set(vhostName, vhost);
    }
    // Several VirtualServices on one host merge in order, as istiod merges them.
    vhost.routes.push(...routes);
  }
}

/**
 * A route as this gateway sees it: matches that name other gateways
 * (`match[].gateways`) are dropped; a route left with no match is skipped.
 */
function forGateway(http: HTTPRoute, gateway: string, ns: string): HTTPRoute | undefined {
  if (!http.match || !http.match.some((m) => m.gateways && m.gateways.length > 0)) return http;
  const match = http.match.filter((m) => !m.gateways || m.gateways.length === 0 || m.gateways.some((g) => (g.includes('/') ? g : `${ns}/${g}`) === gateway));
  return match.length === 0 ? undefined : { ...http, match };
}

/**
 * The host both sides accept, the more specific one: `*` and `*.example.com`
 * on either side narrow to the other side's host (Istio's gateway host
 * intersection); undefined when they are disjoint.
 */
export function intersectHosts(vsHost: string, gatewayHost: string): string | undefined {
  if (vsHost === gatewayHost) return vsHost;
  if (gatewayHost === '*') return vsHost;
  if (vsHost === '*') return gatewayHost;
  if (gatewayHost.startsWith('*.') && vsHost.endsWith(gatewayHost.slice(1))) return vsHost;
  if (vsHost.startsWith('*.') && gatewayHost.endsWith(vsHost.slice(1))) return gatewayHost;
  return undefined;
}

/** `ns/host`, `./host` (the gateway's namespace), `*\/host` or `host` (any namespace). */
function splitGatewayHost(raw: string, gatewayNamespace: string): { namespace: string; host: string } {
  const slash = raw.indexOf('/');
  if (slash === -1) return { namespace: '*', host: raw.toLowerCase() };
  const ns = raw.slice(0, slash);
  return { namespace: ns === '.' ? gatewayNamespace : ns, host: raw.slice(slash + 1).toLowerCase() };
}

/** True for a server that terminates TLS with certificate files; throws for TLS modes meshlet cannot serve. */
function terminatesTls(server: GatewayServer, gateway: string, where: string): boolean {
  const tls = server.tls;
  const mode = tls?.mode;
  if (!tls || mode === undefined) {
    if ((server.port.protocol ?? '').toUpperCase() === 'HTTPS') throw new MeshConfigError('Gateway', gateway, `${where}.tls`, 'an HTTPS server needs tls with mode SIMPLE or MUTUAL');
    return false;
  }
  if (mode !== 'SIMPLE' && mode !== 'MUTUAL') throw new MeshConfigError('Gateway', gateway, `${where}.tls.mode`, `mode ${mode} is not supported by the meshlet gateway (SIMPLE or MUTUAL)`);
  if (!tls.serverCertificate || !tls.privateKey) {
    throw new MeshConfigError('Gateway', gateway, `${where}.tls`, `serverCertificate and privateKey files are required${tls.credentialName ? ' (credentialName needs Kubernetes secrets, which meshlet does not read)' : ''}`);
  }
  if (mode === 'MUTUAL' && !tls.caCertificates) throw new MeshConfigError('Gateway', gateway, `${where}.tls.caCertificates`, 'is required for mode MUTUAL');
  return true;
}

/** A filter chain carrying the server's certificate (DownstreamTlsContext with file data sources), matched by SNI. */
function tlsChain(server: GatewayServer): Record<string, unknown> {
  const tls = server.tls!;
  const names = server.hosts.map((h) => h.slice(h.indexOf('/') + 1).toLowerCase()).filter((h) => h !== '*');
  const context: Any = {
    '@type': TYPE_URL.downstreamTls,
    common_tls_context: {
      tls_certificates: [{ certificate_chain: { filename: tls.serverCertificate }, private_key: { filename: tls.privateKey } }],
      ...(tls.caCertificates && { validation_context: { trusted_ca: { filename: tls.caCertificates } } }),
    },
    ...(tls.mode === 'MUTUAL' && { require_client_certificate: { value: true } }),
  };
  return {
    ...(names.length > 0 && { filter_chain_match: { server_names: names } }),
    transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: context },
  };
}

function gatewayListener(port: number, state: PortState): Listener {
  const hcm: HttpConnectionManager = {
    '@type': TYPE_URL.httpConnectionManager,
    stat_prefix: `outbound_0.0.0.0_${port}`,
    rds: { route_config_name: state.routeConfig, config_source: { ads: {}, resource_api_version: 'V3' } },
    http_filters: [
      { name: 'envoy.filters.http.fault', typed_config: { '@type': TYPE_URL.fault } },
      { name: 'envoy.filters.http.router', typed_config: { '@type': TYPE_URL.router } },
    ],
  };
  return {
    name: `0.0.0.0_${port}`,
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
    // The HCM sits where proxyless clients (and our xDS client) look for it; TLS rides in filter chains.
    api_listener: { api_listener: hcm },
    ...(state.chains.length > 0 && { filter_chains: state.chains }),
  };
}
