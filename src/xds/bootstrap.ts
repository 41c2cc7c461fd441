/**
 * Where the xDS server is: an explicit `{ server: 'host:port' }`, or a gRPC
 * xDS bootstrap (the same JSON file @grpc/grpc-js-xds and istio-agent use),
 * from GRPC_XDS_BOOTSTRAP (a path), GRPC_XDS_BOOTSTRAP_CONFIG (inline JSON) or
 * MESHLET_XDS (a path, inline JSON, or a bare `host:port`).
 */
import { readFileSync } from 'node:fs';
import { MeshConfigError } from '../errors.js';
import type { BootstrapTlsConfig } from './channel-credentials.js';
import type { XdsNode } from './node.js';

/** A `file_watcher` certificate provider (gRFC A29; istio's grpc-agent bootstrap writes one named `default`). */
export interface FileWatcherProvider {
  certificateFile: string;
  privateKeyFile: string;
  caCertificateFile: string;
  /** How often the files are re-read, in ms (the bootstrap's `refresh_interval`; istio writes 15 min). */
  refreshIntervalMs?: number;
}

/** The resolved connection target. */
export interface XdsBootstrap {
  /** A grpc-js target: `host:port`, `dns:///host:port`, `unix:/path`. */
  server: string;
  /** The first channel_creds type meshlet supports (gRFC A27): `insecure` (plaintext) or `tls`. */
  channelCreds: 'insecure' | 'tls';
  /** The `tls` config (gRFC A65: CA, certificate and key files); absent: system roots, no client certificate. */
  tls?: BootstrapTlsConfig;
  /** A token file from `call_creds` `jwt_token_file` (gRFC A97), sent as `authorization: Bearer` on TLS channels. */
  tokenFile?: string;
  /** `server_features` of the server (`xds_v3`, `ignore_resource_deletion`…). */
  serverFeatures: readonly string[];
  /** `certificate_providers` by instance name; only the `file_watcher` plugin is supported. */
  certificateProviders?: Readonly<Record<string, FileWatcherProvider>>;
  /** `server_listener_resource_name_template` (istio: `xds.istio.io/grpc/lds/inbound/%s`). */
  serverListenerResourceNameTemplate?: string;
  /** Node fields from the bootstrap; merged over the workload's own node. */
  node?: Partial<XdsNode>;
}

/** What a caller may pass: a server address, a bootstrap file path, or nothing (env). */
export interface XdsBootstrapOptions {
  server?: string;
  bootstrap?: string;
}

interface BootstrapFile {
  xds_servers?: Array<{
    server_uri?: string;
    channel_creds?: Array<{ type?: string; config?: unknown }>;
    call_creds?: Array<{ type?: string; config?: unknown }>;
    server_features?: unknown;
  }>;
  node?: Partial<XdsNode> & { metadata?: unknown };
  certificate_providers?: Record<string, { plugin_name?: string; config?: unknown }>;
  server_listener_resource_name_template?: unknown;
}

const SUPPORTED_CHANNEL_CREDS = new Set(['insecure', 'tls']);

/**
 * Resolves the xDS server. Returns undefined when nothing is configured (the
 * caller then runs in embedded mode). Throws MeshConfigError for a broken bootstrap.
 */
export function resolveBootstrap(options: XdsBootstrapOptions = {}, env: NodeJS.ProcessEnv = process.env): XdsBootstrap | undefined {
  if (options.server) return { server: options.server, channelCreds: 'insecure', serverFeatures: [] };
  if (options.bootstrap) return parseBootstrap(readBootstrapFile(options.bootstrap), options.bootstrap);
  if (env.GRPC_XDS_BOOTSTRAP) return parseBootstrap(readBootstrapFile(env.GRPC_XDS_BOOTSTRAP), env.GRPC_XDS_BOOTSTRAP);
  if (env.GRPC_XDS_BOOTSTRAP_CONFIG) return parseBootstrap(env.GRPC_XDS_BOOTSTRAP_CONFIG, 'GRPC_XDS_BOOTSTRAP_CONFIG');
  const meshlet = env.MESHLET_XDS?.trim();
  if (meshlet) {
    if (meshlet.startsWith('{')) return parseBootstrap(meshlet, 'MESHLET_XDS');
    if (meshlet.includes('/') && !meshlet.includes(':///') && !meshlet.startsWith('unix:')) {
      return parseBootstrap(readBootstrapFile(meshlet), meshlet);
    }
    return { server: meshlet, channelCreds: 'insecure', serverFeatures: [] };
  }
  return undefined;
}

function readBootstrapFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new MeshConfigError('XdsBootstrap', path, '$', `cannot read bootstrap file: ${(err as Error).message}`);
  }
}

/** Parses bootstrap JSON text (`source` names it in errors). */
export function parseBootstrap(text: string, source: string): XdsBootstrap {
  let doc: BootstrapFile;
  try {
    doc = JSON.parse(text) as BootstrapFile;
  } catch (err) {
    throw new MeshConfigError('XdsBootstrap', source, '$', `not JSON: ${(err as Error).message}`);
  }
  const first = doc.xds_servers?.[0];
  if (!first?.server_uri) throw new MeshConfigError('XdsBootstrap', source, 'xds_servers[0].server_uri', 'required');
  const fail = (path: string, message: string): never => {
    throw new MeshConfigError('XdsBootstrap', source, path, message);
  };
  // gRFC A27: the first type the client supports wins; none supported is an error, not plaintext.
  const list = first.channel_creds ?? [{ type: 'insecure' }];
  const index = list.findIndex((c) => SUPPORTED_CHANNEL_CREDS.has(c.type ?? ''));
  if (list.length > 0 && index < 0) fail('xds_servers[0].channel_creds', `no supported type in [${list.map((c) => c.type).join(', ')}] (meshlet supports insecure, tls)`);
  const chosen = list[index] ?? { type: 'insecure' };
  const out: XdsBootstrap = { server: first.server_uri, channelCreds: chosen.type === 'tls' ? 'tls' : 'insecure', serverFeatures: [] };
  if (chosen.type === 'tls' && chosen.config !== undefined) out.tls = tlsConfig(chosen.config, `xds_servers[0].channel_creds[${index}].config`, fail);
  first.call_creds?.forEach((c, i) => {
    const path = `xds_servers[0].call_creds[${i}]`;
    if (c.type !== 'jwt_token_file') fail(`${path}.type`, `unsupported call credentials ${String(c.type)} (meshlet supports jwt_token_file)`);
    const file = (c.config as { jwt_token_file?: unknown } | undefined)?.jwt_token_file;
    if (typeof file !== 'string' || file.length === 0) fail(`${path}.config.jwt_token_file`, 'must be a file path');
    out.tokenFile = file as string;
  });
  if (first.server_features !== undefined) {
    if (!Array.isArray(first.server_features) || first.server_features.some((f) => typeof f !== 'string')) fail('xds_servers[0].server_features', 'must be a list of strings');
    out.serverFeatures = first.server_features as string[];
  }
  if (doc.certificate_providers !== undefined) out.certificateProviders = certificateProviders(doc.certificate_providers, fail);
  const template = doc.server_listener_resource_name_template;
  if (template !== undefined) {
    if (typeof template !== 'string') fail('server_listener_resource_name_template', 'must be a string');
    out.serverListenerResourceNameTemplate = template as string;
  }
  if (doc.node) out.node = doc.node as Partial<XdsNode>;
  return out;
}

type Fail = (path: string, message: string) => never;

function tlsConfig(config: unknown, path: string, fail: Fail): BootstrapTlsConfig {
  if (typeof config !== 'object' || config === null) return fail(path, 'must be an object');
  const c = config as Record<string, unknown>;
  const out: BootstrapTlsConfig = {};
  for (const key of ['ca_certificate_file', 'certificate_file', 'private_key_file', 'refresh_interval'] as const) {
    if (c[key] === undefined) continue;
    if (typeof c[key] !== 'string') fail(`${path}.${key}`, 'must be a string');
    out[key] = c[key] as string;
  }
  for (const key of Object.keys(c)) if (!(key in out) && c[key] !== undefined) fail(`${path}.${key}`, 'unknown field');
  if ((out.certificate_file === undefined) !== (out.private_key_file === undefined)) fail(path, 'certificate_file and private_key_file go together');
  return out;
}

/** A Duration in JSON form (`"900s"`) or proto-JSON object form, in ms. */
function durationMs(value: unknown): number | undefined {
  if (typeof value === 'string') {
    const m = /^(\d+(?:\.\d+)?)s$/.exec(value);
    return m ? Number(m[1]) * 1000 : undefined;
  }
  if (typeof value === 'object' && value !== null) {
    const { seconds, nanos } = value as { seconds?: unknown; nanos?: unknown };
    return Number(seconds ?? 0) * 1000 + Number(nanos ?? 0) / 1e6;
  }
  return undefined;
}

function certificateProviders(providers: unknown, fail: Fail): Record<string, FileWatcherProvider> {
  if (typeof providers !== 'object' || providers === null) return fail('certificate_providers', 'must be an object');
  const out: Record<string, FileWatcherProvider> = {};
  for (const [name, provider] of Object.entries(providers as Record<string, { plugin_name?: unknown; config?: Record<string, unknown> }>)) {
    const path = `certificate_providers.${name}`;
    if (provider?.plugin_name !== 'file_watcher') fail(`${path}.plugin_name`, `unsupported plugin ${String(provider?.plugin_name)} (meshlet supports file_watcher)`);
    const config = provider.config ?? {};
    const file = (key: string): string => {
      const v = config[key];
      if (typeof v !== 'string' || v.length === 0) fail(`${path}.config.${key}`, 'required (a file path)');
      return v as string;
    };
    const entry: FileWatcherProvider = { certificateFile: file('certificate_file'), privateKeyFile: file('private_key_file'), caCertificateFile: file('ca_certificate_file') };
    if (config.refresh_interval !== undefined) {
      const ms = durationMs(config.refresh_interval);
      if (ms === undefined || !(ms > 0)) fail(`${path}.config.refresh_interval`, 'must be a positive duration ("900s")');
      entry.refreshIntervalMs = ms!;
    }
    out[name] = entry;
  }
  return out;
}
