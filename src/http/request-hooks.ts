/**
 * The two hooks the inbound side needs on Node's request and response
 * objects, bound per instance — nothing process-wide is touched, so other
 * libraries' streams (an HTTP client's responses, another server's requests)
 * are never affected:
 *
 *  - the request's events run in the request's context: its `emit` is
 *    replaced on the instance by one that runs the original inside the
 *    context. Listeners themselves are never wrapped, so `once`, `off` and
 *    `removeListener(fn)` behave exactly as on any emitter, and listeners
 *    added before the binding (node's own) see the context too;
 *  - the response counts the body bytes written through it: `write` and `end`
 *    are replaced on the instance by counting ones that call whatever `write`
 *    / `end` the instance had (a compression middleware's included).
 *
 * The replacements are module-level functions reading the instance's state
 * from WeakMaps: no closure is made per request, and the only own property a
 * hook adds is the method it replaces. Adding properties to a request whose
 * prototype a framework replaced (Express does, per request) costs
 * microseconds each and gives every request its own hidden class.
 */
import type { AsyncLocalStorage } from 'node:async_hooks';
import type { Context } from '@opentelemetry/api';

type Method = (this: unknown, ...args: unknown[]) => unknown;

/** Runs `fn` in `ctx` (meshlet's context store and OpenTelemetry's active context). */
export type ContextRunner = (als: AsyncLocalStorage<Context>, ctx: Context, fn: Method, thisArg: unknown, args: unknown[]) => unknown;

interface Binding {
  als: AsyncLocalStorage<Context>;
  ctx: Context;
  run: ContextRunner;
  /** the instance's `emit` before the binding */
  emit: Method;
}

const bindings = new WeakMap<object, Binding>();
const counters = new WeakMap<object, Counting>();

/** Where a response's body bytes are added up. */
export interface ByteCounter {
  responseBytes: number;
}

interface Counting {
  counter: ByteCounter;
  write: Method;
  end: Method;
}

type Bound = { emit: Method; write: Method; end: Method };

/**
 * Makes every event `emitter` emits from now on run in `ctx`. A Node
 * request's 'data'/'end' events fire from the socket's async context, not
 * the middleware's, so a body parser that calls `next()` from 'end' would
 * otherwise lose the request's trace (OpenTelemetry's context managers bind
 * emitters for the same reason). Binding again moves it to the new context.
 */
export function bindEmitter(emitter: object, als: AsyncLocalStorage<Context>, ctx: Context, run: ContextRunner): void {
  const e = emitter as Bound;
  const existing = bindings.get(e);
  if (existing !== undefined) {
    existing.als = als;
    existing.ctx = ctx;
    return;
  }
  bindings.set(e, { als, ctx, run, emit: e.emit });
  e.emit = emitInContext as Method;
}

function emitInContext(this: Bound, ...args: unknown[]): unknown {
  const b = bindings.get(this)!;
  return b.run(b.als, b.ctx, b.emit, this, args);
}

/** Adds the body bytes written through `res` (write and end) to `counter`. */
export function countResponseBytes(res: object, counter: ByteCounter): void {
  const r = res as Bound;
  const existing = counters.get(r);
  if (existing !== undefined) {
    existing.counter = counter;
    return;
  }
  counters.set(r, { counter, write: r.write, end: r.end });
  r.write = countingWrite as Method;
  r.end = countingEnd as Method;
}

function countingWrite(this: Bound, chunk: unknown, encoding: unknown): unknown {
  const c = counters.get(this)!;
  count(c.counter, chunk, encoding);
  // eslint-disable-next-line prefer-rest-params
  return Reflect.apply(c.write, this, arguments);
}

function countingEnd(this: Bound, chunk: unknown, encoding: unknown): unknown {
  const c = counters.get(this)!;
  count(c.counter, chunk, encoding);
  // eslint-disable-next-line prefer-rest-params
  return Reflect.apply(c.end, this, arguments);
}

function count(counter: ByteCounter, chunk: unknown, encoding: unknown): void {
  if (chunk === undefined || chunk === null || typeof chunk === 'function') return;
  if (typeof chunk === 'string') counter.responseBytes += Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  else if (chunk instanceof Uint8Array) counter.responseBytes += chunk.byteLength;
}
