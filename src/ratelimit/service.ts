/**
 * The rate-limit service on gRPC: `envoy.service.ratelimit.v3.RateLimitService/
 * ShouldRateLimit`, the protocol Envoy's ratelimit filter speaks, so real
 * Envoys and meshlet's SDK and gateway can share it. Memory backend by
 * default; Redis when `redis` is given, which makes any number of service
 * instances share one quota.
 */
import * as grpc from '@grpc/grpc-js';
import type { Redis } from 'ioredis';
import { createMemoryBackend, type RateLimitBackend } from './backend.js';
import { createRateLimiter, RateLimitRequestError, type RateLimiter, type RateLimitRequest } from './limiter.js';
import type { RateLimitConfigInput } from './load.js';
import { rateLimitServiceDefinition } from './protocol.js';
import { createRedisBackend } from './redis-backend.js';

/** Options of {@link createRateLimitService} (DESIGN.md §3, contract). */
export interface RateLimitServiceOptions {
  /** A file or directory path, a YAML string, document objects, or a compiled config. */
  config: RateLimitConfigInput;
  /** gRPC port; 0 picks a free one. Default 8081 (envoyproxy/ratelimit's gRPC port). */
  port?: number;
  /** Address to bind; default `127.0.0.1`. Pass `0.0.0.0` to serve other hosts. */
  host?: string;
  /** `redis://host:port` or a caller-owned ioredis client; absent = in-memory counters. */
  redis?: string | Redis;
  /** Prefix for Redis keys; default none. */
  redisKeyPrefix?: string;
  /** A custom counter backend (wins over `redis`). */
  backend?: RateLimitBackend;
  /** Clock in epoch milliseconds; default `Date.now`. */
  now?: () => number;
}

/** A running rate-limit service. */
export interface RateLimitService {
  /** The bound port. */
  readonly port: number;
  /** The decision engine, for in-process callers (e.g. the control plane). */
  readonly limiter: RateLimiter;
  /** Replaces the config atomically; throws MeshConfigError and keeps the old one when invalid. */
  reload(config: RateLimitConfigInput): void;
  /** Stops serving (in-flight calls get a short grace) and closes the backend; idempotent. */
  close(): Promise<void>;
}

/**
 * Registers ShouldRateLimit on an existing grpc-js server, so a process that
 * already serves gRPC (the control plane) hosts the service on its own port.
 */
export function addRateLimitService(server: grpc.Server, limiter: RateLimiter): void {
  server.addService(rateLimitServiceDefinition(), {
    ShouldRateLimit(call: grpc.ServerUnaryCall<RateLimitRequest, unknown>, callback: grpc.sendUnaryData<unknown>) {
      limiter.shouldRateLimit(call.request).then(
        (response) => callback(null, response),
        (err: Error) => callback({
          code: err instanceof RateLimitRequestError ? grpc.status.INVALID_ARGUMENT : grpc.status.UNAVAILABLE,
          details: err.message,
        }),
      );
    },
  });
}

/**
 * Starts the rate-limit service. Resolves once it listens.
 * @throws MeshConfigError for invalid config; the Redis connection error when Redis is unreachable.
 */
export async function createRateLimitService(options: RateLimitServiceOptions): Promise<RateLimitService> {
  const now = options.now ?? Date.now;
  const backend = options.backend
    ?? (options.redis !== undefined
      ? await createRedisBackend({ redis: options.redis, keyPrefix: options.redisKeyPrefix })
      : createMemoryBackend({ now }));
  let limiter: RateLimiter;
  try {
    limiter = createRateLimiter({ config: options.config, backend, now });
  } catch (err) {
    await backend.close();
    throw err;
  }
  const server = new grpc.Server();
  addRateLimitService(server, limiter);
  const host = options.host ?? '127.0.0.1';
  const address = host.includes(':') ? `[${host}]:${options.port ?? 8081}` : `${host}:${options.port ?? 8081}`;
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
  } catch (err) {
    server.forceShutdown();
    await limiter.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    port,
    limiter,
    reload: (config) => limiter.update(config),
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          // A unary call is short; after the grace, cut what is left.
          const grace = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, 500);
          grace.unref();
          server.tryShutdown(() => {
            clearTimeout(grace);
            resolve();
          });
        });
        await limiter.close();
      })();
      return closing;
    },
  };
}
