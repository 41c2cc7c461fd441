/**
 * gRPC status ↔ HTTP status, as Envoy maps them (the tables live in
 * core/grpc-status.ts, shared with the router session), and which grpc-js
 * statuses mean the attempt never reached the server.
 */
import { status as Status } from '@grpc/grpc-js';

export { grpcStatusForHttp, grpcToHttp } from '../core/grpc-status.js';

/** grpc-js status details that mean the attempt never reached the server (a connect failure). */
const connectFailure = /No connection established|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|connect ETIMEDOUT|Failed to connect/;

/** Whether an UNAVAILABLE from grpc-js is a connection failure rather than the server's own status. */
export function isConnectFailure(code: number, details: string): boolean {
  return code === Status.UNAVAILABLE && connectFailure.test(details);
}
