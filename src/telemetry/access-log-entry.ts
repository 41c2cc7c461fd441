/**
 * One finished request as an access log sees it: the values behind Envoy's
 * command operators. Built only when an access log is configured, after the
 * response has gone, so nothing here is on the request's own latency path.
 */
import type { HeaderSource } from './headers.js';
import { headerValue } from './headers.js';

/** The values Envoy's command operators read (`-` / null where Envoy has none). */
export interface AccessLogEntry {
  /** Wall-clock start, ms since the epoch (%START_TIME%). */
  readonly startTime: number;
  /** %REQ(:METHOD)% */
  readonly method: string;
  /** %REQ(:PATH)%: path and query as sent (outbound) or received (inbound). */
  readonly path: string;
  /** %PROTOCOL%: `HTTP/1.1`, `HTTP/2`. */
  readonly protocol: string;
  /** %REQ(:AUTHORITY)% */
  readonly authority: string | undefined;
  /** %RESPONSE_CODE%: 0 when no response was sent. */
  readonly responseCode: number;
  /** %RESPONSE_FLAGS%: Envoy's short flags, `-` for none. */
  readonly responseFlags: string;
  /** %RESPONSE_CODE_DETAILS% */
  readonly responseCodeDetails: string | undefined;
  /** %UPSTREAM_TRANSPORT_FAILURE_REASON% */
  readonly upstreamTransportFailureReason: string | undefined;
  /** gRPC status, for `response.grpc_status` and %GRPC_STATUS%. */
  readonly grpcStatus: number | undefined;
  /** %BYTES_RECEIVED%: request body bytes (Envoy counts the body, not headers, here). */
  readonly bytesReceived: number;
  /** %BYTES_SENT%: response body bytes. */
  readonly bytesSent: number;
  /** %DURATION%: whole milliseconds from the start to the last byte. */
  readonly durationMs: number;
  /** %UPSTREAM_HOST% (`ip:port`). */
  readonly upstreamHost: string | undefined;
  /** %UPSTREAM_CLUSTER% / %UPSTREAM_CLUSTER_RAW%. */
  readonly upstreamCluster: string | undefined;
  /** %UPSTREAM_LOCAL_ADDRESS% */
  readonly upstreamLocalAddress: string | undefined;
  /** %DOWNSTREAM_LOCAL_ADDRESS% */
  readonly downstreamLocalAddress: string | undefined;
  /** %DOWNSTREAM_REMOTE_ADDRESS% */
  readonly downstreamRemoteAddress: string | undefined;
  /** %REQUESTED_SERVER_NAME%: the SNI of the downstream TLS connection. */
  readonly requestedServerName: string | undefined;
  /** %ROUTE_NAME% */
  readonly routeName: string | undefined;
  /** True when the connection was mutual TLS (`connection.mtls`). */
  readonly mtls: boolean;
  /** %REQ(name)%: a request header (lower-case name). */
  requestHeader(name: string): string | undefined;
  /** %RESP(name)%: a response header (lower-case name). */
  responseHeader(name: string): string | undefined;
}

/** Fields of an entry that are plain values; headers come as sources and are read lazily. */
export type AccessLogFields = Omit<AccessLogEntry, 'requestHeader' | 'responseHeader'>;

/** An entry over plain fields and header sources. */
export class RecordedAccessLogEntry implements AccessLogEntry {
  readonly startTime!: number;
  readonly method!: string;
  readonly path!: string;
  readonly protocol!: string;
  readonly authority!: string | undefined;
  readonly responseCode!: number;
  readonly responseFlags!: string;
  readonly responseCodeDetails!: string | undefined;
  readonly upstreamTransportFailureReason!: string | undefined;
  readonly grpcStatus!: number | undefined;
  readonly bytesReceived!: number;
  readonly bytesSent!: number;
  readonly durationMs!: number;
  readonly upstreamHost!: string | undefined;
  readonly upstreamCluster!: string | undefined;
  readonly upstreamLocalAddress!: string | undefined;
  readonly downstreamLocalAddress!: string | undefined;
  readonly downstreamRemoteAddress!: string | undefined;
  readonly requestedServerName!: string | undefined;
  readonly routeName!: string | undefined;
  readonly mtls!: boolean;

  constructor(
    fields: AccessLogFields,
    private readonly requestHeaders: HeaderSource | undefined,
    private readonly responseHeaders: HeaderSource | ((name: string) => string | undefined) | undefined,
  ) {
    Object.assign(this, fields);
  }

  requestHeader(name: string): string | undefined {
    return this.requestHeaders === undefined ? undefined : headerValue(this.requestHeaders, name);
  }

  responseHeader(name: string): string | undefined {
    const h = this.responseHeaders;
    if (h === undefined) return undefined;
    return typeof h === 'function' ? h(name) : headerValue(h, name);
  }
}

/**
 * %RESPONSE_CODE_DETAILS% of a reply the mesh made itself, from its response
 * flag (Envoy's StreamInfo::ResponseCodeDetails values); `via_upstream` when
 * the upstream (or, inbound, the app) answered.
 */
export function responseCodeDetailsOf(flags: string, responseCode: number, rateLimit?: 'local' | 'global'): string | undefined {
  switch (flags.split(',')[0]) {
    case '-': return responseCode === 0 ? undefined : 'via_upstream';
    case 'UT': return 'response_timeout';
    case 'FI': return 'fault_filter_abort';
    case 'DI': return 'via_upstream';
    case 'UH': return 'no_healthy_upstream';
    case 'UO': return 'upstream_reset_before_response_started{overflow}';
    case 'RL': return rateLimit === 'global' ? 'request_rate_limited' : 'local_rate_limited';
    case 'RLSE': return 'rate_limiter_error';
    case 'UF': case 'URX': return 'upstream_reset_before_response_started{remote_connection_failure}';
    case 'NR': return 'route_not_found';
    case 'DC': return 'downstream_remote_disconnect';
    case 'UAEX': return 'ext_authz_denied';
    default: return undefined;
  }
}
