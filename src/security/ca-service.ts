/**
 * Istio's CSR API over gRPC (`istio.v1.auth.IstioCertificateService`):
 * the server side for the control plane, a client for workloads, and a
 * rotating identity that gets its first certificate with a bootstrap token
 * and renews with its current certificate over mTLS.
 */
import {
  type GrpcObject, type Metadata, type ServerUnaryCall, type ServiceClientConstructor, type ServiceDefinition,
  type UntypedServiceImplementation, Metadata as GrpcMetadata, status,
} from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { MeshError } from '../errors.js';
import { loadGrpcPackage } from '../xds/protos.js';
import { type CertificateAuthority, CsrRejectedError } from './ca.js';
import { createCsr, generateKeyPair, privateKeyToPem, splitPemChain } from './certificates.js';
import { controlPlaneChannelCredentials, grpcPeerIdentity } from './grpc-credentials.js';
import { DEFAULT_TRUST_DOMAIN, tryParseSpiffeId } from './identity.js';
import { type IdentityMaterial, createIdentityMaterial } from './material.js';
import { istiodServerName, istiodSpiffeId } from './tls.js';
import { TokenError, TokenReplayCacheFullError } from './token.js';
import { type RotatingIdentityOptions, type WorkloadIdentity, createRotatingIdentity } from './workload-identity.js';

const CA_PROTO = 'istio/v1/auth/ca.proto';

function serviceClient(): ServiceClientConstructor {
  const pkg = loadGrpcPackage([CA_PROTO]);
  const auth = ((pkg.istio as GrpcObject).v1 as GrpcObject).auth as GrpcObject;
  return auth.IstioCertificateService as ServiceClientConstructor;
}

/** A call the CA server refused; `grpcCode` is the gRPC status. */
export class CaRequestError extends MeshError {
  readonly grpcCode: number;
  constructor(grpcCode: number, message: string, options?: { cause?: unknown }) {
    super('MESH_CA_REQUEST_FAILED', message, undefined, undefined, options);
    this.grpcCode = grpcCode;
  }
}

/** An authenticated caller of the CA. */
export interface CaCaller {
  /** The SPIFFE id the certificate may name. */
  identity: string;
  /** Called when the request issued no certificate (CSR refused, signing failed): a redeemed token becomes usable again. */
  release?(): void;
}

/**
 * Decides who is calling: returns the caller's SPIFFE id (or a {@link CaCaller}),
 * or throws (TokenError → UNAUTHENTICATED, TokenReplayCacheFullError → RESOURCE_EXHAUSTED).
 */
export type CaAuthenticator = (call: ServerUnaryCall<unknown, unknown>) => Promise<string | CaCaller> | string | CaCaller;

/**
 * The default authenticator: a verified client certificate (renewal over
 * mTLS) wins; otherwise an `authorization: Bearer <bootstrap token>` minted by
 * this CA, redeemed (single-use: a replay is UNAUTHENTICATED).
 */
export function defaultCaAuthenticator(ca: CertificateAuthority): CaAuthenticator {
  return (call) => authenticateCaller(ca, call, true);
}

/**
 * Who is calling, by the CA's rule: a verified client certificate of the trust
 * domain, else a bootstrap token this CA minted — redeemed when `redeem` (a
 * CSR: the token buys one certificate), only verified otherwise (an ADS stream,
 * which reconnects with the same credentials). Throws TokenError.
 */
export function authenticateCaller(ca: CertificateAuthority, call: Pick<ServerUnaryCall<unknown, unknown>, 'metadata' | 'getAuthContext'>, redeem: boolean): CaCaller {
  const peer = grpcPeerIdentity(call);
  if (peer !== undefined) {
    const id = tryParseSpiffeId(peer, { trustDomain: ca.trustDomain });
    if (typeof id === 'string') throw new TokenError(`client certificate identity: ${id}`);
    return { identity: id.uri };
  }
  const header = call.metadata.get('authorization')[0];
  const value = typeof header === 'string' ? header : header?.toString('utf8');
  if (!value) throw new TokenError('no client certificate and no authorization bearer token');
  const m = /^Bearer\s+(\S+)$/i.exec(value);
  if (!m) throw new TokenError('authorization metadata is not "Bearer <token>"');
  if (!redeem) return { identity: ca.verifyBootstrapToken(m[1]!).uri };
  const redeemed = ca.redeemBootstrapToken(m[1]!);
  return { identity: redeemed.id.uri, release: redeemed.release };
}

interface CertificateRequest {
  csr?: string;
  validity_duration?: string | number;
}

/**
 * The service definition and handlers to add to a grpc-js Server:
 * `server.addService(svc.definition, svc.implementation)`.
 */
export function createCaService(ca: CertificateAuthority, authenticator: CaAuthenticator = defaultCaAuthenticator(ca)): {
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
} {
  const handler = async (call: ServerUnaryCall<CertificateRequest, unknown>, callback: (err: { code: number; details: string } | null, value?: unknown) => void): Promise<void> => {
    let caller: CaCaller;
    try {
      const who = await authenticator(call as ServerUnaryCall<unknown, unknown>);
      caller = typeof who === 'string' ? { identity: who } : who;
    } catch (err) {
      const code = err instanceof TokenReplayCacheFullError ? status.RESOURCE_EXHAUSTED : status.UNAUTHENTICATED;
      return callback({ code, details: (err as Error).message });
    }
    try {
      const seconds = Number(call.request.validity_duration ?? 0);
      const certChain = await ca.sign(call.request.csr ?? '', { callerIdentity: caller.identity, ...(seconds > 0 ? { ttlMs: seconds * 1000 } : {}) });
      // From here the token is spent, even if this answer never reaches the caller.
      callback(null, { cert_chain: certChain });
    } catch (err) {
      caller.release?.();
      const rejected = err instanceof CsrRejectedError;
      const code = rejected ? (err.identityMismatch ? status.PERMISSION_DENIED : status.INVALID_ARGUMENT) : status.INTERNAL;
      callback({ code, details: (err as Error).message });
    }
  };
  return { definition: serviceClient().service, implementation: { CreateCertificate: handler } };
}

/** How a workload proves itself to the CA. */
export interface CertificateRequestAuth {
  /** Bootstrap token, sent as `authorization: Bearer`. */
  token?: string;
  /** Current material, presented as the TLS client certificate (renewal). */
  material?: IdentityMaterial;
}

/** Options for {@link requestCertificate}. */
export interface RequestCertificateOptions {
  /** PEM root that the CA server's certificate must chain to. */
  root: string;
  /**
   * The CA server's pinned identity: a `spiffe://` id its certificate must
   * carry as a URI SAN, or a DNS name it must carry as a DNS SAN (Istio's
   * istiod: `istiod.istio-system.svc`). Default: our control plane's,
   * `spiffe://<trustDomain>/ns/istio-system/sa/istiod`.
   */
  serverIdentity?: string;
  /** Trust domain of the default `serverIdentity` (default cluster.local). */
  trustDomain?: string;
  /** Requested validity. */
  ttlMs?: number;
  /** Deadline for the call (default 10 s). */
  timeoutMs?: number;
  /** Sent as `ClusterID` metadata, as istio-agent does: istiod checks the token against that cluster. */
  clusterId?: string;
}

/**
 * Sends a CSR to an Istio-compatible CA and returns its cert_chain (leaf
 * first, root last). The channel is opened for the one call and closed.
 * The token (or certificate) goes only to a server whose certificate chains
 * to `root` and carries the pinned `serverIdentity`: another workload of the
 * mesh posing as the CA fails the handshake (UNAVAILABLE) before any metadata is sent.
 * @throws CaRequestError with the gRPC status.
 */
export async function requestCertificate(target: string, csr: string, auth: CertificateRequestAuth, options: RequestCertificateOptions): Promise<string[]> {
  const Client = serviceClient();
  const serverIdentity = options.serverIdentity ?? istiodSpiffeId(options.trustDomain ?? DEFAULT_TRUST_DOMAIN);
  const creds = controlPlaneChannelCredentials({ root: options.root, serverIdentity, ...(auth.material && { material: auth.material }) });
  // SNI names the pinned DNS name, as istio-agent's ServerName does (an IP there is not a valid SNI).
  const client = new Client(target, creds, serverIdentity.startsWith('spiffe://') ? {} : { 'grpc.ssl_target_name_override': serverIdentity });
  const metadata: Metadata = new GrpcMetadata();
  if (auth.token) metadata.set('authorization', `Bearer ${auth.token}`);
  if (options.clusterId !== undefined) metadata.set('ClusterID', options.clusterId);
  const request: Record<string, unknown> = { csr };
  if (options.ttlMs !== undefined) request.validity_duration = String(Math.ceil(options.ttlMs / 1000));
  try {
    return await new Promise<string[]>((resolve, reject) => {
      client.CreateCertificate(request, metadata, { deadline: Date.now() + (options.timeoutMs ?? 10_000) },
        (err: (Error & { code?: number; details?: string }) | null, res?: { cert_chain?: string[] }) => {
          if (err) return reject(new CaRequestError(err.code ?? status.UNKNOWN, `CreateCertificate failed: ${err.details ?? err.message}`, { cause: err }));
          const chain = (res?.cert_chain ?? []).flatMap((pem) => splitPemChain(pem));
          if (chain.length === 0) return reject(new CaRequestError(status.INTERNAL, 'CreateCertificate returned an empty cert_chain'));
          resolve(chain);
        });
    });
  } finally {
    client.close();
  }
}

/** Options for {@link controlPlaneIdentity}. */
export interface ControlPlaneIdentityOptions extends Omit<RotatingIdentityOptions, 'issue'>, Omit<RequestCertificateOptions, 'ttlMs'> {
  /** host:port of the CA (the control plane). */
  target: string;
  /** The SPIFFE id to request. */
  spiffeId: string;
  /** Bootstrap token for the first certificate. */
  token?: string;
  /**
   * A token file (Kubernetes' projected service-account token, as istio-agent
   * sends to istiod): read again for every request, the first and each
   * renewal alike, because the kubelet rotates it; no client certificate is
   * presented. Takes the place of `token`.
   */
  tokenFile?: string;
  /** Requested certificate validity (default: the CA's, 24 h). */
  ttlMs?: number;
}

/** The token in `file` (trimmed); a CaRequestError UNAUTHENTICATED when unreadable or empty, so nothing is sent. */
function readTokenFile(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new CaRequestError(status.UNAUTHENTICATED, `cannot read the token file ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (token.length === 0) throw new CaRequestError(status.UNAUTHENTICATED, `the token file ${file} is empty`);
  return token;
}

/**
 * A rotating identity issued by a remote CA. The key pair is generated
 * in-process for each certificate; the first request authenticates with the
 * bootstrap token (spent by it), renewals with the current certificate. A
 * certificate that expired before it could be renewed is still presented:
 * the CA refuses it (UNAUTHENTICATED) and the workload needs a new token.
 */
export function controlPlaneIdentity(options: ControlPlaneIdentityOptions): Promise<WorkloadIdentity> {
  const { target, spiffeId, token, tokenFile, ttlMs, root, serverIdentity, trustDomain, timeoutMs, clusterId, ...rotator } = options;
  const td = trustDomain ?? spiffeId.slice('spiffe://'.length).split('/')[0]!;
  // One pin for the first request and every renewal; with a token file (istiod), istio-agent's: the CA's DNS name.
  const pin = serverIdentity ?? (tokenFile !== undefined ? istiodServerName(target, process.env.ISTIOD_SAN) : istiodSpiffeId(td));
  let latest: IdentityMaterial | undefined;
  const issue = async (): Promise<IdentityMaterial> => {
    const keys = await generateKeyPair();
    const csr = await createCsr(keys, spiffeId);
    // A token file authenticates every request (re-read: it rotates); a bootstrap token is
    // single-use: it buys the first certificate and every renewal presents the current one.
    const auth: CertificateRequestAuth = tokenFile !== undefined ? { token: readTokenFile(tokenFile) }
      : latest !== undefined ? { material: latest } : { ...(token !== undefined ? { token } : {}) };
    const chain = await requestCertificate(target, csr, auth, {
      root, serverIdentity: pin, ...(ttlMs !== undefined ? { ttlMs } : {}), ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(clusterId !== undefined ? { clusterId } : {}),
    });
    const material = createIdentityMaterial({ key: await privateKeyToPem(keys.privateKey), certChain: chain, root }, { trustDomain: td });
    if (material.spiffeId !== spiffeId) throw new CaRequestError(status.INTERNAL, `CA issued ${material.spiffeId}, not the requested ${spiffeId}`);
    latest = material;
    return material;
  };
  return createRotatingIdentity({ ...rotator, issue });
}
