/**
 * Credentials for channels to the control plane as Istio's istio-agent builds
 * them for istiod on 15012 (the CA and ADS): TLS against the mesh root with
 * istiod's DNS name pinned (its serving certificate has DNS SANs only,
 * pilot/pkg/bootstrap/certcontroller.go), an optional client certificate, and
 * `authorization: Bearer <service-account token>` call metadata read from the
 * projected token file at every call, since kubelet rotates that file.
 * Settings and defaults follow pilot/cmd/pilot-agent/options and
 * pkg/istio-agent/agent.go (FindRootCAForCA / FindRootCAForXDS).
 */
import { readFileSync } from 'node:fs';
import {
  type CallCredentials, type ChannelCredentials, Metadata, credentials, experimental, status,
} from '@grpc/grpc-js';
import { createSecureContext } from 'node:tls';
import { MeshConfigError } from '../errors.js';
import { type XdsBootstrap, resolveBootstrap } from './bootstrap.js';
import { type ControlPlaneCredentialsOptions, IdentityCertificateProvider, rotatingControlPlaneCredentials } from '../security/grpc-credentials.js';
import type { MeshIdentityOptions } from '../security/mesh-security.js';
import { istiodServerName, istiodSpiffeId, meshTlsParameters, pinnedServerIdentityCheck } from '../security/tls.js';

export { ISTIOD_DNS_NAME, istiodServerName } from '../security/tls.js';
import type { WorkloadIdentity } from '../security/workload-identity.js';

/** The projected service-account token istio-agent sends (JWT_POLICY third-party-jwt, constants.ThirdPartyJwtPath). */
export const ISTIO_TOKEN_FILE = '/var/run/secrets/tokens/istio-token';
/** The mesh root istio-agent trusts for istiod with PILOT_CERT_PROVIDER=istiod (the istio-ca-root-cert ConfigMap mount). */
export const ISTIO_ROOT_CERT_FILE = '/var/run/secrets/istio/root-cert.pem';
/** The root for PILOT_CERT_PROVIDER=custom (security.DefaultRootCertFilePath). */
export const CUSTOM_ROOT_CERT_FILE = '/etc/certs/root-cert.pem';

/**
 * TLS to the control plane (`createMesh({ xds: { tls } })`, and the CA's
 * channel): the root the server must chain to, the name it must carry, a
 * token file sent as a bearer token, and an optional client certificate.
 */
export interface ControlPlaneTlsOptions {
  /** PEM text or a file path of the root (default {@link ISTIO_ROOT_CERT_FILE}). */
  root?: string;
  /**
   * The server identity to pin: a DNS name its certificate must carry as a
   * DNS SAN (istiod), or a `spiffe://` id as a URI SAN (meshlet's control
   * plane). Default: as istio-agent, the host of the server address
   * (`istiod.istio-system.svc` for localhost or an IP address); env ISTIOD_SAN overrides.
   */
  serverName?: string;
  /** A token file, re-read for every call (stream or CSR) and sent as `authorization: Bearer`. */
  tokenFile?: string;
  /**
   * Client certificate: `'identity'` presents the workload's rotating
   * certificate (mTLS, default when the mesh has one), `false` none (token
   * only, as istio-agent with istiod), or PEM files (A65 `tls` channel creds).
   */
  clientCertificate?: 'identity' | false | { certificateFile: string; privateKeyFile: string };
  /** Sent as the `ClusterID` metadata istio-agent adds to every call (istiod picks the cluster that checks the token). */
  clusterId?: string;
}

/** PEM text as given, or read from the file it names. */
export function readPem(source: string, what: { kind: string; name: string; path: string }): string {
  if (source.includes('-----BEGIN')) return source;
  try {
    return readFileSync(source, 'utf8');
  } catch (err) {
    throw new MeshConfigError(what.kind, what.name, what.path, `cannot read ${source}: ${(err as Error).message}`);
  }
}

/** Error from the token metadata generator: the call fails UNAUTHENTICATED before anything is sent. */
function tokenError(file: string, reason: string): Error & { code: number } {
  return Object.assign(new Error(`cannot read the bearer token file ${file}: ${reason}`), { code: status.UNAUTHENTICATED });
}

/**
 * Call credentials that read `tokenFile` at every call and send
 * `authorization: Bearer <token>` (plus `ClusterID` when given). grpc-js
 * attaches call credentials to secure channels only, so the token never goes
 * out in plaintext.
 */
export function bearerTokenFileCredentials(tokenFile: string, options: { clusterId?: string } = {}): CallCredentials {
  return credentials.createFromMetadataGenerator((_params, callback) => {
    let token: string;
    try {
      token = readFileSync(tokenFile, 'utf8').trim();
    } catch (err) {
      return callback(tokenError(tokenFile, (err as Error).message));
    }
    if (token.length === 0) return callback(tokenError(tokenFile, 'empty'));
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${token}`);
    if (options.clusterId !== undefined) metadata.set('ClusterID', options.clusterId);
    callback(null, metadata);
  });
}

/**
 * Channel credentials for the control plane from {@link ControlPlaneTlsOptions}:
 * TLS 1.2+ to a server chaining to the root and carrying the pinned name,
 * the client certificate asked for, and the token file as call credentials.
 */
export function controlPlaneTlsCredentials(target: string, options: ControlPlaneTlsOptions, identity: WorkloadIdentity | undefined, env: NodeJS.ProcessEnv = process.env): ChannelCredentials {
  const where = { kind: 'MeshOptions', name: 'createMesh', path: 'xds.tls.root' };
  const root = readPem(options.root ?? ISTIO_ROOT_CERT_FILE, where);
  const pin = options.serverName ?? istiodServerName(target, env.ISTIOD_SAN);
  const client = options.clientCertificate ?? (identity !== undefined ? 'identity' : false);
  let channel: ChannelCredentials;
  if (client === 'identity') {
    if (identity === undefined) throw new MeshConfigError('MeshOptions', 'createMesh', 'xds.tls.clientCertificate', "'identity' needs a workload identity (certs or ca)");
    // The pinned root, not the identity's own: istio-agent trusts the CA root file for istiod.
    channel = experimental.createCertificateProviderChannelCredentials(staticCaProvider(root), new IdentityCertificateProvider(identity), { checkServerIdentity: pinnedServerIdentityCheck(pin) });
  } else if (client === false) {
    channel = staticCredentials({ root, serverIdentity: pin });
  } else {
    channel = fileCredentials({ caCertificateFile: undefined, root, ...client }, pin);
  }
  if (options.tokenFile === undefined) return channel;
  return credentials.combineChannelCredentials(channel, bearerTokenFileCredentials(options.tokenFile, options.clusterId !== undefined ? { clusterId: options.clusterId } : {}));
}

function staticCredentials(options: ControlPlaneCredentialsOptions): ChannelCredentials {
  const context = createSecureContext({ ...meshTlsParameters('client'), ca: options.root });
  return credentials.createFromSecureContext(context, { checkServerIdentity: pinnedServerIdentityCheck(options.serverIdentity) });
}

/** Client certificate (and root) from files, re-read as they change (grpc-js's file watcher, A29/A65). */
function fileCredentials(files: { caCertificateFile: string | undefined; root?: string; certificateFile?: string; privateKeyFile?: string }, pin: string | undefined, refreshIntervalMs = 60_000): ChannelCredentials {
  const identity = files.certificateFile !== undefined && files.privateKeyFile !== undefined
    ? new experimental.FileWatcherCertificateProvider({ certificateFile: files.certificateFile, privateKeyFile: files.privateKeyFile, refreshIntervalMs })
    : null;
  if (files.caCertificateFile === undefined && files.root === undefined) {
    // A65: no CA file means the system roots; grpc-js's provider credentials need a CA provider, so read the identity once.
    if (identity === null) return credentials.createSsl();
    return credentials.createSsl(null, readFileSync(files.privateKeyFile!), readFileSync(files.certificateFile!));
  }
  const ca: experimental.CertificateProvider = files.caCertificateFile !== undefined
    ? new experimental.FileWatcherCertificateProvider({ caCertificateFile: files.caCertificateFile, refreshIntervalMs })
    : staticCaProvider(files.root!);
  return experimental.createCertificateProviderChannelCredentials(ca, identity, pin !== undefined ? { checkServerIdentity: pinnedServerIdentityCheck(pin) } : {});
}

function staticCaProvider(root: string): experimental.CertificateProvider {
  const update = { caCertificate: Buffer.from(root) };
  return {
    addCaCertificateListener: (listener) => void process.nextTick(listener, update),
    removeCaCertificateListener: () => {},
    addIdentityCertificateListener: () => {},
    removeIdentityCertificateListener: () => {},
  };
}

/** A `tls` channel_creds config of a bootstrap (gRFC A65: the file-watcher fields). */
export interface BootstrapTlsConfig {
  ca_certificate_file?: string;
  certificate_file?: string;
  private_key_file?: string;
  /** A Duration string (`"600s"`); how often the files are re-read (default 10 min, as A65). */
  refresh_interval?: string;
}

/**
 * Channel credentials for a bootstrap's `tls` channel_creds (gRFC A65):
 * `ca_certificate_file` (else the system roots) and, for mTLS,
 * `certificate_file` + `private_key_file`, all re-read every
 * `refresh_interval`. The server is checked by the hostname of its URI, as a
 * gRPC xDS client does, unless `serverName` pins another name.
 */
export function bootstrapTlsCredentials(config: BootstrapTlsConfig, serverName?: string): ChannelCredentials {
  const refresh = /^(\d+(?:\.\d+)?)s$/.exec(config.refresh_interval ?? '');
  const refreshMs = refresh ? Math.max(1000, Number(refresh[1]) * 1000) : 600_000;
  return fileCredentials({
    caCertificateFile: config.ca_certificate_file,
    ...(config.certificate_file !== undefined && { certificateFile: config.certificate_file }),
    ...(config.private_key_file !== undefined && { privateKeyFile: config.private_key_file }),
  }, serverName, refreshMs);
}

/**
 * The ADS channel's credentials from a bootstrap: plaintext for `insecure`;
 * for `tls`, its A65 config (else the system roots) plus the A97
 * `jwt_token_file` call credentials when the bootstrap names one.
 */
export function bootstrapChannelCredentials(bootstrap: Pick<XdsBootstrap, 'channelCreds' | 'tls' | 'tokenFile'>): ChannelCredentials {
  if (bootstrap.channelCreds === 'insecure') return credentials.createInsecure();
  const channel = bootstrapTlsCredentials(bootstrap.tls ?? {});
  return bootstrap.tokenFile === undefined ? channel : credentials.combineChannelCredentials(channel, bearerTokenFileCredentials(bootstrap.tokenFile));
}

/**
 * The ADS channel credentials `createMesh({ xds })` asks for, or undefined
 * for the bootstrap's own (plaintext for a bare `server`). `tls: true` is
 * mTLS with the workload's rotating certificate, pinned as the CA
 * (`ca.identity`, default meshlet's control plane SPIFFE id); a
 * {@link ControlPlaneTlsOptions} object is TLS as istio-agent speaks it to istiod.
 */
export function xdsChannelCredentials(
  options: { server?: string; bootstrap?: string; tls?: boolean | ControlPlaneTlsOptions },
  identityOptions: MeshIdentityOptions,
  mesh: { identity: WorkloadIdentity | undefined; trustDomain: string; clusterId: string },
  env: NodeJS.ProcessEnv = process.env,
): ChannelCredentials | undefined {
  const ca = identityOptions.ca && 'root' in identityOptions.ca ? identityOptions.ca : undefined;
  const tls = options.tls ?? ca !== undefined;
  if (tls === false) return undefined;
  if (tls === true) {
    if (!mesh.identity) throw new TypeError('xds.tls needs a workload identity (certs, ca) to connect with mTLS');
    return rotatingControlPlaneCredentials(mesh.identity, ca?.identity ?? istiodSpiffeId(mesh.trustDomain));
  }
  const server = options.server ?? resolveBootstrap(options, env)?.server;
  if (server === undefined) throw new MeshConfigError('MeshOptions', 'createMesh', 'xds.server', 'xds.tls needs the server address (xds.server or a bootstrap)');
  return controlPlaneTlsCredentials(server, { clusterId: mesh.clusterId, ...tls }, mesh.identity, env);
}
