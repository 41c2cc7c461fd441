/**
 * Entering a request's context: meshlet's own AsyncLocalStorage (what its
 * outbound calls read) and OpenTelemetry's active context (for an app that
 * registered a context manager), for every inbound adapter.
 */
import type { AsyncLocalStorage } from 'node:async_hooks';
import { type Context, context as otelContext, ROOT_CONTEXT } from '@opentelemetry/api';

/**
 * Runs `fn` with `ctx` as both meshlet's and OpenTelemetry's active context.
 * Entering the root context where nothing else is active is a plain call: it
 * reads the same either way, and on Node 20 the first `AsyncLocalStorage.run`
 * enables an async hook that then costs every promise and tick of the process
 * (~10 µs per request through `mesh.httpAgent` with telemetry off).
 */
export function runInContext<A extends unknown[], R>(als: AsyncLocalStorage<Context>, ctx: Context, fn: (...args: A) => R, thisArg: unknown, args: A): R {
  if (ctx === ROOT_CONTEXT && als.getStore() === undefined && otelContext.active() === ROOT_CONTEXT) return fn.apply(thisArg, args);
  return als.run(ctx, withOtel, ctx, fn as (...args: unknown[]) => unknown, thisArg, args) as R;
}

function withOtel(ctx: Context, fn: (...args: unknown[]) => unknown, thisArg: unknown, args: unknown[]): unknown {
  return otelContext.with(ctx, fn, thisArg, ...args);
}
