/**
 * gRPC status ↔ HTTP status, as Envoy maps them: grpcToHttp feeds outlier
 * detection and metrics (Grpc::Utility::grpcToHttpStatus); HTTP-status
 * aborts and local replies reach gRPC callers through core/fault's
 * grpcStatusForHttp (Grpc::Utility::httpToGrpcStatus).
 */
import { status as Status } from '@grpc/grpc-js';
import { grpcStatusForHttp } from '../core/fault.js';

export { grpcStatusForHttp };

const toHttp: readonly number[] = [
  200, // OK
  499, // CANCELLED
  500, // UNKNOWN
  400, // INVALID_ARGUMENT
  504, // DEADLINE_EXCEEDED
  404, // NOT_FOUND
  409, // ALREADY_EXISTS
  403, // PERMISSION_DENIED
  429, // RESOURCE_EXHAUSTED
  400, // FAILED_PRECONDITION
  409, // ABORTED
  400, // OUT_OF_RANGE
  501, // UNIMPLEMENTED
  500, // INTERNAL
  503, // UNAVAILABLE
  500, // DATA_LOSS
  401, // UNAUTHENTICATED
];

/** The HTTP status Envoy reports to outlier detection for a grpc-status. */
export function grpcToHttp(code: number): number {
  return toHttp[code] ?? 500;
}

/** grpc-js status details that mean the attempt never reached the server (a connect failure). */
const connectFailure = /No connection established|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|connect ETIMEDOUT|Failed to connect/;

/** Whether an UNAVAILABLE from grpc-js is a connection failure rather than the server's own status. */
export function isConnectFailure(code: number, details: string): boolean {
  return code === Status.UNAVAILABLE && connectFailure.test(details);
}
