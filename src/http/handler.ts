/**
 * undici's dispatch handlers. undici 7 still drives its pools with the
 * "legacy" callbacks (onConnect/onHeaders/onData/onComplete/onError), and
 * undici.request and fetch pass handlers of that kind; handlers of the newer
 * controller style (onRequestStart …) are adapted once at the edge.
 */
import { createRequire } from 'node:module';
import type { Dispatcher } from 'undici';

export interface LegacyHandler {
  onConnect?(abort: (reason?: unknown) => void, context?: unknown): void;
  onHeaders?(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean | void;
  onData?(chunk: Buffer): boolean | void;
  onComplete?(trailers: Buffer[] | string[] | null): void;
  onError(err: Error): void;
  onUpgrade?(statusCode: number, rawHeaders: Buffer[], socket: unknown): void;
  onResponseStarted?(): void;
}

const require = createRequire(import.meta.url);
// undici's own adapter from controller-style to legacy callbacks (no exports map, so the path is stable).
const UnwrapHandler = require('undici/lib/handler/unwrap-handler.js') as { unwrap(h: unknown): LegacyHandler };

/** Returns a legacy-callback view of any undici handler. */
export function asLegacy(handler: Dispatcher.DispatchHandler): LegacyHandler {
  return UnwrapHandler.unwrap(handler);
}
