/**
 * Downstream timeouts for the servers meshlet creates (`mesh.createServer`,
 * the gateway, the control plane's debug port), named after Envoy's
 * HttpConnectionManager fields, so a client that trickles a byte a second
 * (slowloris) cannot hold a socket and a parser for Node's defaults (60 s for
 * headers, checked only every 30 s).
 *
 * Envoy's HCM defaults: `request_headers_timeout` none, `stream_idle_timeout`
 * 5 min, `request_timeout` none, `common_http_protocol_options.idle_timeout`
 * 1 h. Istio leaves sidecars at those (stream idle disabled on inbound) and,
 * with the EDGE connection-settings profile on gateways, sets headers 60 s,
 * stream idle 5 min, request 5 min, idle 1 h (pilot connection_settings.go).
 */
import type { ServerOptions } from 'node:http';

/** Timeouts of a server, in milliseconds; 0 disables one. */
export interface ServerTimeouts {
  /**
   * Time to receive a request's complete headers, from its first byte
   * (Envoy `request_headers_timeout`); also bounds the TLS handshake.
   * Default 10 s: a mesh peer writes its header block at once, and nothing
   * sits in front of the app to absorb slow clients.
   */
  requestHeadersTimeout?: number;
  /**
   * Time to receive the whole request, body included (Envoy
   * `request_timeout`). Default 5 min (Node's, and Envoy's edge recommendation).
   */
  requestTimeout?: number;
  /**
   * A connection that sends and receives nothing for this long is closed
   * (Envoy `stream_idle_timeout`, default 5 min; an idle HTTP/2 session too).
   * Long polls that stay silent longer need 0.
   */
  streamIdleTimeout?: number;
  /**
   * An HTTP/1.1 keep-alive connection with no request is closed after this.
   * Default 5 s (Node's): shorter than Envoy's 1 h `idle_timeout`, since Node
   * clients (undici: 4 s) close theirs first and a longer one only holds sockets.
   */
  keepAliveTimeout?: number;
}

/** meshlet's defaults (see {@link ServerTimeouts}). */
export const DEFAULT_SERVER_TIMEOUTS: Readonly<Required<ServerTimeouts>> = Object.freeze({
  requestHeadersTimeout: 10_000,
  requestTimeout: 300_000,
  streamIdleTimeout: 300_000,
  keepAliveTimeout: 5_000,
});

/** The defaults with `overrides` applied; negative or non-finite values are refused. */
export function resolveServerTimeouts(overrides: ServerTimeouts = {}, defaults: Readonly<Required<ServerTimeouts>> = DEFAULT_SERVER_TIMEOUTS): Required<ServerTimeouts> {
  const out = { ...defaults };
  for (const key of Object.keys(defaults) as (keyof ServerTimeouts)[]) {
    const v = overrides[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new TypeError(`timeouts.${key} must be a number of milliseconds >= 0, got ${String(v)}`);
    out[key] = v;
  }
  return out;
}

/**
 * node:http(s) server options for these timeouts. Node checks the header and
 * request timeouts on an interval (`connectionsCheckingInterval`, default
 * 30 s); it is set to a fraction of the shortest so a connection is closed
 * close to its deadline.
 */
export function httpServerOptions(t: Required<ServerTimeouts>): ServerOptions {
  // Node refuses headersTimeout > requestTimeout when both are set.
  const headersTimeout = t.requestTimeout > 0 && t.requestHeadersTimeout > t.requestTimeout ? t.requestTimeout : t.requestHeadersTimeout;
  const checked = [headersTimeout, t.requestTimeout].filter((v) => v > 0);
  const shortest = checked.length === 0 ? 30_000 : Math.min(...checked);
  return {
    headersTimeout,
    requestTimeout: t.requestTimeout,
    keepAliveTimeout: t.keepAliveTimeout,
    connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.ceil(shortest / 4))),
  };
}

/**
 * Applies the socket-inactivity timeout (`streamIdleTimeout`) to a server:
 * node:http and node:http2 servers destroy a connection idle that long when
 * nobody listens for their `timeout` event.
 */
export function applyIdleTimeout(server: { setTimeout(ms: number): unknown }, t: Required<ServerTimeouts>): void {
  server.setTimeout(t.streamIdleTimeout);
}

/** The TLS handshake bound: the header timeout (Node's default is 120 s). */
export function handshakeTimeout(t: Required<ServerTimeouts>): { handshakeTimeout?: number } {
  return t.requestHeadersTimeout > 0 ? { handshakeTimeout: t.requestHeadersTimeout } : {};
}
