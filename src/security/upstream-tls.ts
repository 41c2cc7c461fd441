/**
 * Reads a cluster's transport socket (as src/config/translate-tls.ts or
 * istiod writes it) for one endpoint and reduces it to what a connection
 * needs: plaintext, ISTIO_MUTUAL with the workload identity, or TLS to a
 * non-mesh server. `transport_socket_matches` are matched against the
 * endpoint's `envoy.transport_socket_match` metadata, first match wins, as
 * Envoy does; nothing matching falls back to `transport_socket`.
 * Runs once per (cluster, endpoint) when a pool is picked, never per request.
 */
import type { PeerCertificate } from 'node:tls';
import { checkServerIdentity as defaultCheckServerIdentity } from 'node:tls';
import type { Cluster, ClusterLoadAssignment } from '../config/envoy.js';
import { fromStruct, type ProtoStruct } from '../config/struct.js';
import { uriSans } from './certificates.js';
import { tryParseSpiffeId } from './identity.js';

/** How to connect to one endpoint. `key` identifies the settings (pools and channels are shared by key). */
export type UpstreamTls =
  | { readonly kind: 'plaintext'; readonly key: 'plaintext' }
  | {
    readonly kind: 'istio';
    readonly key: string;
    /** SAN matchers the peer's SPIFFE id must satisfy; empty: any id of the trust domain. */
    readonly sans: readonly SanMatcher[];
    readonly sni: string | undefined;
    /** Chosen by auto-mTLS (a transport_socket_match) rather than an explicit DestinationRule. */
    readonly auto: boolean;
  }
  | {
    readonly kind: 'tls';
    readonly key: string;
    readonly sans: readonly SanMatcher[];
    readonly sni: string | undefined;
    /** False when the context has no validation context (insecureSkipVerify). */
    readonly verify: boolean;
    /** Trusted CA file; undefined: the platform's roots. */
    readonly caFile: string | undefined;
    readonly certFile: string | undefined;
    readonly keyFile: string | undefined;
  };

/** Envoy StringMatcher subset used for SANs. */
export interface SanMatcher {
  exact?: string;
  prefix?: string;
  suffix?: string;
  contains?: string;
}

/** The plaintext profile (shared). */
export const PLAINTEXT: UpstreamTls = Object.freeze({ kind: 'plaintext', key: 'plaintext' });

const SYSTEM_ROOTS_FILE = '/etc/ssl/certs/ca-certificates.crt';
const TLS_SOCKET = 'envoy.transport_sockets.tls';
const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const ROOT_CERT_NAME = 'ROOTCA';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (typeof v === 'object' && v !== null ? v as Obj : undefined);

/** Struct in proto object form (`{ fields }`) or already plain. */
function plain(v: unknown): Obj {
  const o = obj(v);
  if (!o) return {};
  return 'fields' in o ? fromStruct(o as ProtoStruct) : o;
}

/** Keeps the matcher's pattern only (decoded protos also carry the oneof name). */
function sanMatcher(m: Obj): SanMatcher {
  for (const k of ['exact', 'prefix', 'suffix', 'contains'] as const) if (typeof m[k] === 'string') return { [k]: m[k] };
  return {}; // safe_regex and friends: matches nothing, so the handshake fails closed
}

function sanMatchers(validation: Obj | undefined): SanMatcher[] {
  const out: SanMatcher[] = [];
  for (const m of (validation?.match_subject_alt_names as Obj[] | undefined) ?? []) out.push(sanMatcher(m));
  for (const t of (validation?.match_typed_subject_alt_names as Obj[] | undefined) ?? []) {
    const matcher = obj(t.matcher);
    if (matcher) out.push(sanMatcher(matcher));
  }
  return out;
}

function filename(source: unknown): string | undefined {
  const f = obj(source)?.filename;
  return typeof f === 'string' && f.length > 0 ? f : undefined;
}

/**
 * Decodes one transport socket. Returns an Error for a TLS context meshlet
 * cannot honour (so the caller fails the connection rather than going plaintext).
 */
export function decodeTransportSocket(socket: { name?: string; typed_config?: Obj } | undefined, auto = false): UpstreamTls | Error {
  if (!socket || (socket.name !== TLS_SOCKET && socket.typed_config?.['@type'] !== UPSTREAM_TLS)) return PLAINTEXT;
  const ctx = socket.typed_config;
  if (!ctx || ctx['@type'] !== UPSTREAM_TLS) return new Error(`transport socket ${String(socket.name)} has no UpstreamTlsContext`);
  const common = obj(ctx.common_tls_context) ?? {};
  const combined = obj(common.combined_validation_context);
  const validation = obj(combined?.default_validation_context) ?? obj(common.validation_context);
  const rootByProvider = obj(validation?.ca_certificate_provider_instance) ?? obj(combined?.validation_context_certificate_provider_instance);
  const rootBySds = obj(combined?.validation_context_sds_secret_config) ?? obj(common.validation_context_sds_secret_config);
  const identityByProvider = obj(common.tls_certificate_provider_instance) ?? obj(common.tls_certificate_certificate_provider_instance);
  const identityBySds = ((common.tls_certificate_sds_secret_configs as unknown[] | undefined) ?? []).length > 0;
  const sni = typeof ctx.sni === 'string' && ctx.sni.length > 0 ? ctx.sni : undefined;
  const sans = sanMatchers(validation);
  const sansKey = JSON.stringify(sans);
  // The workload's own certificate and the mesh root: ISTIO_MUTUAL (istiod's SDS "default"/"ROOTCA" or provider instances).
  const meshRoot = rootByProvider !== undefined || (rootBySds !== undefined && rootBySds.name === ROOT_CERT_NAME);
  if (meshRoot && (identityByProvider !== undefined || identityBySds)) {
    return { kind: 'istio', key: `istio|${sni ?? ''}|${sansKey}`, sans, sni, auto };
  }
  if (meshRoot || identityByProvider !== undefined || identityBySds) return new Error('UpstreamTlsContext mixes the mesh identity with other certificates; meshlet supports ISTIO_MUTUAL, SIMPLE and MUTUAL');
  const certs = (common.tls_certificates as Obj[] | undefined) ?? [];
  const certFile = filename(certs[0]?.certificate_chain);
  const keyFile = filename(certs[0]?.private_key);
  if (certs.length > 0 && (certFile === undefined || keyFile === undefined)) return new Error('UpstreamTlsContext tls_certificates must name certificate_chain and private_key files');
  const ca = filename(validation?.trusted_ca);
  const caFile = ca === SYSTEM_ROOTS_FILE ? undefined : ca;
  const verify = validation !== undefined;
  return { kind: 'tls', key: `tls|${sni ?? ''}|${sansKey}|${verify}|${caFile ?? ''}|${certFile ?? ''}|${keyFile ?? ''}`, sans, sni, verify, caFile, certFile, keyFile };
}

function endpointMatchMetadata(assignment: ClusterLoadAssignment | undefined, hostId: string): Obj {
  for (const locality of assignment?.endpoints ?? []) {
    for (const lbe of locality.lb_endpoints ?? []) {
      const sa = lbe.endpoint.address.socket_address;
      if (`${sa.address}:${sa.port_value}` === hostId) return plain(lbe.metadata?.filter_metadata?.['envoy.transport_socket_match']);
    }
  }
  return {};
}

/**
 * The connection settings for `hostId` (`address:port`) in a cluster. The
 * assignment is the cluster's ClusterLoadAssignment (EDS) or its inline one.
 */
export function upstreamTlsFor(cluster: Cluster, assignment: ClusterLoadAssignment | undefined, hostId: string): UpstreamTls | Error {
  const matches = (cluster as Cluster & { transport_socket_matches?: Array<{ match?: unknown; transport_socket?: { name?: string; typed_config?: Obj } }> }).transport_socket_matches;
  if (matches && matches.length > 0) {
    const meta = endpointMatchMetadata(assignment ?? cluster.load_assignment, hostId);
    for (const m of matches) {
      const want = plain(m.match);
      let ok = true;
      for (const k in want) if (meta[k] !== want[k]) { ok = false; break; }
      if (ok) return decodeTransportSocket(m.transport_socket, true);
    }
  }
  return decodeTransportSocket(cluster.transport_socket as { name?: string; typed_config?: Obj } | undefined);
}

function sanMatches(m: SanMatcher, value: string): boolean {
  if (m.exact !== undefined) return value === m.exact;
  if (m.prefix !== undefined) return value.startsWith(m.prefix);
  if (m.suffix !== undefined) return value.endsWith(m.suffix);
  if (m.contains !== undefined) return value.includes(m.contains);
  return false;
}

function identityError(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_MESH_PEER_IDENTITY' });
}

/**
 * `checkServerIdentity` for a profile. ISTIO_MUTUAL: a URI SAN that is a
 * SPIFFE id of `trustDomain` and satisfies a SAN matcher (any, when none).
 * TLS: a SAN (DNS or URI) matching one matcher, else the hostname/SNI check.
 */
export function serverIdentityCheck(tls: Exclude<UpstreamTls, { kind: 'plaintext' }>, trustDomain: string | undefined): (host: string, cert: PeerCertificate) => Error | undefined {
  const sans = tls.sans;
  if (tls.kind === 'istio') {
    return (_host, cert) => {
      const uris = uriSans(cert.subjectaltname);
      for (const uri of uris) {
        if (typeof tryParseSpiffeId(uri, trustDomain !== undefined ? { trustDomain } : {}) === 'string') continue;
        if (sans.length === 0) return undefined;
        for (const m of sans) if (sanMatches(m, uri)) return undefined;
      }
      return identityError(`peer SPIFFE identity [${uris.join(', ')}] is not one the destination may run as (${sans.length > 0 ? sans.map((s) => s.exact ?? s.prefix ?? s.suffix ?? s.contains).join(', ') : `trust domain ${trustDomain}`})`);
    };
  }
  if (sans.length === 0) return (host, cert) => defaultCheckServerIdentity(tls.sni ?? host, cert);
  return (_host, cert) => {
    const values = (cert.subjectaltname ?? '').split(', ').map((e) => e.slice(e.indexOf(':') + 1));
    for (const v of values) for (const m of sans) if (sanMatches(m, v)) return undefined;
    return identityError(`peer certificate SANs [${cert.subjectaltname ?? ''}] match none of the expected subjectAltNames`);
  };
}
