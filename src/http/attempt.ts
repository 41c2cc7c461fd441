/**
 * One upstream attempt of an exchange: the undici handler for a single try
 * on a single endpoint. It forwards to its exchange only while it is the
 * current attempt; a superseded or abandoned attempt drains quietly.
 */
import { cancelDeadline, type Deadline } from '../core/deadlines.js';
import type { Host } from '../core/load-balancer.js';
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

  /** Stops this attempt whether or not undici has connected it yet. */
  abandon(reason: unknown): void {
    this.abandoned = true;
    cancelDeadline(this.deadline);
    this.abortUpstream?.(reason);
  }
}
