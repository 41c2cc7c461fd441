/**
 * Istio's CSR API over gRPC (`istio.v1.auth.IstioCertificateService`):
 * the server side for the control plane, a client for workloads, and a
 * rotating identity that gets its first certificate with a bootstrap token
 * and renews with its current certificate over mTLS.
 */
import {
  type GrpcObject, type Metadata, type ServerUnaryCall, type ServiceClientConstructor, type ServiceDefinition,
  type UntypedServiceImplementation, type ChannelCredentials, credentials, experimental, Metadata as GrpcMetadata, status,
} from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { MeshError } from '../errors.js';
import { loadGrpcPackage } from '../xds/protos.js';
import { type CertificateAuthority, CsrRejectedError } from './ca.js';
import { createCsr, generateKeyPair, privateKeyToPem, splitPemChain } from './certificates.js';
import { IdentityCertificateProvider, grpcPeerIdentity } from './grpc-credentials.js';
import { tryParseSpiffeId } from './identity.js';
import { type IdentityMaterial, createIdentityMaterial } from './material.js';
import { spiffeServerIdentityCheck } from './tls.js';
import { TokenError } from './token.js';
import { type RotatingIdentityOptions, type WorkloadIdentity, createRotatingIdentity } from './workload-identity.js';

const CA_PROTO = 'istio/v1/auth/ca.proto';
const SERVICE = 'istio.v1.auth.IstioCertificateService';

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

/** Decides who is calling: returns the caller's SPIFFE id, or throws (TokenError → UNAUTHENTICATED). */
export type CaAuthenticator = (call: ServerUnaryCall<unknown, unknown>) => Promise<string> | string;

/**
 * The default authenticator: a verified client certificate (renewal over
 * mTLS) wins; otherwise an `authorization: Bearer <bootstrap token>` minted by
 * this CA.
 */
export function defaultCaAuthenticator(ca: CertificateAuthority): CaAuthenticator {
  return (call) => {
    const peer = grpcPeerIdentity(call);
    if (peer !== undefined) {
      const id = tryParseSpiffeId(peer, { trustDomain: ca.trustDomain });
      if (typeof id === 'string') throw new TokenError(`client certificate identity: ${id}`);
      return id.uri;
    }
    const header = call.metadata.get('authorization')[0];
    const value = typeof header === 'string' ? header : header?.toString('utf8');
    if (!value) throw new TokenError('no client certificate and no authorization bearer token');
    const m = /^Bearer\s+(\S+)$/i.exec(value);
    if (!m) throw new TokenError('authorization metadata is not "Bearer <token>"');
    return ca.verifyBootstrapToken(m[1]!).uri;
  };
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
    let caller: string;
    try {
      caller = await authenticator(call as ServerUnaryCall<unknown, unknown>);
    } catch (err) {
      return callback({ code: status.UNAUTHENTICATED, details: (err as Error).message });
    }
    try {
      const seconds = Number(call.request.validity_duration ?? 0);
      const certChain = await ca.sign(call.request.csr ?? '', { callerIdentity: caller, ...(seconds > 0 ? { ttlMs: seconds * 1000 } : {}) });
      callback(null, { cert_chain: certChain });
    } catch (err) {
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
  /** SPIFFE ids the CA server may present (default: any in `trustDomain`). */
  expectedServerIds?: readonly string[];
  /** Trust domain of the CA server's id when no ids are listed (default cluster.local). */
  trustDomain?: string;
  /** Requested validity. */
  ttlMs?: number;
  /** Deadline for the call (default 10 s). */
  timeoutMs?: number;
}

/**
 * The check a workload applies to the control plane's server certificate,
 * for the CA and for ADS over TLS alike (one function, so both calls trust
 * the same identities).
 */
export function controlPlaneServerIdentityCheck(options: Pick<RequestCertificateOptions, 'expectedServerIds' | 'trustDomain'>): (host: string, cert: PeerCertificate) => Error | undefined {
  return spiffeServerIdentityCheck({ trustDomain: options.trustDomain ?? 'cluster.local', ...(options.expectedServerIds ? { expectedSpiffeIds: options.expectedServerIds } : {}) });
}

/**
 * Channel credentials to the control plane (ADS over TLS): the workload's
 * certificate as client certificate (mTLS, follows rotation), the mesh root,
 * and {@link controlPlaneServerIdentityCheck} on the server's certificate.
 */
export function controlPlaneChannelCredentials(identity: WorkloadIdentity, options: Pick<RequestCertificateOptions, 'expectedServerIds' | 'trustDomain'> = {}): ChannelCredentials {
  const provider = new IdentityCertificateProvider(identity);
  return experimental.createCertificateProviderChannelCredentials(provider, provider, { checkServerIdentity: controlPlaneServerIdentityCheck(options) });
}

/**
 * Sends a CSR to an Istio-compatible CA and returns its cert_chain (leaf
 * first, root last). The channel is opened for the one call and closed.
 * @throws CaRequestError with the gRPC status.
 */
export async function requestCertificate(target: string, csr: string, auth: CertificateRequestAuth, options: RequestCertificateOptions): Promise<string[]> {
  const Client = serviceClient();
  const m = auth.material;
  const creds = credentials.createSsl(
    Buffer.from(options.root),
    m ? Buffer.from(m.key) : null,
    m ? Buffer.from(m.certChain.join('')) : null,
    { checkServerIdentity: controlPlaneServerIdentityCheck(options) },
  );
  const client = new Client(target, creds);
  const metadata: Metadata = new GrpcMetadata();
  if (auth.token) metadata.set('authorization', `Bearer ${auth.token}`);
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
  /** Requested certificate validity (default: the CA's, 24 h). */
  ttlMs?: number;
}

/**
 * A rotating identity issued by a remote CA. The key pair is generated
 * in-process for each certificate; the first request authenticates with the
 * bootstrap token, renewals with the current certificate.
 */
export function controlPlaneIdentity(options: ControlPlaneIdentityOptions): Promise<WorkloadIdentity> {
  const { target, spiffeId, token, ttlMs, root, expectedServerIds, trustDomain, timeoutMs, ...rotator } = options;
  const td = trustDomain ?? spiffeId.slice('spiffe://'.length).split('/')[0]!;
  let latest: IdentityMaterial | undefined;
  const issue = async (): Promise<IdentityMaterial> => {
    const keys = await generateKeyPair();
    const csr = await createCsr(keys, spiffeId);
    // Fall back to the token only while there is no unexpired certificate.
    const useCert = latest !== undefined && latest.notAfter.getTime() > Date.now();
    const auth: CertificateRequestAuth = useCert ? { material: latest! } : { ...(token !== undefined ? { token } : {}) };
    const chain = await requestCertificate(target, csr, auth, {
      root, trustDomain: td, ...(expectedServerIds ? { expectedServerIds } : {}), ...(ttlMs !== undefined ? { ttlMs } : {}), ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    });
    const material = createIdentityMaterial({ key: await privateKeyToPem(keys.privateKey), certChain: chain, root }, { trustDomain: td });
    if (material.spiffeId !== spiffeId) throw new CaRequestError(status.INTERNAL, `CA issued ${material.spiffeId}, not the requested ${spiffeId}`);
    latest = material;
    return material;
  };
  return createRotatingIdentity({ ...rotator, issue });
}
