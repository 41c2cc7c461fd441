/**
 * The router session's timer callbacks, at module level: arming a route
 * deadline, a per-try deadline or a retry back-off passes the session (or the
 * try) as the argument and allocates no closure per request.
 */
import type { RouterAttempt } from './router-attempt.js';
import type { RouterSession } from './router-session.js';

export function routeTimedOut(session: RouterSession): void {
  session.onRouteTimeout();
}

export function perTryTimedOut(attempt: RouterAttempt): void {
  attempt.session.onPerTryTimeout(attempt);
}

export function backoffOver(session: RouterSession): void {
  session.onBackoffOver();
}
