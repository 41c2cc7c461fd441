/**
 * What the router session knows of one try on one endpoint. Each adapter's
 * attempt (the undici handler of one try, the grpc-js listener of one call)
 * extends it, so a try costs one object whatever the transport.
 */
import { cancelDeadline, type Deadline } from './deadlines.js';
import type { Host } from './load-balancer.js';
import type { RouterSession } from './router-session.js';

/** One try of a request on one endpoint (Envoy's UpstreamRequest). */
export class RouterAttempt {
  /** the per-try timeout, armed by the session */
  deadline: Deadline | undefined = undefined;
  /** the per-try timeout fired */
  timedOut = false;
  /** the session will retry once this try's response has drained (the adapter reports its end) */
  discard = false;
  /** the session let go of it (retry, timeout, local reply, caller abort): what it reports is ignored */
  abandoned = false;
  /** the upstream's status as the session saw it (0 before headers) */
  status = 0;
  /** the upstream's gRPC status, when the adapter read one */
  grpcStatus: number | undefined = undefined;
  private released = false;

  constructor(
    /** the request this try belongs to */
    readonly session: RouterSession,
    readonly host: Host,
  ) {
    // LEAST_REQUEST reads it.
    host.active++;
  }

  /** Gives the host's active-request slot back (once) and disarms the per-try timeout. */
  release(): void {
    cancelDeadline(this.deadline);
    if (this.released) return;
    this.released = true;
    this.host.active--;
  }
}
