/**
 * undici's dispatch handlers, through undici's public handler API only.
 * undici 7 drives its pools with the callbacks it now calls legacy
 * (onConnect/onHeaders/onData/onComplete/onError), and undici.request and
 * fetch pass handlers of that kind: those are used as they are. Handlers of
 * the controller style (onRequestStart, onResponseStart, onResponseData,
 * onResponseEnd, onResponseError — what `Dispatcher.compose` interceptors and
 * undici 8 pass) get one small adapter that is also their
 * DispatchController (pause, resume, abort).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';

/** The callbacks the mesh delivers a response through (undici's legacy handler shape). */
export interface LegacyHandler {
  onConnect?(abort: (reason?: unknown) => void, context?: unknown): void;
  onHeaders?(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean | void;
  onData?(chunk: Buffer): boolean | void;
  onComplete?(trailers: Buffer[] | string[] | null): void;
  onError(err: Error): void;
  onUpgrade?(statusCode: number, rawHeaders: Buffer[], socket: unknown): void;
  onResponseStarted?(): void;
}

/** Returns a legacy-callback view of any undici handler; a controller-style one is adapted. */
export function asLegacy(handler: Dispatcher.DispatchHandler): LegacyHandler {
  if (handler === null || typeof handler !== 'object') throw new TypeError('handler must be an object');
  return typeof handler.onRequestStart === 'function' ? new ControllerHandler(handler) : (handler as LegacyHandler);
}

/** A controller-style handler seen through legacy callbacks; it is its own DispatchController. */
class ControllerHandler implements LegacyHandler, Dispatcher.DispatchController {
  rawHeaders: Buffer[] | null = null;
  rawTrailers: Buffer[] | string[] | null = null;
  private abortUpstream: ((reason?: unknown) => void) | undefined = undefined;
  private resumeUpstream: (() => void) | undefined = undefined;
  private isPaused = false;
  private isAborted = false;
  private abortReason: Error | null = null;

  constructor(private readonly handler: Dispatcher.DispatchHandler) {}

  get aborted(): boolean {
    return this.isAborted;
  }

  get paused(): boolean {
    return this.isPaused;
  }

  get reason(): Error | null {
    return this.abortReason;
  }

  /** Stops reading the response until {@link resume} (back-pressure). */
  pause(): void {
    this.isPaused = true;
  }

  resume(): void {
    if (!this.isPaused) return;
    this.isPaused = false;
    this.resumeUpstream?.();
  }

  abort(reason: Error): void {
    if (this.isAborted) return;
    this.isAborted = true;
    this.abortReason = reason;
    this.abortUpstream?.(reason);
  }

  onConnect(abort: (reason?: unknown) => void, context?: unknown): void {
    this.abortUpstream = abort;
    this.handler.onRequestStart?.(this, context);
    // Aborted before the request was connected: undici's contract is to abort as soon as it can.
    if (this.isAborted) abort(this.abortReason);
  }

  onUpgrade(statusCode: number, rawHeaders: Buffer[], socket: unknown): void {
    this.rawHeaders = rawHeaders;
    this.handler.onRequestUpgrade?.(this, statusCode, parseHeaders(rawHeaders), socket as Parameters<NonNullable<Dispatcher.DispatchHandler['onRequestUpgrade']>>[3]);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    this.resumeUpstream = resume;
    this.rawHeaders = rawHeaders;
    this.handler.onResponseStart?.(this, statusCode, parseHeaders(rawHeaders), statusText);
    return !this.isPaused;
  }

  onData(chunk: Buffer): boolean {
    this.handler.onResponseData?.(this, chunk);
    return !this.isPaused;
  }

  onComplete(trailers: Buffer[] | string[] | null): void {
    this.rawTrailers = trailers;
    this.handler.onResponseEnd?.(this, parseHeaders(trailers ?? EMPTY));
  }

  onError(err: Error): void {
    const onError = this.handler.onResponseError;
    // undici's contract: a handler without onResponseError cannot be told, so the error is thrown.
    if (onError === undefined) throw err;
    onError.call(this.handler, this, err);
  }
}

const EMPTY: Buffer[] = [];

type RawValue = Buffer | string | ReadonlyArray<Buffer | string>;

/**
 * undici's raw `[name, value, …]` header list as a header object: lower-case
 * names, latin1 values, repeated names as arrays (as undici's parseHeaders).
 */
export function parseHeaders(raw: ReadonlyArray<RawValue>): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const key = (typeof name === 'string' ? name : name.toString('latin1')).toLowerCase();
    const value = raw[i + 1]!;
    const text = typeof value === 'string' ? value : Array.isArray(value) ? value.map(latin1) : (value as Buffer).toString('latin1');
    const prev = Object.hasOwn(out, key) ? out[key] : undefined;
    if (prev === undefined) {
      // `__proto__` as a header name must be data, not the prototype.
      if (key === '__proto__') Object.defineProperty(out, key, { value: text, enumerable: true, configurable: true, writable: true });
      else out[key] = text;
    } else if (Array.isArray(prev)) {
      if (Array.isArray(text)) prev.push(...text);
      else prev.push(text);
    } else {
      out[key] = Array.isArray(text) ? [prev, ...text] : [prev, text];
    }
  }
  return out as IncomingHttpHeaders;
}

function latin1(v: Buffer | string): string {
  return typeof v === 'string' ? v : v.toString('latin1');
}
