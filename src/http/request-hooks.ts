/**
 * The two hooks the inbound side needs on Node's request and response
 * objects: listeners added to a request run in the request's context, and a
 * response counts the body bytes written through it.
 *
 * Both replace methods once per prototype (Express's `app.request` /
 * `app.response`, or node's IncomingMessage / ServerResponse / http2 compat
 * classes) and act only on objects marked with a symbol. Patching each
 * request's and response's own methods instead, as before, gave every such
 * object eight more own properties and a per-request WeakMap: in
 * bench/http-service.ts the meshed service spent 432 µs of CPU per request
 * that way and 385 µs this way.
 */
import type { AsyncLocalStorage } from 'node:async_hooks';
import type { Context } from '@opentelemetry/api';

type Listener = ((...args: unknown[]) => unknown) & { listener?: unknown };
type AddListener = (this: unknown, event: string | symbol, listener: Listener) => unknown;
type Method = (this: unknown, ...args: unknown[]) => unknown;

/** Runs `fn` in `ctx` (meshlet's context store and OpenTelemetry's active context). */
export type ContextRunner = (als: AsyncLocalStorage<Context>, ctx: Context, fn: Listener, thisArg: unknown, args: unknown[]) => unknown;

interface Binding {
  als: AsyncLocalStorage<Context>;
  ctx: Context;
  run: ContextRunner;
}

const kBinding = Symbol.for('meshlet.contextBinding');
const kListenersPatched = Symbol.for('meshlet.listenersPatched');
const kCounter = Symbol.for('meshlet.responseBytes');
const kWritesPatched = Symbol.for('meshlet.writesPatched');

type Marked = Record<symbol, unknown> & { [kBinding]?: Binding; [kCounter]?: ByteCounter };

/** Where a response's body bytes are added up. */
export interface ByteCounter {
  responseBytes: number;
}

/**
 * Makes every listener added to `emitter` from now on run in `ctx`. A Node
 * request's 'data'/'end' events fire from the socket's async context, not
 * the middleware's, so a body parser that calls `next()` from 'end' would
 * otherwise lose the request's trace (OpenTelemetry's context managers bind
 * emitters for the same reason). `once` and `prependOnceListener` go through
 * the patched `on` / `prependListener`; each wrapper carries the listener as
 * `.listener`, which is how EventEmitter's `removeListener` finds it.
 */
export function bindEmitter(emitter: object, als: AsyncLocalStorage<Context>, ctx: Context, run: ContextRunner): void {
  const e = emitter as Marked;
  const existing = e[kBinding];
  if (existing !== undefined) {
    existing.als = als;
    existing.ctx = ctx;
    return;
  }
  patchListeners(Object.getPrototypeOf(emitter) as Record<string | symbol, unknown>);
  e[kBinding] = { als, ctx, run };
}

function patchListeners(proto: Record<string | symbol, unknown>): void {
  if (Object.prototype.hasOwnProperty.call(proto, kListenersPatched)) return;
  const on = proto.on as AddListener;
  const prepend = proto.prependListener as AddListener;
  proto.on = proto.addListener = function on_(this: Marked, event: string | symbol, listener: Listener): unknown {
    const b = this[kBinding];
    return on.call(this, event, b !== undefined && typeof listener === 'function' ? bound(b, listener) : listener);
  };
  proto.prependListener = function prependListener_(this: Marked, event: string | symbol, listener: Listener): unknown {
    const b = this[kBinding];
    return prepend.call(this, event, b !== undefined && typeof listener === 'function' ? bound(b, listener) : listener);
  };
  proto[kListenersPatched] = true;
}

function bound(b: Binding, listener: Listener): Listener {
  const w: Listener = function boundListener(this: unknown, ...args: unknown[]): unknown {
    return b.run(b.als, b.ctx, listener, this, args);
  };
  w.listener = listener;
  return w;
}

/** Adds the body bytes written through `res` (write and end) to `counter`. */
export function countResponseBytes(res: object, counter: ByteCounter): void {
  patchWrites(Object.getPrototypeOf(res) as Record<string | symbol, unknown>);
  (res as Marked)[kCounter] = counter;
}

function patchWrites(proto: Record<string | symbol, unknown>): void {
  if (Object.prototype.hasOwnProperty.call(proto, kWritesPatched)) return;
  const write = proto.write as Method;
  const end = proto.end as Method;
  proto.write = function write_(this: Marked, chunk: unknown, encoding: unknown): unknown {
    count(this, chunk, encoding);
    // eslint-disable-next-line prefer-rest-params
    return Reflect.apply(write, this, arguments);
  };
  proto.end = function end_(this: Marked, chunk: unknown, encoding: unknown): unknown {
    count(this, chunk, encoding);
    // eslint-disable-next-line prefer-rest-params
    return Reflect.apply(end, this, arguments);
  };
  proto[kWritesPatched] = true;
}

function count(res: Marked, chunk: unknown, encoding: unknown): void {
  const counter = res[kCounter];
  if (counter === undefined || chunk === undefined || typeof chunk === 'function') return;
  if (typeof chunk === 'string') counter.responseBytes += Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  else if (chunk instanceof Uint8Array) counter.responseBytes += chunk.byteLength;
}
