/**
 * DestinationRule `trafficPolicy.tls` → the Envoy cluster's transport socket,
 * as istiod writes it, and Istio's auto-mTLS:
 *  - ISTIO_MUTUAL: an UpstreamTlsContext whose certificate and root are the
 *    workload's own ("default" / "ROOTCA" certificate-provider instances, the
 *    form istiod's gRPC generator uses and @grpc/grpc-js-xds accepts), the
 *    peer checked against the SPIFFE ids the destination may run as.
 *  - SIMPLE / MUTUAL: TLS to a non-mesh server, CA and client certificate
 *    from files, SNI defaulting to the host.
 *  - DISABLE: plaintext.
 *  - no tls (auto-mTLS): `transport_socket_matches` — mTLS to endpoints whose
 *    metadata `envoy.transport_socket_match.tlsMode` is `istio` (a workload
 *    labelled `security.istio.io/tlsMode: istio` whose PeerAuthentication is
 *    not DISABLE), plaintext to the rest.
 */
import type { Any, Cluster } from './envoy.js';
import { TYPE_URL } from './envoy.js';
import type { ClientTLSSettings, IstioResource } from './istio-types.js';
import type { Service, ServiceEndpoint } from './registry.js';
import { toStruct } from './struct.js';
import { peerAuthenticationFor } from '../security/peer-authentication.js';

/** Envoy's transport socket names. */
export const TLS_TRANSPORT_SOCKET = 'envoy.transport_sockets.tls';
export const RAW_BUFFER_TRANSPORT_SOCKET = 'envoy.transport_sockets.raw_buffer';
export const RAW_BUFFER_TYPE_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';
/** Endpoint metadata namespace Envoy matches `transport_socket_matches` against. */
export const TRANSPORT_SOCKET_MATCH = 'envoy.transport_socket_match';
/** The workload label that marks a meshed endpoint (Istio's injector sets it on every sidecar pod). */
export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';
/** Certificate-provider instance names for the workload identity (Istio's gRPC bootstrap). */
export const IDENTITY_CERT_INSTANCE = { instance_name: 'default', certificate_name: 'default' } as const;
export const ROOT_CERT_INSTANCE = { instance_name: 'default', certificate_name: 'ROOTCA' } as const;
/**
 * Istio's system trust bundle path: a validation context naming it means
 * "the platform's CAs" (meshlet uses node's bundled roots).
 */
export const SYSTEM_ROOTS_FILE = '/etc/ssl/certs/ca-certificates.crt';

/** One entry of `Cluster.transport_socket_matches`. */
export interface TransportSocketMatch {
  name: string;
  match?: Record<string, unknown>;
  transport_socket: { name: string; typed_config?: Any };
}

/** A cluster with its transport socket fields (envoy.ts keeps `transport_socket` only). */
export type TlsCluster = Cluster & { transport_socket_matches?: TransportSocketMatch[] };

/** The transport-socket fields to merge into a cluster. */
export type ClusterTransportSocket = Pick<TlsCluster, 'transport_socket' | 'transport_socket_matches'>;

/** What {@link UpstreamTlsTranslator.cluster} needs to know about one cluster. */
export interface UpstreamTlsInput {
  /** The merged DestinationRule tls (subset and port-level applied); undefined when none. */
  tls: ClientTLSSettings | undefined;
  service: Service | undefined;
  hostname: string;
  port: number;
  subset: string | undefined;
  /** The endpoints the cluster will carry. */
  endpoints: readonly ServiceEndpoint[];
}

/** `outbound_.<port>_.<subset>_.<host>`, the SNI istiod sets for ISTIO_MUTUAL. */
export function istioMutualSni(hostname: string, port: number, subset: string | undefined): string {
  return `outbound_.${port}_.${subset ?? ''}_.${hostname}`;
}

/** The UpstreamTlsContext for ISTIO_MUTUAL. */
export function istioMutualContext(sans: readonly string[], sni: string | undefined): Any {
  return {
    '@type': TYPE_URL.upstreamTls,
    common_tls_context: {
      tls_certificate_provider_instance: { ...IDENTITY_CERT_INSTANCE },
      combined_validation_context: {
        default_validation_context: {
          ca_certificate_provider_instance: { ...ROOT_CERT_INSTANCE },
          ...(sans.length > 0 && { match_subject_alt_names: sans.map((exact) => ({ exact })) }),
        },
      },
      alpn_protocols: ['istio-peer-exchange', 'istio'],
    },
    ...(sni !== undefined && { sni }),
  };
}

const isIp = (host: string): boolean => /^[\d.]+$/.test(host) || host.includes(':');

function simpleContext(tls: ClientTLSSettings, hostname: string): Any {
  const sni = tls.sni ?? (hostname.includes('*') || isIp(hostname) ? undefined : hostname);
  const sans = tls.subjectAltNames ?? [];
  const validation = tls.insecureSkipVerify === true
    ? undefined
    : { trusted_ca: { filename: tls.caCertificates ?? SYSTEM_ROOTS_FILE }, ...(sans.length > 0 && { match_subject_alt_names: sans.map((exact) => ({ exact })) }) };
  return {
    '@type': TYPE_URL.upstreamTls,
    common_tls_context: {
      ...(tls.mode === 'MUTUAL' && tls.clientCertificate !== undefined && tls.privateKey !== undefined && {
        tls_certificates: [{ certificate_chain: { filename: tls.clientCertificate }, private_key: { filename: tls.privateKey } }],
      }),
      ...(validation && { validation_context: validation }),
    },
    ...(sni !== undefined && { sni }),
  };
}

/**
 * Translates client TLS for the clusters of one proxy. Create one per
 * translation (it resolves destination PeerAuthentications from the same
 * resources).
 */
export class UpstreamTlsTranslator {
  private readonly resources: readonly IstioResource[];
  private readonly trustDomain: string;

  /** Identifies what besides the DestinationRule and service shapes the output (PeerAuthentications): append it to translation cache keys. */
  readonly cacheKey: string;

  constructor(resources: readonly IstioResource[], options: { trustDomain?: string } = {}) {
    this.resources = resources;
    this.trustDomain = options.trustDomain ?? 'cluster.local';
    const pas = resources.filter((r) => r.kind === 'PeerAuthentication');
    this.cacheKey = pas.length === 0 ? '' : JSON.stringify(pas.map((r) => [r.metadata, r.spec]));
  }

  /** The SPIFFE ids a service may run as: its subjectAltNames, else its endpoints' service accounts. */
  serviceSans(service: Service | undefined): string[] {
    if (!service) return [];
    if (service.subjectAltNames.length > 0) return [...service.subjectAltNames];
    const out = new Set<string>();
    for (const e of service.endpoints) if (e.serviceAccount) out.add(`spiffe://${this.trustDomain}/ns/${e.namespace}/sa/${e.serviceAccount}`);
    return [...out].sort();
  }

  /** True when the endpoint is a meshed workload that accepts mTLS on `port` (auto-mTLS). */
  isMeshed(endpoint: ServiceEndpoint, port: number): boolean {
    if (endpoint.labels[TLS_MODE_LABEL] !== 'istio') return false;
    const pa = peerAuthenticationFor(this.resources, { namespace: endpoint.namespace, labels: endpoint.labels });
    return pa.modeFor(port) !== 'DISABLE';
  }

  /** Endpoint `filter_metadata` entries for auto-mTLS (merge next to `istio`); empty for plaintext endpoints. */
  endpointMetadata(endpoint: ServiceEndpoint, port: number): Record<string, unknown> {
    return this.isMeshed(endpoint, port) ? { [TRANSPORT_SOCKET_MATCH]: toStruct({ tlsMode: 'istio' }) as Record<string, unknown> } : {};
  }

  /** The transport-socket fields of one cluster (empty for plaintext). */
  cluster(input: UpstreamTlsInput, endpointPortOf: (e: ServiceEndpoint) => number = () => input.port): ClusterTransportSocket {
    const { tls, hostname, port, subset } = input;
    switch (tls?.mode) {
      case 'DISABLE':
        return {};
      case 'ISTIO_MUTUAL': {
        const sans = tls.subjectAltNames ?? this.serviceSans(input.service);
        return { transport_socket: { name: TLS_TRANSPORT_SOCKET, typed_config: istioMutualContext(sans, tls.sni ?? istioMutualSni(hostname, port, subset)) } };
      }
      case 'SIMPLE':
      case 'MUTUAL':
        return { transport_socket: { name: TLS_TRANSPORT_SOCKET, typed_config: simpleContext(tls, hostname) } };
      default: {
        // The label test first: it is what isMeshed checks first, without computing the port.
        if (!input.endpoints.some((e) => e.labels[TLS_MODE_LABEL] === 'istio' && this.isMeshed(e, endpointPortOf(e)))) return {};
        const sans = tls?.subjectAltNames ?? this.serviceSans(input.service);
        return {
          transport_socket_matches: [
            { name: 'tlsMode-istio', match: toStruct({ tlsMode: 'istio' }) as Record<string, unknown>, transport_socket: { name: TLS_TRANSPORT_SOCKET, typed_config: istioMutualContext(sans, istioMutualSni(hostname, port, subset)) } },
            { name: 'tlsMode-disabled', match: {}, transport_socket: { name: RAW_BUFFER_TRANSPORT_SOCKET, typed_config: { '@type': RAW_BUFFER_TYPE_URL } } },
          ],
        };
      }
    }
  }
}
