/**
 * Writing an upstream response to a Node `ServerResponse`: the undici handler
 * that forwards status, headers (hop-by-hop ones dropped) and body with
 * back-pressure, and the small text local reply. The gateway answers its
 * downstream with it; the node:http agent (`mesh.httpAgent`) writes its
 * responses straight into its pipe instead (agent-response.ts).
 */
import type { ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { LegacyHandler } from './handler.js';

/** Connection-scoped response headers that must not be forwarded (RFC 9110 §7.6.1). */
const HOP_BY_HOP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

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
