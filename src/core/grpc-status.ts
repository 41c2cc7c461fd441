/**
 * gRPC status codes as the router needs them, protocol-neutral: the names
 * (for retry reasons), Envoy's grpc-status → HTTP status mapping that feeds
 * outlier detection (Grpc::Utility::grpcToHttpStatus), and the reverse for
 * local replies to gRPC callers (Grpc::Utility::httpToGrpcStatus).
 */
import { grpcStatusForHttp } from './fault.js';

export { grpcStatusForHttp };

/** The codes the router itself answers with. */
export const GrpcCode = { OK: 0, CANCELLED: 1, DEADLINE_EXCEEDED: 4, INTERNAL: 13, UNAVAILABLE: 14 } as const;

const NAMES: readonly string[] = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE',
  'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
];

const TO_HTTP: readonly number[] = [
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
  return TO_HTTP[code] ?? 500;
}

/** `UNAVAILABLE` for 14; the number as text for codes outside the table. */
export function grpcStatusName(code: number): string {
  return NAMES[code] ?? String(code);
}
