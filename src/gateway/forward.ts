/**
 * The two ends of one request through the gateway: the downstream request
 * turned into undici DispatchOptions (hop-by-hop headers dropped, Envoy's
 * x-forwarded-* and x-request-id added), and an undici handler that writes the
 * upstream response back to the downstream `ServerResponse` with
 * back-pressure, as Envoy's HTTP connection manager does.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Dispatcher } from 'undici';
import type { LegacyHandler } from '../http/handler.js';

/**
 * Connection-scoped headers that must not be forwarded (RFC 9110 §7.6.1);
 * undici also refuses several of them outright. `host` is re-set from the
 * authority by the dispatcher.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'expect', 'http2-settings', 'host']);
const HOP_BY_HOP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

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

/** The request as undici options for `dispatchToVirtualHost`. */
export function dispatchOptions(req: IncomingMessage, authority: string, scheme: 'http' | 'https'): Dispatcher.DispatchOptions {
  const raw = req.rawHeaders;
  const headers: string[] = [];
  let dropped: Set<string> | undefined;
  let forwardedFor: string | undefined;
  let requestId = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name)) {
      // Headers the client named in `Connection` are connection-scoped too.
      if (name === 'connection') dropped = connectionTokens(raw[i + 1]!, dropped);
      continue;
    }
    if (dropped?.has(name)) continue;
    if (name === 'x-forwarded-for') {
      forwardedFor = forwardedFor === undefined ? raw[i + 1] : `${forwardedFor}, ${raw[i + 1]}`;
      continue;
    }
    if (name === 'x-forwarded-proto') continue; // the gateway is the edge: it says what the client used
    if (name === 'x-request-id') requestId = true;
    headers.push(name, raw[i + 1]!);
  }
  const client = req.socket.remoteAddress;
  if (client) forwardedFor = forwardedFor === undefined ? client : `${forwardedFor}, ${client}`;
  if (forwardedFor !== undefined) headers.push('x-forwarded-for', forwardedFor);
  headers.push('x-forwarded-proto', scheme);
  if (!requestId) headers.push('x-request-id', randomUUID());
  return {
    origin: `http://${authority || 'localhost'}`,
    method: req.method as Dispatcher.HttpMethod,
    path: req.url ?? '/',
    headers,
    body: hasBody(req) ? req : null,
  };
}

function connectionTokens(value: string, into: Set<string> | undefined): Set<string> | undefined {
  for (const token of value.split(',')) {
    const t = token.trim().toLowerCase();
    if (t === '' || t === 'close' || t === 'keep-alive') continue;
    (into ??= new Set()).add(t);
  }
  return into;
}

/** A request has a body when it says so; GET/HEAD without length or chunking send none. */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return length !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

/** Writes a small text reply with the Envoy response flag, unless the response already started. */
export function writeLocalReply(res: ServerResponse, status: number, flag: string | undefined, message: string, close: boolean): void {
  if (res.headersSent || res.destroyed) return;
  const headers: Record<string, string | number> = { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(message) };
  if (flag) headers['x-meshlet-flags'] = flag;
  if (close) headers.connection = 'close';
  res.writeHead(status, STATUS_CODES[status] ?? '', headers);
  res.end(message);
}

/**
 * The undici handler for one gateway request: upstream status and headers
 * (hop-by-hop ones dropped) go to `res`, the body streams with
 * back-pressure, a downstream disconnect aborts the upstream request, and an
 * error becomes a 502/503/504 local reply before the response started or a
 * reset after.
 */
export class ResponseWriter implements LegacyHandler {
  private abortUpstream: ((reason?: unknown) => void) | undefined;
  private done = false;

  /** @param closeConnection true while draining: responses carry `connection: close` */
  constructor(private readonly res: ServerResponse, private readonly closeConnection: () => boolean) {
    res.once('close', () => {
      if (this.done || res.writableFinished) return;
      this.done = true;
      this.abortUpstream?.(new Error('downstream disconnected'));
    });
  }

  onConnect(abort: (reason?: unknown) => void): void {
    this.abortUpstream = abort;
    if (this.done) abort(new Error('downstream disconnected'));
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    if (status < 200 || this.done) return true; // informational responses are not forwarded
    const headers: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toString('latin1');
      if (HOP_BY_HOP_RESPONSE.has(name.toLowerCase())) continue;
      headers.push(name, raw[i + 1]!.toString('latin1'));
    }
    if (this.closeConnection()) headers.push('connection', 'close');
    this.res.writeHead(status, statusText || STATUS_CODES[status] || '', headers);
    this.resume = resume;
    return true;
  }

  private resume: (() => void) | undefined;
  private readonly onDrain = (): void => this.resume?.();

  onData(chunk: Buffer): boolean {
    if (this.done) return true;
    if (this.res.write(chunk)) return true;
    // The client reads slower than the upstream sends: pause undici until the socket drains.
    this.res.once('drain', this.onDrain);
    return false;
  }

  onComplete(): void {
    if (this.done) return;
    this.done = true;
    this.res.end();
  }

  onError(err: Error): void {
    if (this.done) return;
    this.done = true;
    const res = this.res;
    if (res.headersSent) {
      res.destroy(err); // mid-body failure: reset, as Envoy resets the downstream stream
      return;
    }
    const e = err as Error & { code?: string; flag?: string };
    const status = e.code === 'MESH_CLOSED' ? 503 : e.flag === 'UT' ? 504 : 502;
    writeLocalReply(res, status, e.flag, status === 503 ? 'the gateway is shutting down' : `upstream error: ${err.message}`, this.closeConnection());
  }
}
