/**
 * The downstream request through the gateway turned into undici
 * DispatchOptions, sanitized as Envoy's connection manager does at the edge
 * (see sanitize.ts). The response goes back through http/response-writer.ts.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Dispatcher } from 'undici';
import { PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER } from '../telemetry/peer-metadata.js';
import { clientCertDetails } from './client-cert.js';
import { classifyDownstream, DEFAULT_EDGE_POLICY, EDGE_REMOVED_HEADERS, type EdgePolicy } from './sanitize.js';

/**
 * Connection-scoped headers that must not be forwarded (RFC 9110 §7.6.1);
 * undici also refuses several of them outright. `host` is re-set from the
 * authority by the dispatcher.
 */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'expect', 'http2-settings', 'host'];

// What the one pass over the request's raw headers does with a header it knows (sanitize.ts says why).
const HOP = 1;
const FORWARDED_FOR = 2;
const FORWARDED_PROTO = 3;
const REQUEST_ID = 4;
const CLIENT_CERT = 5;
const EXTERNAL_ADDRESS = 6;
const ENVOY_INTERNAL = 7;
const INTERNAL_ONLY = 8;
const PEER_METADATA = 9;

const ROLES: ReadonlyMap<string, number> = new Map<string, number>([
  ...HOP_BY_HOP.map((name) => [name, HOP] as const),
  ['x-forwarded-for', FORWARDED_FOR],
  ['x-forwarded-proto', FORWARDED_PROTO],
  ['x-request-id', REQUEST_ID],
  ['x-forwarded-client-cert', CLIENT_CERT],
  ['x-envoy-external-address', EXTERNAL_ADDRESS],
  ['x-envoy-internal', ENVOY_INTERNAL],
  ...EDGE_REMOVED_HEADERS.map((name) => [name, INTERNAL_ONLY] as const),
  [PEER_METADATA_HEADER, PEER_METADATA],
  [PEER_METADATA_ID_HEADER, PEER_METADATA],
]);

/** Splits a Host header into a lower-case host and a port (`defaultPort` when absent). */
export function parseAuthority(authority: string, defaultPort: number): { host: string; port: number } {
  let end = authority.length;
  let port = defaultPort;
  const colon = authority.lastIndexOf(':');
  // `[::1]:8080` has its port after the bracket; a bare IPv6 address has none.
  if (colon !== -1 && colon > authority.lastIndexOf(']')) {
    const n = Number(authority.slice(colon + 1));
    if (Number.isInteger(n) && n > 0 && n < 65536) port = n;
    end = colon;
  }
  const start = authority.charCodeAt(0) === 91 /* [ */ ? 1 : 0;
  if (start === 1 && authority.charCodeAt(end - 1) === 93 /* ] */) end--;
  return { host: authority.slice(start, end).toLowerCase(), port };
}

/**
 * The request as undici options for `dispatchToVirtualHost`, sanitized as
 * Envoy's connection manager does at the edge (sanitize.ts): hop-by-hop and
 * peer-metadata headers dropped, Envoy's internal control headers dropped
 * unless the request is internal, `x-forwarded-for` appended, and
 * `x-forwarded-proto`, `x-envoy-external-address`, `x-request-id` and
 * `x-forwarded-client-cert` set per `edge`. One pass over the raw headers.
 */
export function dispatchOptions(req: IncomingMessage, authority: string, scheme: 'http' | 'https', edge: EdgePolicy = DEFAULT_EDGE_POLICY): Dispatcher.DispatchOptions {
  const raw = req.rawHeaders;
  // Node's parsed view (duplicates joined) answers the questions that must be settled before the pass.
  const incoming = req.headers;
  const xff = joined(incoming['x-forwarded-for']);
  const downstream = classifyDownstream(edge, req.socket.remoteAddress, xff);
  const internal = downstream.internal;
  const connection = joined(incoming.connection);
  const dropped = connection === undefined ? undefined : connectionTokens(connection);
  const mode = edge.forwardClientCert;
  const cert = mode === 'ALWAYS_FORWARD_ONLY' ? undefined : clientCertDetails(req.socket);
  const keepClientCert = mode === 'ALWAYS_FORWARD_ONLY' || (cert !== undefined && (mode === 'FORWARD_ONLY' || mode === 'APPEND_FORWARD'));
  const keepRequestId = internal || edge.preserveExternalRequestId;
  // Behind trusted proxies the last one says what the client used; otherwise the gateway does.
  const keepProto = edge.numTrustedProxies > 0;
  const headers: string[] = [];
  let forwardedCert: string | undefined;
  let proto = false;
  let requestId = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (dropped !== undefined && dropped.has(name)) continue;
    switch (ROLES.get(name)) {
      case undefined:
        break;
      case HOP:
      case FORWARDED_FOR: // rebuilt below
      case ENVOY_INTERNAL: // only the gateway says a request is internal
      case PEER_METADATA: // the gateway is the upstream's peer; the mesh writes its own
        continue;
      case FORWARDED_PROTO:
        if (!keepProto) continue;
        proto = true;
        break;
      case REQUEST_ID:
        if (!keepRequestId) continue;
        requestId = true;
        break;
      case CLIENT_CERT:
        if (!keepClientCert) continue;
        if (mode === 'APPEND_FORWARD') {
          forwardedCert = forwardedCert === undefined ? raw[i + 1]! : `${forwardedCert},${raw[i + 1]!}`;
          continue;
        }
        break;
      case EXTERNAL_ADDRESS:
      case INTERNAL_ONLY:
        if (!internal) continue;
        break;
    }
    headers.push(name, raw[i + 1]!);
  }
  const peer = downstream.peer;
  // Envoy joins with "," (appendXff); the TCP peer is always the last hop.
  const forwardedFor = peer === undefined ? xff : xff === undefined ? peer : `${xff},${peer}`;
  if (forwardedFor !== undefined) headers.push('x-forwarded-for', forwardedFor);
  if (!proto) headers.push('x-forwarded-proto', scheme);
  if (internal) headers.push('x-envoy-internal', 'true');
  else if (downstream.client !== undefined) headers.push('x-envoy-external-address', downstream.client);
  if (!requestId) headers.push('x-request-id', randomUUID());
  if (cert !== undefined) {
    if (mode === 'SANITIZE_SET') headers.push('x-forwarded-client-cert', cert);
    else if (mode === 'APPEND_FORWARD') headers.push('x-forwarded-client-cert', forwardedCert === undefined ? cert : `${forwardedCert},${cert}`);
  }
  return {
    origin: `http://${authority || 'localhost'}`,
    method: req.method as Dispatcher.HttpMethod,
    path: req.url ?? '/',
    headers,
    body: hasBody(req) ? req : null,
  };
}

/** Node joins repeated list headers into one string; the types allow an array. */
function joined(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value;
}

/**
 * Headers the client named in `Connection` are connection-scoped too. The
 * x-forwarded-* headers never are: Envoy refuses such a request, and dropping
 * `x-forwarded-for` would make an outside request look internal.
 */
function connectionTokens(value: string): Set<string> | undefined {
  let into: Set<string> | undefined;
  for (const token of value.split(',')) {
    const t = token.trim().toLowerCase();
    if (t === '' || t === 'close' || t === 'keep-alive' || NEVER_NOMINATED.has(t)) continue;
    (into ??= new Set()).add(t);
  }
  return into;
}

const NEVER_NOMINATED = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);

/** A request has a body when it says so; GET/HEAD without length or chunking send none. */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return length !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}
