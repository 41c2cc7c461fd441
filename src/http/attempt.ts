/**
 * One upstream try of an exchange: the undici handler for a single request
 * on a single endpoint's pool. It reports what undici tells it to its
 * exchange (the router session); a try the session let go of drains quietly.
 */
import type { Host } from '../core/load-balancer.js';
import type { AttemptFailure } from '../core/retry.js';
import { RouterAttempt } from '../core/router-attempt.js';
import type { OutboundRetry } from '../telemetry/outbound.js';
import type { Exchange } from './exchange.js';
import type { LegacyHandler } from './handler.js';

export class Attempt extends RouterAttempt implements LegacyHandler {
  abortUpstream: ((reason?: unknown) => void) | undefined = undefined;
  /** this try's span when it is a retry of a traced request */
  retry: OutboundRetry | undefined = undefined;

  constructor(readonly exchange: Exchange, host: Host) {
    super(exchange, host);
  }

  onConnect(abort: (reason?: unknown) => void): void {
    this.abortUpstream = abort;
    if (this.abandoned) abort(new Error('attempt abandoned'));
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void, text: string): boolean {
    return this.exchange.attemptHeaders(this, status, raw, resume, text);
  }

  onData(chunk: Buffer): boolean {
    if (this.discard || this.abandoned) return true;
    return this.exchange.attemptData(chunk);
  }

  onComplete(trailers: Buffer[] | string[] | null): void {
    this.exchange.attemptComplete(this, trailers);
  }

  onError(err: Error): void {
    this.exchange.attemptError(this, err);
  }

  /** What the retry policy and outlier detection see of this try's failure with `err`. */
  failureOf(err: Error): AttemptFailure {
    if (this.timedOut) return 'timeout';
    const code = (err as { code?: string }).code;
    return code !== undefined && CONNECT_ERROR_CODES.has(code) ? 'connect-failure' : 'reset';
  }

  /** Stops this try whether or not undici has connected it yet. */
  abort(reason: unknown): void {
    this.abortUpstream?.(reason);
  }
}

/** undici and socket error codes that mean the connection was never made (Envoy's connect-failure). */
const CONNECT_ERROR_CODES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED', 'UND_ERR_CONNECT']);

const GRPC_STATUS = 'grpc-status';

/** gRPC status from a trailers-only response, read only when the policy retries on gRPC codes (`on` ≥ 2^16). */
export function grpcStatusOf(raw: Buffer[], on: number): number | undefined {
  if (on < 1 << 16) return undefined;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toString('latin1').toLowerCase() === GRPC_STATUS) return Number(raw[i + 1]!.toString('latin1'));
  return undefined;
}
