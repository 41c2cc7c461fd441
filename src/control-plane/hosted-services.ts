/**
 * The services the control plane hosts next to ADS on its gRPC server, as
 * istiod hosts its CA: Istio's CSR API backed by a CA kept in a directory,
 * and Envoy's rate-limit service (memory or Redis counters).
 */
import type * as grpc from '@grpc/grpc-js';
import type { Redis } from 'ioredis';
import { createMemoryBackend } from '../ratelimit/backend.js';
import { createRateLimiter, type RateLimiter } from '../ratelimit/limiter.js';
import type { RateLimitConfigInput } from '../ratelimit/load.js';
import { createRedisBackend } from '../ratelimit/redis-backend.js';
import { addRateLimitService } from '../ratelimit/service.js';
import type { CertificateAuthority } from '../security/ca.js';
import { openCaDir } from '../security/ca-dir.js';
import { createCaService } from '../security/ca-service.js';
import { grpcServerCredentials } from '../security/grpc-credentials.js';
import { formatSpiffeId } from '../security/identity.js';
import { type WorkloadIdentity, identityFromCa } from '../security/workload-identity.js';

/** `ca` option of createControlPlane. */
export interface ControlPlaneCaOptions {
  /** CA directory (ca-key.pem, ca-cert.pem, root-cert.pem); created with a fresh root when empty. */
  dir: string;
  /** Trust domain of the ids it signs (default cluster.local). */
  trustDomain?: string;
  /** Validity of the control plane's own serving certificate, ms (default 24 h; renewed at half-life). */
  servingCertTtlMs?: number;
}

/** `ratelimit` option of createControlPlane. */
export interface ControlPlaneRateLimitOptions {
  /** envoyproxy/ratelimit config: a file or directory path, a YAML string, or document objects. */
  config: RateLimitConfigInput;
  /** `redis://host:port` or a caller-owned ioredis client; absent = in-memory counters. */
  redis?: string | Redis;
  /** Prefix of Redis keys (envoyproxy's CACHE_KEY_PREFIX). */
  redisKeyPrefix?: string;
  /** Clock in epoch ms for the fixed windows; default Date.now (tests pin it). */
  now?: () => number;
}

/** Namespace and service account of the control plane's serving identity (istiod's). */
export const CONTROL_PLANE_SERVICE_ACCOUNT = { namespace: 'istio-system', serviceAccount: 'istiod' } as const;

/** The CA as the control plane hosts it. */
export interface HostedCa {
  readonly ca: CertificateAuthority;
  /** The control plane's own rotating certificate, signed by `ca`. */
  readonly identity: WorkloadIdentity;
  /** TLS credentials for the port: client certificates requested (renewals), not required (bootstrap tokens). */
  readonly credentials: grpc.ServerCredentials;
  close(): Promise<void>;
}

/**
 * Opens the CA directory, issues the control plane's serving certificate
 * (`spiffe://<td>/ns/istio-system/sa/istiod`) and adds
 * `istio.v1.auth.IstioCertificateService` to `server` (the TLS side only:
 * a bearer token never travels in plaintext).
 */
export async function hostCa(server: grpc.Server, options: ControlPlaneCaOptions): Promise<HostedCa> {
  const ca = await openCaDir(options.dir, options.trustDomain !== undefined ? { trustDomain: options.trustDomain } : {});
  const identity = await identityFromCa(ca, formatSpiffeId({ trustDomain: ca.trustDomain, ...CONTROL_PLANE_SERVICE_ACCOUNT }),
    options.servingCertTtlMs !== undefined ? { ttlMs: options.servingCertTtlMs } : {});
  const service = createCaService(ca);
  server.addService(service.definition, service.implementation);
  return {
    ca,
    identity,
    credentials: grpcServerCredentials(identity, { mode: 'PERMISSIVE' }),
    close: () => identity.close(),
  };
}

/**
 * Builds the limiter (Redis or memory counters) and adds
 * `envoy.service.ratelimit.v3.RateLimitService` to each server (the
 * plaintext and the TLS side of the port).
 * @throws MeshConfigError for an invalid config; the Redis error when Redis is unreachable.
 */
export async function hostRateLimit(servers: readonly grpc.Server[], options: ControlPlaneRateLimitOptions): Promise<RateLimiter> {
  const backend = options.redis !== undefined
    ? await createRedisBackend({ redis: options.redis, ...(options.redisKeyPrefix !== undefined && { keyPrefix: options.redisKeyPrefix }) })
    : createMemoryBackend(options.now ? { now: options.now } : {});
  let limiter: RateLimiter;
  try {
    limiter = createRateLimiter({ config: options.config, backend, ...(options.now && { now: options.now }) });
  } catch (err) {
    await backend.close();
    throw err;
  }
  for (const server of servers) addRateLimitService(server, limiter);
  return limiter;
}
