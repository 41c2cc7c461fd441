/**
 * The contract between the router session (router-session.ts) and what
 * surrounds it: the mesh's shared context, the transport members each adapter
 * implements, the verdict on a try's response, and the session states.
 */
import type { Deadlines } from './deadlines.js';
import type { GlobalLimitPolicy } from './global-rate-limit.js';
import type { Host } from './load-balancer.js';
import type { MirrorPolicy } from './mirror.js';
import type { RandomSource } from './random.js';
import type { RouterAttempt } from './router-attempt.js';
import type { Snapshot } from './snapshot.js';
import type { ResponseFlag } from '../errors.js';

/** The rate-limit service's answer for one request. */
export interface GlobalLimitDecision {
  readonly overLimit: boolean;
  /** `RLSE` when the service failed and failure_mode_deny rejects the request (status: status_on_error); else `RL`. */
  readonly flag?: 'RL' | 'RLSE' | undefined;
  readonly status?: number | undefined;
  readonly headers?: Record<string, string> | undefined;
}

/** Span events the session emits on the request's span (MeshTracer implements them). */
export interface RouterTracer {
  faultDelay(span: object, delayMs: number): void;
  faultAbort(span: object, status: number): void;
  rateLimited(span: object, scope: 'local' | 'global', limiter?: string): void;
  retrying(span: object, resendCount: number, reason: string): void;
}

/** What a session needs from the mesh that runs it (one object per mesh, shared by its requests). */
export interface RouterContext {
  readonly random: RandomSource;
  /** Fault delays, route and per-try timeouts. */
  readonly deadlines: Deadlines;
  readonly tracer: RouterTracer | undefined;
  /** This workload's IP: the downstream address of its own outbound calls (a `source_ip` hash policy hashes it). */
  readonly sourceAddress?: string | undefined;
  /** Asks the rate-limit service; errors and timeouts follow the policy's failure_mode_deny. */
  overGlobalLimit(snapshot: Snapshot, policy: GlobalLimitPolicy, descriptors: Array<{ entries: Array<{ key: string; value: string }> }>): Promise<GlobalLimitDecision>;
}

/**
 * The transport side of a session: what each adapter implements (as members
 * of its {@link RouterSession} subclass).
 */
export interface RouterTransport {
  /** A request header for rate-limit descriptors, pseudo-headers (`:path`, `:method`, `:authority`) included. */
  requestHeader(name: string): string | undefined;
  /** Makes a try on `host` (not sent yet), or an Error when no connection can be made (`code` MESH_CLOSED: the mesh closed). */
  createAttempt(host: Host, retryNumber: number): RouterAttempt | Error;
  /** Sends the try made by createAttempt; it reports back through the session's attempt* methods. */
  sendAttempt(attempt: RouterAttempt): void;
  /** Stops a try the session let go of; its later reports are ignored. */
  cancelAttempt(attempt: RouterAttempt, reason: string): void;
  /** Answers the caller from the mesh (after the session ended; `flag` undefined only for direct responses). */
  sendLocalReply(flag: ResponseFlag | undefined, httpStatus: number, grpcStatus: number, message: string, headers: Record<string, string> | undefined): void;
  /** Fails a response already forwarded downstream (an upstream reset mid-body, the route timeout). */
  failDownstream(error: Error): void;
  /** Sends a fire-and-forget copy of the request to the policy's cluster. */
  mirror(policy: MirrorPolicy): void;
  /** The session ended (telemetry, buffers); `error` when it ended in one. */
  ended(error: Error | undefined): void;
}

/** What the adapter does with a try's response headers ({@link RouterSession.attemptResponse}). */
export const Verdict = {
  /** Forward it downstream: the request is committed to this try. */
  COMMIT: 0,
  /** Drain it and report its end: the session retries then. */
  RETRY: 1,
  /** Abort it: the session has moved on. */
  DROP: 2,
} as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];

/** Session states. */
export const PENDING = 0;
export const FORWARDING = 1;
export const DONE = 2;
