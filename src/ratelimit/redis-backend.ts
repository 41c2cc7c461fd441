/**
 * The Redis backend, as envoyproxy/ratelimit uses Redis: `INCRBY key hits`
 * then `EXPIRE key window` for every descriptor of a request, all pipelined
 * in one round trip. Every service instance pointing at the same Redis shares
 * the same quota.
 */
import { Redis } from 'ioredis';
import type { RateLimitBackend } from './backend.js';

/** Options of {@link createRedisBackend}. */
export interface RedisBackendOptions {
  /** `redis://host:port[/db]` (the backend owns and closes the connection), or a caller-owned ioredis client. */
  redis: string | Redis;
  /** Prepended to every key (envoyproxy's CACHE_KEY_PREFIX); default none. */
  keyPrefix?: string;
  /** A command taking longer fails (and the service answers an error); default 1000 ms. */
  commandTimeoutMs?: number;
}

/**
 * Connects to Redis and returns a backend once the connection is ready.
 * Commands fail at once while Redis is unreachable (no offline queue), so a
 * Redis outage turns into fast errors that clients handle per failureModeDeny
 * rather than into stalled calls.
 */
export async function createRedisBackend(options: RedisBackendOptions): Promise<RateLimitBackend> {
  const owned = typeof options.redis === 'string';
  const redis = typeof options.redis === 'string'
    ? new Redis(options.redis, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs ?? 1000,
      // Reconnect quickly and forever: an outage should end as soon as Redis is back.
      retryStrategy: (times) => Math.min(50 * times, 1000),
    })
    : options.redis;
  if (owned) {
    // Connection errors surface through failed commands; without a listener ioredis prints each retry.
    redis.on('error', () => {});
    try {
      await redis.connect();
    } catch (err) {
      redis.disconnect(); // stop the retry loop: the caller gets the error, not a background reconnector
      throw err;
    }
  }
  const prefix = options.keyPrefix ?? '';
  let closed = false;
  return {
    async increment(keys, hits, ttlSeconds) {
      const pipeline = redis.pipeline();
      for (let i = 0; i < keys.length; i++) {
        const key = prefix + keys[i]!;
        pipeline.incrby(key, hits);
        pipeline.expire(key, ttlSeconds[i]!);
      }
      const results = await pipeline.exec();
      if (!results) throw new Error('redis pipeline was discarded');
      const totals = new Array<number>(keys.length);
      for (let i = 0; i < keys.length; i++) {
        const [err, value] = results[i * 2]!;
        if (err) throw err;
        totals[i] = Number(value);
      }
      return totals;
    },
    async close() {
      if (closed || !owned) return;
      closed = true;
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
