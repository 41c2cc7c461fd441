/**
 * The response side of the agent's wire (node-agent.ts): the undici handler
 * that writes the mesh's response for one request straight into the pipe as
 * HTTP/1.1 — status line, headers (hop-by-hop ones dropped), then the body
 * with `content-length` when the upstream gave one, else chunked — with
 * back-pressure from the client's socket.
 *
 * The head is held until the first body bytes, the end of the response or
 * the next tick, whichever comes first, and goes out with them in one write:
 * the client's parser runs once for a small response instead of twice.
 */
import { STATUS_CODES } from 'node:http';
import type { LegacyHandler } from './handler.js';
import { validName, validText, validValue } from './http1-syntax.js';

/** What a response needs from its connection (agent-connection.ts). */
export interface ResponseConnection {
  /** Writes to the client; false when the pipe is full (wait for {@link ResponseConnection.onDrain}). */
  write(data: Buffer): boolean;
  /** The response is complete; `close` when the connection must close after it. */
  responseDone(response: AgentResponse, close: boolean): void;
  /** Resets the connection, as a server does when a response fails after it started. */
  reset(): void;
  /** true once the agent is closing: responses carry `connection: close` */
  readonly closing: boolean;
}

const enum Body {
  /** no body at all (HEAD, 204, 304) */
  None,
  Length,
  Chunked,
  /** HTTP/1.0 without a length: the body ends when the connection closes */
  UntilClose,
}

/** Bodies up to this size are copied to share a write with their head or chunk framing. */
const COALESCE_BYTES = 16 * 1024;
const CRLF = Buffer.from('\r\n', 'latin1');
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

/**
 * One request's response handler (undici's legacy handler protocol, as
 * response-writer.ts). A client that disconnects aborts the upstream; an
 * error before the head is written becomes a 502/503/504 local reply, after
 * it a reset.
 */
export class AgentResponse implements LegacyHandler {
  private abortUpstream: ((reason?: unknown) => void) | undefined = undefined;
  private resumeUpstream: (() => void) | undefined = undefined;
  /** the head, built but not yet written */
  private pendingHead: Buffer | undefined = undefined;
  private started = false;
  private done = false;
  private body = Body.None;
  private close: boolean;
  /** undici is paused until the pipe drains */
  private paused = false;

  constructor(private readonly conn: ResponseConnection, private readonly head: boolean, keepAlive: boolean, private readonly http10: boolean) {
    this.close = !keepAlive;
  }

  /** True once the head (or a local reply) was handed over, so an error now resets. */
  get headersStarted(): boolean {
    return this.started;
  }

  onConnect(abort: (reason?: unknown) => void): void {
    this.abortUpstream = abort;
    if (this.done) abort(new Error('downstream disconnected'));
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    if (status < 200 || this.done || this.started) return true; // informational responses are not forwarded
    this.resumeUpstream = resume;
    const head = this.buildHead(status, statusText, raw);
    if (head === undefined) {
      this.abortUpstream?.(new Error('invalid response header'));
      this.localReply(502, undefined, 'upstream error: invalid response header');
      return true;
    }
    this.started = true;
    this.pendingHead = head;
    process.nextTick(flushHead, this);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.done || this.body === Body.None || chunk.length === 0) return true;
    const head = this.pendingHead;
    this.pendingHead = undefined;
    let ok: boolean;
    if (this.body === Body.Chunked) {
      const size = chunk.length.toString(16);
      if (chunk.length <= COALESCE_BYTES) {
        const headLength = head?.length ?? 0;
        const out = Buffer.allocUnsafe(headLength + size.length + 2 + chunk.length + 2);
        if (head !== undefined) head.copy(out, 0);
        let at = headLength + out.write(size, headLength, 'latin1');
        out[at++] = 13;
        out[at++] = 10;
        at += chunk.copy(out, at);
        out[at++] = 13;
        out[at] = 10;
        ok = this.conn.write(out);
      } else {
        if (head !== undefined) this.conn.write(head);
        this.conn.write(Buffer.from(`${size}\r\n`, 'latin1'));
        this.conn.write(chunk);
        ok = this.conn.write(CRLF);
      }
    } else if (head !== undefined && chunk.length <= COALESCE_BYTES) {
      ok = this.conn.write(Buffer.concat([head, chunk], head.length + chunk.length));
    } else {
      if (head !== undefined) this.conn.write(head);
      ok = this.conn.write(chunk);
    }
    if (ok) return true;
    // The client reads slower than the upstream sends: pause undici until the pipe drains.
    this.paused = true;
    return false;
  }

  /** The pipe drained: let undici send more. */
  onDrain(): void {
    if (!this.paused) return;
    this.paused = false;
    this.resumeUpstream?.();
  }

  onComplete(): void {
    if (this.done) return;
    this.done = true;
    const head = this.pendingHead;
    this.pendingHead = undefined;
    if (this.body === Body.Chunked) this.conn.write(head === undefined ? LAST_CHUNK : Buffer.concat([head, LAST_CHUNK]));
    else if (head !== undefined) this.conn.write(head);
    this.conn.responseDone(this, this.close);
  }

  onError(err: Error): void {
    if (this.done) return;
    if (this.started) {
      this.done = true;
      this.conn.reset(); // mid-response failure: reset, as Envoy resets the downstream stream
      return;
    }
    const e = err as Error & { code?: string; flag?: string };
    const status = e.code === 'MESH_CLOSED' ? 503 : e.flag === 'UT' ? 504 : 502;
    this.localReply(status, e.flag, status === 503 ? 'the mesh is shutting down' : `upstream error: ${err.message}`);
  }

  /** The client went away: stop the upstream and write nothing more. */
  disconnected(): void {
    if (this.done) return;
    this.done = true;
    this.pendingHead = undefined;
    this.abortUpstream?.(new Error('downstream disconnected'));
  }

  /** Writes the held head if no body bytes came to share its write. @internal */
  flushHead(): void {
    const head = this.pendingHead;
    if (head === undefined || this.done) return;
    this.pendingHead = undefined;
    this.conn.write(head); // a full pipe is seen by the body's first write
  }

  /** A small text reply of the agent's own (errors before the upstream answered). */
  private localReply(status: number, flag: string | undefined, message: string): void {
    const body = Buffer.from(message, 'utf8');
    this.done = true;
    this.started = true;
    this.close ||= this.conn.closing;
    let text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n`;
    if (flag) text += `x-meshlet-flags: ${flag}\r\n`;
    if (this.close) text += 'connection: close\r\n';
    const headLength = Buffer.byteLength(text, 'latin1') + 2;
    const out = Buffer.allocUnsafe(headLength + (this.head ? 0 : body.length));
    out.write(`${text}\r\n`, 0, 'latin1');
    if (!this.head) body.copy(out, headLength);
    this.conn.write(out);
    this.conn.responseDone(this, this.close);
  }

  /** The status line and headers as one buffer; undefined when a header could not be written safely. */
  private buildHead(status: number, statusText: string, raw: ReadonlyArray<Buffer | string>): Buffer | undefined {
    let hasLength = false;
    let length = 0;
    // First pass: which headers go out, and how many bytes they take.
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const value = raw[i + 1]!;
      if (typeof name === 'string' || typeof value === 'string') return this.buildHead(status, statusText, raw.map(asBuffer));
      const kind = responseHeaderKind(name, status);
      if (kind === DROP) continue;
      if (kind === CONTENT_LENGTH) hasLength = true;
      if (!validName(name) || !validValue(value)) return undefined;
      length += name.length + value.length + 4;
    }
    if (this.head || status === 204 || status === 304) this.body = Body.None;
    else if (hasLength) this.body = Body.Length;
    else if (this.http10) {
      this.body = Body.UntilClose;
      this.close = true;
    } else this.body = Body.Chunked;
    this.close ||= this.conn.closing;
    const text = validText(statusText) ? statusText : STATUS_CODES[status] ?? '';
    let tail = '';
    if (this.body === Body.Chunked) tail += 'transfer-encoding: chunked\r\n';
    if (this.close) tail += 'connection: close\r\n';
    else if (this.http10) tail += 'connection: keep-alive\r\n';
    const line = `HTTP/1.1 ${status} ${text}\r\n`;
    const out = Buffer.allocUnsafe(line.length + length + tail.length + 2);
    let at = out.write(line, 0, 'latin1');
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as Buffer;
      if (responseHeaderKind(name, status) === DROP) continue;
      at += name.copy(out, at);
      out[at++] = 58; // :
      out[at++] = 32;
      at += (raw[i + 1] as Buffer).copy(out, at);
      out[at++] = 13;
      out[at++] = 10;
    }
    at += out.write(tail, at, 'latin1');
    out[at++] = 13;
    out[at] = 10;
    return out;
  }
}

function asBuffer(v: Buffer | string): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'latin1') : v;
}

function flushHead(response: AgentResponse): void {
  response.flushHead();
}

const KEEP = 0;
const DROP = 1;
const CONTENT_LENGTH = 2;

/**
 * Connection-scoped response headers are not forwarded (RFC 9110 §7.6.1) and
 * framing is this writer's; a 204 carries no content-length (RFC 9110 §8.6).
 */
function responseHeaderKind(name: Buffer, status: number): number {
  switch (name.length) {
    case 7:
      return equalsLower(name, 'upgrade') ? DROP : KEEP;
    case 10:
      return equalsLower(name, 'connection') || equalsLower(name, 'keep-alive') ? DROP : KEEP;
    case 14:
      return equalsLower(name, 'content-length') ? (status === 204 ? DROP : CONTENT_LENGTH) : KEEP;
    case 16:
      return equalsLower(name, 'proxy-connection') ? DROP : KEEP;
    case 17:
      return equalsLower(name, 'transfer-encoding') ? DROP : KEEP;
    default:
      return KEEP;
  }
}

/** ASCII case-insensitive comparison of a header name with a lower-case literal of the same length. */
function equalsLower(name: Buffer, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) if ((name[i]! | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}
