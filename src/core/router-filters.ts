/**
 * The filters in front of the router, in Envoy's order (Istio's filter
 * chain): CORS (HTTP only: a preflight is answered here), the fault filter
 * (a delay, then an abort), the local rate limit, then the global rate limit
 * (an asynchronous ask to the rate-limit service). The first that refuses
 * answers with a local reply; otherwise the session's router admits the
 * request. Also the local replies for a try that failed without a response.
 */
import { MeshTimeoutError, type ResponseFlag } from '../errors.js';
import { decideCors } from './cors.js';
import { decideFault } from './fault.js';
import { descriptorsFor, type GlobalLimitPolicy } from './global-rate-limit.js';
import { GrpcCode, grpcStatusForHttp } from './grpc-status.js';
import type { AttemptFailure } from './retry.js';
import type { GlobalLimitDecision, RouterSession } from './router-session.js';
import { RateLimitOutcome } from './token-bucket.js';

const PENDING = 0;

/** Runs CORS, draws the fault, then runs the rest of the chain now or after the delay. */
export function runFilters(session: RouterSession): void {
  const route = session.route!;
  const vhostCors = session.vhost!.cors;
  if (!session.grpc && (route.cors !== undefined || vhostCors !== undefined)) {
    const cors = decideCors(route.cors, vhostCors, session, session.router.random());
    if (cors.kind === 'preflight') return session.localReply(undefined, 200, 0, '', cors.headers);
    if (cors.kind === 'simple' && cors.headers.length > 0) session.responseHeaders = { add: cors.headers.map(([k, v]) => [k, v, true] as const), remove: [] };
  }
  const fault = decideFault(session.route!.fault, session.router.random);
  session.fault = fault;
  if (fault.delayMs > 0) {
    session.flags = 'DI';
    if (session.span !== undefined) session.router.tracer?.faultDelay(session.span, fault.delayMs);
    // Fault delays are a route's fixed durations: the deadline queues suit them.
    session.delay = session.router.deadlines.arm(fault.delayMs, afterFaultDelay, session);
  } else {
    afterFaultDelay(session);
  }
}

function afterFaultDelay(session: RouterSession): void {
  session.delay = undefined;
  if (session.state !== PENDING) return;
  const fault = session.fault;
  // grpc_status aborts answer gRPC callers; an HTTP caller only sees http_status ones.
  if (fault.abortHttpStatus !== undefined || (session.grpc && fault.abortGrpcStatus !== undefined)) {
    const http = fault.abortHttpStatus ?? 200;
    if (session.span !== undefined) session.router.tracer?.faultAbort(session.span, http);
    return session.localReply('FI', http, fault.abortGrpcStatus ?? grpcStatusForHttp(http), 'fault filter abort');
  }
  const vhost = session.vhost!;
  const limiter = vhost.localLimiter;
  if (limiter !== undefined && limiter.check() === RateLimitOutcome.Limited) {
    if (session.span !== undefined) session.router.tracer?.rateLimited(session.span, 'local', vhost.name);
    // Envoy answers a rate-limited gRPC call with the HTTP→gRPC mapping of its status (429: UNAVAILABLE).
    const status = limiter.policy.status;
    return session.localReply('RL', status, grpcStatusForHttp(status), 'local_rate_limited', limiter.xRateLimitHeaders());
  }
  // A route with its own rate_limits (RouteAction) decides; otherwise the virtual host's.
  const global = session.route!.globalLimit ?? vhost.globalLimit;
  if (global === undefined) return session.admit();
  const descriptors = descriptorsFor(global, (name) => session.requestHeader(name), () => remoteAddress(session), () => session.route!.clusters[session.clusterIndex]);
  if (descriptors.length === 0) return session.admit();
  session.router.overGlobalLimit(session.snapshot, global, descriptors).then(
    (decision) => afterGlobalLimit(session, global, decision),
    // The client applies failure_mode_deny itself; a check that still throws lets the request through.
    () => {
      if (session.state === PENDING) session.admit();
    },
  );
}

function afterGlobalLimit(session: RouterSession, global: GlobalLimitPolicy, decision: GlobalLimitDecision): void {
  if (session.state !== PENDING) return;
  if (!decision.overLimit) return session.admit();
  // failure_mode_deny and the service failed: Envoy's status_on_error (500), flag RLSE, details rate_limiter_error.
  if (decision.flag === 'RLSE') {
    const status = decision.status ?? global.statusOnError;
    return session.localReply('RLSE', status, grpcStatusForHttp(status), 'rate_limiter_error');
  }
  if (session.span !== undefined) session.router.tracer?.rateLimited(session.span, 'global', global.domain);
  const headers: Record<string, string> = { 'x-envoy-ratelimited': 'true' };
  if (decision.headers !== undefined) Object.assign(headers, decision.headers);
  session.localReply('RL', 429, GrpcCode.UNAVAILABLE, 'rate limited', headers);
}

/** The downstream caller's address: the first x-forwarded-for hop (the gateway sets it). */
function remoteAddress(session: RouterSession): string | undefined {
  const xff = session.requestHeader('x-forwarded-for');
  return xff === undefined ? undefined : xff.split(',')[0]!.trim();
}

/** A local reply's flag, statuses and text. */
export interface FailureReply {
  readonly flag: ResponseFlag;
  readonly status: number;
  readonly grpcStatus: number;
  readonly message: string;
}

/** The local reply for a try that failed without a response and is not retried (Envoy's texts). */
export function failureReply(failure: AttemptFailure, retried: boolean, error: Error | undefined): FailureReply {
  if (failure === 'timeout') return { flag: 'UT', status: 504, grpcStatus: GrpcCode.DEADLINE_EXCEEDED, message: 'upstream request timeout' };
  const code = (error as { code?: unknown } | undefined)?.code;
  const detail = typeof code === 'string' ? ` (${code})` : error !== undefined && error.message !== '' ? `: ${error.message}` : '';
  if (failure === 'connect-failure') {
    return retried
      ? { flag: 'URX', status: 503, grpcStatus: GrpcCode.UNAVAILABLE, message: `upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection failure${detail}` }
      : { flag: 'UF', status: 503, grpcStatus: GrpcCode.UNAVAILABLE, message: `upstream connect error or disconnect/reset before headers. reset reason: connection failure${detail}` };
  }
  return { flag: retried ? 'URX' : 'UC', status: 503, grpcStatus: GrpcCode.UNAVAILABLE, message: `upstream connect error or disconnect/reset before headers. reset reason: connection termination${detail}` };
}

/** The error a response already forwarded ends with when the route timeout fires. */
export function routeTimeoutError(): Error {
  return new MeshTimeoutError('upstream request timeout');
}
