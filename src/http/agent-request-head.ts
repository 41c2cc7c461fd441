/**
 * The head of one request on the agent's wire: the request line and header
 * lines as node's ClientRequest writes them, parsed strictly (see
 * agent-request-reader.ts for why), with the connection-scoped headers and the
 * agent's own context header taken out.
 */
import { AUTHORITY, hasToken, isFieldValue, isTarget, isToken, isWhitespace } from './http1-syntax.js';

/** Why a request was refused: the status the connection answers with before it closes. */
export type MalformedStatus = 400 | 431 | 501;

/** A parsed request head. Header names and values keep the client's case and order. */
export class RequestHead {
  /** `[name, value, …]` as the client wrote them, minus connection-scoped headers and the agent's own. */
  readonly headers: string[] = [];
  /** the `host` header, or the authority of an absolute-form target */
  host: string | undefined = undefined;
  /** body bytes announced by `content-length` (0 without a body); -1 for a chunked body */
  contentLength = 0;
  /** false after `connection: close`, or for HTTP/1.0 without `connection: keep-alive` */
  keepAlive: boolean;
  /** the client waits for `100 Continue` before it sends the body */
  expectContinue = false;
  /** the agent's context id header (see node-agent.ts), removed from {@link headers} */
  contextId: string | undefined = undefined;

  constructor(readonly method: string, public target: string, readonly http10: boolean) {
    this.keepAlive = !http10;
  }

  /** The request has a body to read. */
  get hasBody(): boolean {
    return this.contentLength !== 0;
  }
}

/** The header that carries a request's context id through the pipe; never forwarded. */
export const CONTEXT_HEADER = 'x-meshlet-agent-context';

/** A refusal: the status the connection answers with before it closes, and why. */
export interface Malformed {
  readonly status: MalformedStatus;
  readonly reason: string;
}

function malformed(status: MalformedStatus, reason: string): Malformed {
  return { status, reason };
}

/** Parses a request head (request line and header lines, without the final CRLF CRLF); the refusal when malformed. */
export function parseRequestHead(text: string): RequestHead | Malformed {
  const lineEnd = text.indexOf('\r\n');
  const requestLine = lineEnd === -1 ? text : text.slice(0, lineEnd);
  const sp1 = requestLine.indexOf(' ');
  const sp2 = requestLine.indexOf(' ', sp1 + 1);
  if (sp1 <= 0 || sp2 === -1 || requestLine.indexOf(' ', sp2 + 1) !== -1) return malformed(400, 'malformed request line');
  const method = requestLine.slice(0, sp1);
  const target = requestLine.slice(sp1 + 1, sp2);
  const version = requestLine.slice(sp2 + 1);
  if (!isToken(method)) return malformed(400, 'malformed method');
  if (target.length === 0 || !isTarget(target)) return malformed(400, 'malformed request target');
  if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') return malformed(version.startsWith('HTTP/') ? 501 : 400, 'unsupported HTTP version');
  const head = new RequestHead(method, target, version === 'HTTP/1.0');
  return (lineEnd !== -1 ? parseHeaders(text, lineEnd + 2, head) : undefined) ?? checkTarget(head) ?? head;
}

/** Reads the header lines into `head`; the refusal, or undefined. */
function parseHeaders(text: string, from: number, head: RequestHead): Malformed | undefined {
  let chunked = false;
  let length = -1;
  let hasHost = false;
  let pos = from;
  while (pos < text.length) {
    let eol = text.indexOf('\r\n', pos);
    if (eol === -1) eol = text.length;
    const colon = text.indexOf(':', pos);
    if (colon === -1 || colon > eol || colon === pos) return malformed(400, 'malformed header line');
    const name = text.slice(pos, colon);
    if (!isToken(name)) return malformed(400, `malformed header name`); // also catches obs-fold and " :"
    let vs = colon + 1;
    let ve = eol;
    while (vs < ve && isWhitespace(text.charCodeAt(vs))) vs++;
    while (ve > vs && isWhitespace(text.charCodeAt(ve - 1))) ve--;
    if (!isFieldValue(text, vs, ve)) return malformed(400, 'malformed header value');
    const value = text.slice(vs, ve);
    pos = eol + 2;
    switch (name.length) {
      case 4:
        if (name.toLowerCase() !== 'host') break;
        if (hasHost || !AUTHORITY.test(value)) return malformed(400, hasHost ? 'more than one host header' : 'malformed host header');
        hasHost = true;
        head.host = value;
        continue;
      case 6:
        if (name.toLowerCase() !== 'expect') break;
        if (value.toLowerCase() !== '100-continue') break; // other expectations travel on
        head.expectContinue = true;
        continue; // answered here, as Envoy answers it (proxy_100_continue off)
      case 10:
        if (name.toLowerCase() === 'connection') {
          const v = value.toLowerCase();
          if (hasToken(v, 'close')) head.keepAlive = false;
          else if (head.http10 && hasToken(v, 'keep-alive')) head.keepAlive = true;
          continue;
        }
        if (name.toLowerCase() === 'keep-alive') continue;
        break;
      case 14:
        if (name.toLowerCase() !== 'content-length') break;
        if (!/^[0-9]{1,15}$/.test(value) || (length !== -1 && Number(value) !== length)) return malformed(400, 'malformed content-length');
        if (length !== -1) continue; // a repeat of the same length is forwarded once
        length = Number(value);
        break; // forwarded: the upstream request keeps the client's length
      case 17:
        if (name.toLowerCase() !== 'transfer-encoding') break;
        if (chunked) return malformed(400, 'chunked applied twice');
        if (value.toLowerCase() !== 'chunked') return malformed(501, `unsupported transfer-encoding "${value}"`);
        chunked = true;
        continue;
      case 2:
        if (name.toLowerCase() === 'te') continue;
        break;
      case 7:
        if (name.toLowerCase() === 'upgrade') continue; // not carried: the request goes on as a plain one
        break;
      case 13:
        if (name.toLowerCase() === 'http2-settings') continue;
        break;
      case 16:
        if (name.toLowerCase() === 'proxy-connection') continue;
        break;
      case CONTEXT_HEADER.length:
        if (name.toLowerCase() !== CONTEXT_HEADER) break;
        head.contextId = value;
        continue;
    }
    head.headers.push(name, value);
  }
  // RFC 9112 §6.3: both framings at once is how requests are smuggled; refuse rather than pick one.
  if (chunked && length !== -1) return malformed(400, 'both content-length and transfer-encoding');
  if (!hasHost && !head.http10) return malformed(400, 'missing host header');
  head.contentLength = chunked ? -1 : Math.max(0, length);
  return undefined;
}

/** An absolute-form target (`http://host/path`) gives the authority and leaves the path. */
function checkTarget(head: RequestHead): Malformed | undefined {
  const t = head.target;
  if (t.charCodeAt(0) === 47 /* / */ || (t === '*' && head.method === 'OPTIONS')) return undefined;
  const m = /^https?:\/\/([^/?#]*)(.*)$/i.exec(t);
  if (m === null || !AUTHORITY.test(m[1]!) || m[1] === '') return malformed(400, 'malformed request target');
  head.host = m[1]!;
  head.target = m[2] === '' ? '/' : m[2]!;
  return undefined;
}
