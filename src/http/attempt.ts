/**
 * One upstream attempt of an exchange: the undici handler for a single try
 * on a single endpoint. It forwards to its exchange only while it is the
 * current attempt; a superseded or abandoned attempt drains quietly.
 */
import { cancelDeadline, type Deadline } from '../core/deadlines.js';
import type { Host } from '../core/load-balancer.js';
import type { AttemptFailure } from '../core/retry.js';
import type { OutboundRetry } from '../telemetry/outbound.js';
import type { LegacyHandler } from './handler.js';

/** What an attempt reports to. */
export interface AttemptOwner {
  readonly handler: LegacyHandler;
  attemptHeaders(attempt: Attempt, status: number, raw: Buffer[], resume: () => void, text: string): boolean;
  attemptData(attempt: Attempt, chunk: Buffer): boolean;
  attemptComplete(attempt: Attempt, trailers: Buffer[] | string[] | null): void;
  attemptError(attempt: Attempt, err: Error): void;
}

export class Attempt implements LegacyHandler {
  abortUpstream: ((reason?: unknown) => void) | undefined;
  /** the response is being drained because the exchange will retry */
  discard = false;
  /** the exchange has moved on; abort as soon as undici lets us */
  abandoned = false;
  timedOut = false;
  /** the per-try timeout */
  deadline: Deadline | undefined;
  /** the upstream's status, once it answered */
  status = 0;
  /** this try's span when it is a retry of a traced request */
  retry: OutboundRetry | undefined = undefined;
  private released = false;

  constructor(readonly owner: AttemptOwner, readonly host: Host) {
    host.active++;
  }

  /** Gives the host's active-request slot back (once) and stops the per-try timer. */
  release(): void {
    cancelDeadline(this.deadline);
    if (this.released) return;
    this.released = true;
    this.host.active--;
  }

  onConnect(abort: (reason?: unknown) => void): void {
    this.abortUpstream = abort;
    if (this.abandoned) abort(new Error('attempt abandoned'));
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void, text: string): boolean {
    return this.owner.attemptHeaders(this, status, raw, resume, text);
  }

  onData(chunk: Buffer): boolean {
    if (this.discard || this.abandoned) return true;
    return this.owner.attemptData(this, chunk);
  }

  onComplete(trailers: Buffer[] | string[] | null): void {
    this.owner.attemptComplete(this, trailers);
  }

  onError(err: Error): void {
    this.owner.attemptError(this, err);
  }

  /** What the retry policy and outlier detection see of this try's failure with `err`. */
  failureOf(err: Error): AttemptFailure {
    if (this.timedOut) return 'timeout';
    const code = (err as { code?: string }).code;
    return code !== undefined && CONNECT_ERROR_CODES.has(code) ? 'connect-failure' : 'reset';
  }

  /** Stops this attempt whether or not undici has connected it yet. */
  abandon(reason: unknown): void {
    this.abandoned = true;
    cancelDeadline(this.deadline);
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
