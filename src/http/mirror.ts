/**
 * Traffic mirroring: a fire-and-forget copy of a request to another cluster,
 * with the authority suffixed `-shadow` as Envoy does. The copy's outcome
 * never reaches the caller and a hanging mirror never slows it: the copy has
 * its own bounded timeouts and its response is discarded.
 */
import type { Dispatcher } from 'undici';
import { shadowAuthority } from '../core/mirror.js';
import type { Snapshot } from '../core/snapshot.js';
import type { ExchangeContext } from './exchange.js';
import { dispatchTracedByMesh } from '../telemetry/otel-coexistence.js';

/** How long a mirrored request may take before it is dropped. */
const MIRROR_TIMEOUT_MS = 10_000;

const discard: Dispatcher.DispatchHandler & Record<string, unknown> = {
  onConnect() {},
  onHeaders() { return true; },
  onData() { return true; },
  onComplete() {},
  onError() {},
};

export function sendMirror(ctx: Pick<ExchangeContext, 'pool'>, snapshot: Snapshot, clusterName: string, opts: Dispatcher.DispatchOptions, authority: string, shadowSuffix: boolean): void {
  const cluster = snapshot.clusters.get(clusterName);
  const host = cluster?.pick();
  if (!cluster || !host) return;
  // A streamed body was consumed by the original request; only replayable bodies are mirrored.
  const body = opts.body;
  if (body != null && typeof body !== 'string' && !(body instanceof Uint8Array)) return;
  const headers = { ...(opts.headers as Record<string, string>), host: shadowSuffix ? shadowAuthority(authority) : authority };
  try {
    dispatchTracedByMesh(ctx.pool(host, cluster), { ...opts, headers, headersTimeout: MIRROR_TIMEOUT_MS, bodyTimeout: MIRROR_TIMEOUT_MS }, discard);
  } catch {
    // A mirror must never affect the caller.
  }
}
