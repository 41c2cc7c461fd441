/**
 * istio-agent's settings, read from the same environment variables and with
 * the same defaults (pilot/cmd/pilot-agent/options/options.go and
 * security.go, pkg/istio-agent/agent.go FindRootCAForCA / FindRootCAForXDS),
 * as `createMesh` options: a meshlet workload in a pod injected with
 * Istio's proxyless template connects to istiod as its agent would.
 *
 *   createMesh({ workload, ...istioAgentOptions() })
 */
import { existsSync } from 'node:fs';
import { parseDuration } from '../core/duration.js';
import { MeshConfigError } from '../errors.js';
import type { MeshOptions } from '../mesh-options.js';
import { istiodServerName } from '../security/tls.js';
import { CUSTOM_ROOT_CERT_FILE, ISTIO_ROOT_CERT_FILE, ISTIO_TOKEN_FILE } from './channel-credentials.js';

/** istiod's default discovery address (ProxyConfig.discoveryAddress with the default install). */
export const ISTIOD_DISCOVERY_ADDRESS = 'istiod.istio-system.svc:15012';

/** What {@link istioAgentOptions} returns: spread it into `createMesh`. */
export type IstioAgentOptions = Required<Pick<MeshOptions, 'trustDomain' | 'xds'>> & Pick<MeshOptions, 'clusterId' | 'ca'>;

function fail(name: string, reason: string): never {
  throw new MeshConfigError('Environment', name, name, reason);
}

/** PROXY_CONFIG (JSON from injection) → discoveryAddress, else istiod's default. */
function discoveryAddress(env: NodeJS.ProcessEnv): string {
  const text = env.PROXY_CONFIG?.trim();
  if (!text) return ISTIOD_DISCOVERY_ADDRESS;
  let doc: { discoveryAddress?: unknown };
  try {
    doc = JSON.parse(text) as { discoveryAddress?: unknown };
  } catch {
    // injection writes JSON; a YAML ProxyConfig is not read here rather than half-read
    return fail('PROXY_CONFIG', 'must be JSON (as injection writes it)');
  }
  return typeof doc.discoveryAddress === 'string' && doc.discoveryAddress.length > 0 ? doc.discoveryAddress : ISTIOD_DISCOVERY_ADDRESS;
}

/** The root a provider's certificates chain to: an explicit CA_ROOT_CA / XDS_ROOT_CA, else by PILOT_CERT_PROVIDER. */
function rootFor(variable: 'CA_ROOT_CA' | 'XDS_ROOT_CA', env: NodeJS.ProcessEnv, exists: (path: string) => boolean): string {
  const explicit = env[variable];
  if (explicit === 'SYSTEM') return fail(variable, 'SYSTEM roots are not supported: meshlet pins istiod against the mesh root; name the root file');
  if (explicit) return explicit;
  // FindRootCAForXDS prefers a mounted /etc/certs root (old-style mounted certs).
  if (variable === 'XDS_ROOT_CA' && exists(CUSTOM_ROOT_CERT_FILE)) return CUSTOM_ROOT_CERT_FILE;
  const provider = env.PILOT_CERT_PROVIDER || 'istiod';
  if (provider === 'none') return fail('PILOT_CERT_PROVIDER', `none: a root CA file is required (set ${variable})`);
  return provider === 'custom' && variable === 'CA_ROOT_CA' ? CUSTOM_ROOT_CERT_FILE : ISTIO_ROOT_CERT_FILE;
}

/**
 * `createMesh` options from istio-agent's environment: the discovery
 * address (PROXY_CONFIG, default istiod.istio-system.svc:15012) for ADS over
 * TLS, CA_ADDR (default: the discovery address) for certificates, TRUST_DOMAIN
 * (default cluster.local), ISTIO_META_CLUSTER_ID, the root by CA_ROOT_CA /
 * XDS_ROOT_CA / PILOT_CERT_PROVIDER, the token file by JWT_POLICY, ISTIOD_SAN
 * for the pinned name and SECRET_TTL for the certificate lifetime.
 * @throws MeshConfigError for a value istio-agent accepts and meshlet cannot honour.
 */
export function istioAgentOptions(env: NodeJS.ProcessEnv = process.env, exists: (path: string) => boolean = existsSync): IstioAgentOptions {
  const discovery = discoveryAddress(env);
  const caAddr = env.CA_ADDR || discovery;
  const jwtPolicy = env.JWT_POLICY || 'third-party-jwt';
  const tokenFile = jwtPolicy === 'third-party-jwt' || jwtPolicy === 'first-party-jwt' ? ISTIO_TOKEN_FILE : undefined;
  const san = env.ISTIOD_SAN || undefined;
  let ttl: string | undefined;
  if (env.SECRET_TTL) {
    if (typeof parseDuration(env.SECRET_TTL) === 'string') fail('SECRET_TTL', `${env.SECRET_TTL} is not a duration such as "24h"`);
    ttl = env.SECRET_TTL;
  }
  const out: IstioAgentOptions = {
    trustDomain: env.TRUST_DOMAIN || 'cluster.local',
    ca: {
      server: caAddr, root: rootFor('CA_ROOT_CA', env, exists), identity: istiodServerName(caAddr, san),
      ...(tokenFile !== undefined && { tokenFile }), ...(ttl !== undefined && { ttl }),
    },
    xds: { server: discovery, tls: { root: rootFor('XDS_ROOT_CA', env, exists), serverName: istiodServerName(discovery, san), ...(tokenFile !== undefined && { tokenFile }) } },
  };
  if (env.ISTIO_META_CLUSTER_ID) out.clusterId = env.ISTIO_META_CLUSTER_ID;
  return out;
}
