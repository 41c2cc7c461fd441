/**
 * `meshlet/ratelimit`: the global rate-limit service (Envoy's
 * RateLimitService protocol, envoyproxy/ratelimit's config and semantics,
 * memory or Redis counters) and the client the SDK and gateway call it with.
 */
export { createRateLimitService, addRateLimitService } from './service.js';
export type { RateLimitService, RateLimitServiceOptions } from './service.js';
export { createRateLimitClient } from './client.js';
export type { RateLimitClient, RateLimitClientOptions, RateLimitDecision, ClientDescriptor } from './client.js';
export { createRateLimiter, findLimit, counterKey, RateLimitRequestError } from './limiter.js';
export type {
  RateLimiter, RateLimiterOptions, RateLimitRequest, RateLimitResponse, RequestDescriptor, RateLimitEntry,
  DescriptorStatus, RateLimitCode,
} from './limiter.js';
export { createMemoryBackend } from './backend.js';
export type { RateLimitBackend, MemoryBackendOptions } from './backend.js';
export { createRedisBackend } from './redis-backend.js';
export type { RedisBackendOptions } from './redis-backend.js';
export { compileRateLimitConfig, UNIT_SECONDS } from './config.js';
export type { RateLimitConfig, RateLimitConfigDocument, RateLimitDescriptorConfig, RateLimitPolicy, RateLimitUnit, DescriptorNode, SourcedDocument } from './config.js';
export { loadRateLimitConfig, readDocuments } from './load.js';
export type { RateLimitConfigInput } from './load.js';
export { rateLimitServiceDefinition, rateLimitClientConstructor, SHOULD_RATE_LIMIT_METHOD } from './protocol.js';
