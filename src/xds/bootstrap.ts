/**
 * Where the xDS server is: an explicit `{ server: 'host:port' }`, or a gRPC
 * xDS bootstrap (the same JSON file @grpc/grpc-js-xds and istio-agent use),
 * from GRPC_XDS_BOOTSTRAP (a path), GRPC_XDS_BOOTSTRAP_CONFIG (inline JSON) or
 * MESHLET_XDS (a path, inline JSON, or a bare `host:port`).
 */
import { readFileSync } from 'node:fs';
import { MeshConfigError } from '../errors.js';
import type { XdsNode } from './node.js';

/** The resolved connection target. */
export interface XdsBootstrap {
  /** A grpc-js target: `host:port`, `dns:///host:port`, `unix:/path`. */
  server: string;
  /** `insecure` (plaintext) or `tls` (system roots). */
  channelCreds: 'insecure' | 'tls';
  /** Node fields from the bootstrap; merged over the workload's own node. */
  node?: Partial<XdsNode>;
  /** `xds_servers[0].server_features` (`delta_grpc` selects Delta ADS; gRPC ignores features it does not know). */
  serverFeatures?: string[];
}

/** What a caller may pass: a server address, a bootstrap file path, or nothing (env). */
export interface XdsBootstrapOptions {
  server?: string;
  bootstrap?: string;
}

interface BootstrapFile {
  xds_servers?: Array<{ server_uri?: string; channel_creds?: Array<{ type?: string }>; server_features?: unknown }>;
  node?: Partial<XdsNode> & { metadata?: unknown };
}

/**
 * Resolves the xDS server. Returns undefined when nothing is configured (the
 * caller then runs in embedded mode). Throws MeshConfigError for a broken bootstrap.
 */
export function resolveBootstrap(options: XdsBootstrapOptions = {}, env: NodeJS.ProcessEnv = process.env): XdsBootstrap | undefined {
  if (options.server) return { server: options.server, channelCreds: 'insecure' };
  if (options.bootstrap) return parseBootstrap(readBootstrapFile(options.bootstrap), options.bootstrap);
  if (env.GRPC_XDS_BOOTSTRAP) return parseBootstrap(readBootstrapFile(env.GRPC_XDS_BOOTSTRAP), env.GRPC_XDS_BOOTSTRAP);
  if (env.GRPC_XDS_BOOTSTRAP_CONFIG) return parseBootstrap(env.GRPC_XDS_BOOTSTRAP_CONFIG, 'GRPC_XDS_BOOTSTRAP_CONFIG');
  const meshlet = env.MESHLET_XDS?.trim();
  if (meshlet) {
    if (meshlet.startsWith('{')) return parseBootstrap(meshlet, 'MESHLET_XDS');
    if (meshlet.includes('/') && !meshlet.includes(':///') && !meshlet.startsWith('unix:')) {
      return parseBootstrap(readBootstrapFile(meshlet), meshlet);
    }
    return { server: meshlet, channelCreds: 'insecure' };
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
  const creds = first.channel_creds?.map((c) => c.type) ?? ['insecure'];
  const channelCreds = creds.includes('insecure') || creds.length === 0 ? 'insecure' : 'tls';
  const out: XdsBootstrap = { server: first.server_uri, channelCreds };
  if (doc.node) out.node = doc.node as Partial<XdsNode>;
  if (first.server_features !== undefined) {
    if (!Array.isArray(first.server_features) || first.server_features.some((f) => typeof f !== 'string')) {
      throw new MeshConfigError('XdsBootstrap', source, 'xds_servers[0].server_features', 'must be a list of strings');
    }
    out.serverFeatures = first.server_features as string[];
  }
  return out;
}
