/**
 * Envoy's substitution format strings (text and JSON), compiled once per
 * config into a function from an access-log entry to a line. The command
 * operators are Envoy's (https://www.envoyproxy.io/docs/envoy/latest/configuration/observability/access_log/usage);
 * an operator meshlet cannot fill is refused when the config is applied.
 */
import type { AccessLogEntry } from './access-log-entry.js';

/** Istio's default text format (pilot/pkg/model/telemetry_logging.go `EnvoyTextLogFormat`, istio/istio 86c9f01f). */
export const ISTIO_TEXT_FORMAT = '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% '
  + '%PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% '
  + '%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% '
  + '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% '
  + '%DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" '
  + '"%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" '
  + '%UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% '
  + '%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

/** Istio's default JSON labels (`EnvoyJSONLogFormatIstio`, same file and commit). */
export const ISTIO_JSON_FORMAT: Readonly<Record<string, string>> = {
  authority: '%REQ(:AUTHORITY)%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  connection_termination_details: '%CONNECTION_TERMINATION_DETAILS%',
  downstream_local_address: '%DOWNSTREAM_LOCAL_ADDRESS%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
  duration: '%DURATION%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%',
  request_id: '%REQ(X-REQUEST-ID)%',
  requested_server_name: '%REQUESTED_SERVER_NAME%',
  response_code: '%RESPONSE_CODE%',
  response_code_details: '%RESPONSE_CODE_DETAILS%',
  response_flags: '%RESPONSE_FLAGS%',
  route_name: '%ROUTE_NAME%',
  start_time: '%START_TIME%',
  upstream_cluster: '%UPSTREAM_CLUSTER_RAW%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_local_address: '%UPSTREAM_LOCAL_ADDRESS%',
  upstream_service_time: '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%',
  upstream_transport_failure_reason: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
  user_agent: '%REQ(USER-AGENT)%',
  x_forwarded_for: '%REQ(X-FORWARDED-FOR)%',
};

/** Why a format is refused (the caller wraps it in a MeshConfigError naming the field). */
export class AccessLogFormatError extends Error {}

/** An operator's value: a string, a number (typed in JSON), or undefined (`-` in text, null in JSON). */
type OperatorValue = string | number | undefined;
type Operator = (e: AccessLogEntry) => OperatorValue;

/** The operators without arguments. */
const OPERATORS: Readonly<Record<string, Operator>> = {
  START_TIME: (e) => new Date(e.startTime).toISOString(),
  PROTOCOL: (e) => e.protocol,
  RESPONSE_CODE: (e) => e.responseCode,
  RESPONSE_FLAGS: (e) => e.responseFlags,
  RESPONSE_CODE_DETAILS: (e) => e.responseCodeDetails,
  // Set by Envoy only when it closes a connection itself (filter chain not found…); meshlet never does.
  CONNECTION_TERMINATION_DETAILS: () => undefined,
  UPSTREAM_TRANSPORT_FAILURE_REASON: (e) => e.upstreamTransportFailureReason,
  BYTES_RECEIVED: (e) => e.bytesReceived,
  BYTES_SENT: (e) => e.bytesSent,
  DURATION: (e) => e.durationMs,
  UPSTREAM_HOST: (e) => e.upstreamHost,
  UPSTREAM_CLUSTER: (e) => e.upstreamCluster,
  UPSTREAM_CLUSTER_RAW: (e) => e.upstreamCluster,
  UPSTREAM_LOCAL_ADDRESS: (e) => e.upstreamLocalAddress,
  DOWNSTREAM_LOCAL_ADDRESS: (e) => e.downstreamLocalAddress,
  DOWNSTREAM_REMOTE_ADDRESS: (e) => e.downstreamRemoteAddress,
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: (e) => withoutPort(e.downstreamRemoteAddress),
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: (e) => withoutPort(e.downstreamLocalAddress),
  REQUESTED_SERVER_NAME: (e) => e.requestedServerName,
  ROUTE_NAME: (e) => e.routeName,
  GRPC_STATUS_NUMBER: (e) => e.grpcStatus,
};

function withoutPort(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  const colon = address.lastIndexOf(':');
  const host = colon === -1 ? address : address.slice(0, colon);
  return host.startsWith('[') ? host.slice(1, -1) : host;
}

/** `%REQ(A?B):N%`: header A, else B, truncated to N characters; pseudo-headers from the entry. */
function headerOperator(side: 'REQ' | 'RESP', arg: string, max: number | undefined): Operator {
  const names = arg.split('?').map((n) => n.trim().toLowerCase());
  if (names.length > 2 || names.some((n) => n === '')) throw new AccessLogFormatError(`%${side}(${arg})%: expected HEADER or HEADER?ALTERNATIVE`);
  const readers = names.map((name): Operator => {
    if (side === 'RESP') return (e) => e.responseHeader(name);
    switch (name) {
      case ':method': return (e) => e.method;
      case ':path': return (e) => e.path;
      case ':authority': case 'host': return (e) => e.authority ?? e.requestHeader('host');
      case ':scheme': return (e) => e.requestHeader(':scheme');
      default: return (e) => e.requestHeader(name);
    }
  });
  const [first, second] = readers as [Operator, Operator | undefined];
  const read: Operator = second === undefined ? first : (e) => first(e) ?? second(e);
  if (max === undefined) return read;
  return (e) => {
    const v = read(e);
    return typeof v === 'string' ? v.slice(0, max) : v;
  };
}

const OPERATOR = /%([A-Z_]+)(?:\(([^)]*)\))?(?::(\d+))?%/g;

function operatorOf(name: string, arg: string | undefined, max: number | undefined): Operator {
  if (name === 'REQ' || name === 'RESP') {
    if (arg === undefined) throw new AccessLogFormatError(`%${name}%: needs a header name, %${name}(name)%`);
    return headerOperator(name, arg, max);
  }
  const op = OPERATORS[name];
  if (op === undefined || arg !== undefined) {
    throw new AccessLogFormatError(`command operator %${name}${arg !== undefined ? `(${arg})` : ''}% is not supported (supported: REQ(…), RESP(…), ${Object.keys(OPERATORS).join(', ')})`);
  }
  return op;
}

type Piece = string | Operator;

function pieces(format: string): Piece[] {
  const out: Piece[] = [];
  let last = 0;
  for (const m of format.matchAll(OPERATOR)) {
    if (m.index > last) out.push(format.slice(last, m.index).replaceAll('%%', '%'));
    out.push(operatorOf(m[1]!, m[2], m[3] === undefined ? undefined : Number(m[3])));
    last = m.index + m[0].length;
  }
  if (last < format.length) out.push(format.slice(last).replaceAll('%%', '%'));
  return out;
}

/** A compiled format: entry → one line, newline included. */
export type AccessLogFormatter = (entry: AccessLogEntry) => string;

/**
 * Compiles a text format. Istio appends a newline to formats that lack one
 * (fileAccessLogFormat), and so does this.
 * @throws AccessLogFormatError for an operator meshlet does not fill.
 */
export function compileTextFormat(format: string): AccessLogFormatter {
  const text = format.endsWith('\n') ? format : `${format}\n`;
  const parts = pieces(text);
  return (e) => {
    let line = '';
    for (const p of parts) {
      if (typeof p === 'string') line += p;
      else {
        const v = p(e);
        line += v === undefined || v === '' ? '-' : String(v);
      }
    }
    return line;
  };
}

/**
 * Compiles a JSON format (`json_format`): each value is a format string; one
 * that is a single operator keeps its type (numbers stay numbers, missing is
 * null, as Envoy's typed JSON), others are strings.
 * @throws AccessLogFormatError for an operator meshlet does not fill or a non-string value.
 */
export function compileJsonFormat(labels: Readonly<Record<string, unknown>>): AccessLogFormatter {
  const fields = Object.entries(labels).map(([key, value]): [string, (e: AccessLogEntry) => unknown] => {
    if (typeof value !== 'string') throw new AccessLogFormatError(`${key}: must be a format string`);
    const parts = pieces(value);
    if (parts.length === 1 && typeof parts[0] === 'function') {
      const op = parts[0];
      return [key, (e) => { const v = op(e); return v === '' ? null : v ?? null; }];
    }
    const text = compileTextFormat(value);
    return [key, (e) => text(e).slice(0, -1)];
  });
  return (e) => {
    const out: Record<string, unknown> = {};
    for (const [key, get] of fields) out[key] = get(e);
    return `${JSON.stringify(out)}\n`;
  };
}
