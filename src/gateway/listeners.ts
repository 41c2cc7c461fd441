/**
 * The gateway's side of the snapshot: its bound listeners (`0.0.0.0_<port>`
 * with an address) and, for TLS ports, the certificates their filter chains
 * name. Read from the Envoy resources, so embedded mode and xDS mode serve
 * the same thing.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext, type TlsOptions } from 'node:tls';
import type { Listener } from '../config/envoy.js';
import { isGatewayListener } from '../core/listener-role.js';
import type { RouteTable, Snapshot } from '../core/snapshot.js';
import { MeshConfigError } from '../errors.js';

/** One certificate a TLS gateway port serves, and the SNI names it is for (empty = default). */
export interface GatewayCertificate {
  serverNames: string[];
  certificateChain: string;
  privateKey: string;
  trustedCa?: string;
  requireClientCertificate: boolean;
}

/** A gateway listener as the gateway server needs it. */
export interface GatewayListener {
  name: string;
  port: number;
  routeConfig: string;
  /** it terminates TLS (a filter chain carries a certificate) */
  tls: boolean;
  /** the Envoy listener it came from */
  listener: Listener;
}

interface DataSource {
  filename?: string;
  inline_string?: string;
  inline_bytes?: string | Uint8Array;
}

interface TlsChain {
  filter_chain_match?: { server_names?: string[] };
  transport_socket?: { typed_config?: {
    common_tls_context?: {
      tls_certificates?: Array<{ certificate_chain?: DataSource; private_key?: DataSource }>;
      validation_context?: { trusted_ca?: DataSource };
    };
    require_client_certificate?: { value?: boolean } | boolean;
  } };
}

/** The listeners with an address whose HCM names a route configuration, by port. */
export function gatewayListeners(snapshot: Snapshot): GatewayListener[] {
  const out: GatewayListener[] = [];
  for (const l of snapshot.resources.listeners) {
    const port = l.address?.socket_address.port_value;
    const routeConfig = l.api_listener?.api_listener.rds?.route_config_name;
    // istiod's outbound listeners carry the service VIP as their address: not a port to serve.
    if (port === undefined || !routeConfig || !isGatewayListener(l)) continue;
    const tls = ((l.filter_chains ?? []) as TlsChain[]).some((c) => c.transport_socket?.typed_config?.common_tls_context?.tls_certificates?.length);
    out.push({ name: l.name, port: Number(port), routeConfig, tls, listener: l });
  }
  return out.sort((a, b) => a.port - b.port);
}

/** Reads the certificates a TLS listener's filter chains name (files are read now). */
export function listenerCertificates(l: Listener): GatewayCertificate[] {
  const out: GatewayCertificate[] = [];
  for (const chain of (l.filter_chains ?? []) as TlsChain[]) {
    const ctx = chain.transport_socket?.typed_config;
    const cert = ctx?.common_tls_context?.tls_certificates?.[0];
    if (!cert?.certificate_chain || !cert.private_key) continue;
    const requireClient = ctx!.require_client_certificate;
    const ca = ctx!.common_tls_context!.validation_context?.trusted_ca;
    out.push({
      serverNames: chain.filter_chain_match?.server_names ?? [],
      certificateChain: readSource(cert.certificate_chain, l.name),
      privateKey: readSource(cert.private_key, l.name),
      ...(ca && { trustedCa: readSource(ca, l.name) }),
      requireClientCertificate: typeof requireClient === 'boolean' ? requireClient : requireClient?.value === true,
    });
  }
  return out;
}

function readSource(source: DataSource, listener: string): string {
  if (source.inline_string !== undefined) return source.inline_string;
  if (source.inline_bytes !== undefined) return Buffer.from(source.inline_bytes as string, typeof source.inline_bytes === 'string' ? 'base64' : undefined).toString('utf8');
  if (!source.filename) throw new MeshConfigError('Listener', listener, 'filter_chains.transport_socket', 'a certificate data source needs filename or inline data');
  try {
    return readFileSync(source.filename, 'utf8');
  } catch (err) {
    throw new MeshConfigError('Listener', listener, 'filter_chains.transport_socket', `cannot read ${source.filename}: ${(err as Error).message}`);
  }
}

/**
 * node:https options for a TLS port: the first certificate is the default,
 * the others are chosen by SNI (exact name, then `*.suffix`).
 */
export function httpsOptions(certs: readonly GatewayCertificate[]): TlsOptions {
  const first = certs[0]!;
  const contexts = new Map<GatewayCertificate, SecureContext>();
  const contextFor = (c: GatewayCertificate): SecureContext => {
    let ctx = contexts.get(c);
    if (!ctx) contexts.set(c, (ctx = createSecureContext({ cert: c.certificateChain, key: c.privateKey, ...(c.trustedCa && { ca: c.trustedCa }) })));
    return ctx;
  };
  const requireClient = certs.some((c) => c.requireClientCertificate);
  return {
    cert: first.certificateChain,
    key: first.privateKey,
    ...(first.trustedCa && { ca: first.trustedCa }),
    ...(requireClient && { requestCert: true, rejectUnauthorized: true }),
    SNICallback: certs.length < 2 ? undefined : (servername, cb) => {
      const name = servername.toLowerCase();
      const match = certs.find((c) => c.serverNames.includes(name))
        ?? certs.find((c) => c.serverNames.some((n) => n.startsWith('*.') && name.endsWith(n.slice(1))))
        ?? first;
      cb(null, contextFor(match));
    },
  };
}

/** The route tables a set of served listeners resolves to in one snapshot, in port order. */
export function routeTables(snapshot: Snapshot, servedPorts: ReadonlySet<number> | undefined, tls: boolean): RouteTable[] {
  const out: RouteTable[] = [];
  for (const l of gatewayListeners(snapshot)) {
    if (servedPorts ? !servedPorts.has(l.port) : l.tls !== tls) continue;
    const table = snapshot.routeTable(l.routeConfig);
    if (table) out.push(table);
  }
  return out;
}
