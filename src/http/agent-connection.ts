/**
 * The server end of one agent connection (node-agent.ts): reads what node's
 * ClientRequest writes into the pipe (agent-request-reader.ts), dispatches
 * each request through `mesh.dispatcher`, and writes the response back
 * (agent-response.ts) — one request at a time, in order, on a keep-alive
 * pipe.
 *
 * Request bodies up to 64 KiB with a `content-length` are read whole before
 * dispatch so a retry can replay them; larger or chunked bodies stream, with
 * back-pressure to the client. `expect: 100-continue` is answered here, as
 * Envoy answers it. Input that is not a request node's serializer would write
 * is answered 400 (431 for a head past 60 KiB) and the connection closes.
 */
import type { AsyncLocalStorage } from 'node:async_hooks';
import { Readable } from 'node:stream';
import { type Context, ROOT_CONTEXT } from '@opentelemetry/api';
import type { Dispatcher } from 'undici';
import { STATUS_CODES } from 'node:http';
import { AgentResponse, type ResponseConnection } from './agent-response.js';
import { type MalformedStatus, RequestHead, RequestReader, type RequestSink } from './agent-request-reader.js';
import { runInContext } from '../telemetry/run-in-context.js';
import type { PipeEnd } from './pipe.js';

/** What a connection needs from the agents' shared server side. */
export interface AgentWireServer {
  readonly dispatcher: Dispatcher;
  readonly context: AsyncLocalStorage<Context>;
  /** true once the mesh is closing */
  readonly closing: boolean;
  /** The context noted for a request id (and forgets it). */
  takeContext(id: string): Context | undefined;
  /** The connection closed. */
  forget(connection: AgentConnection): void;
}

/** Request bodies up to this size are read whole before dispatch, so a retry can replay them. */
export const REPLAYABLE_BODY_BYTES = 64 * 1024;

const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');

/** One pipe's server end. */
export class AgentConnection implements RequestSink, ResponseConnection {
  private readonly reader = new RequestReader(this);
  /** the request being answered */
  private request: RequestHead | undefined = undefined;
  private response: AgentResponse | undefined = undefined;
  /** a replayable body being read before dispatch */
  private buffered: Buffer[] | undefined = undefined;
  /** a streamed body, pushed as it arrives */
  private stream: RequestBody | undefined = undefined;
  private requestDone = true;
  /** the response ended before its request's body did: the rest is read and dropped */
  private discard = false;
  /** the pipe is paused until the streamed body is read */
  private bodyPaused = false;
  /** the client half-closed, or the connection is refused: no further request is read */
  private finishing = false;
  /** origin strings are made once per host, not per request */
  private lastHost: string | undefined = undefined;
  private lastOrigin = '';

  constructor(private readonly server: AgentWireServer, private readonly socket: PipeEnd, private readonly scheme: 'http' | 'https') {
    socket.on('data', (chunk: Buffer) => {
      this.reader.execute(chunk);
      // A pipelined request waits for the response before it; so does the client's next write.
      if (this.reader.holding) socket.pause();
    });
    socket.on('drain', () => this.response?.onDrain());
    socket.on('end', () => this.onEnd());
    socket.on('close', () => this.onClose());
    socket.on('error', ignore); // the pipe's errors come with its 'close'
  }

  get closing(): boolean {
    return this.finishing || this.server.closing;
  }

  /** Closes the connection (the mesh is closing). */
  destroy(): void {
    this.socket.destroy();
  }

  onRequestHead(head: RequestHead): void {
    if (this.finishing) return;
    if (head.method === 'CONNECT') return this.onMalformed(501, 'CONNECT is not carried by the agent');
    this.request = head;
    this.requestDone = false;
    const response = new AgentResponse(this, head.method === 'HEAD', head.keepAlive, head.http10);
    this.response = response;
    if (!head.hasBody) return this.dispatch(head, response, null);
    if (head.expectContinue) this.write(CONTINUE);
    if (head.contentLength > 0 && head.contentLength <= REPLAYABLE_BODY_BYTES) {
      this.buffered = [];
      return;
    }
    this.stream = new RequestBody(this);
    this.dispatch(head, response, this.stream);
  }

  onRequestBody(chunk: Buffer): void {
    if (this.discard) return;
    if (this.buffered !== undefined) this.buffered.push(chunk);
    else if (this.stream !== undefined && !this.stream.push(chunk)) {
      this.bodyPaused = true;
      this.socket.pause(); // until undici reads the body (RequestBody._read)
    }
  }

  onRequestEnd(): void {
    this.requestDone = true;
    if (this.discard) {
      // The response is out already: the next request may be read.
      this.discard = false;
      return this.next();
    }
    const buffered = this.buffered;
    if (buffered !== undefined) {
      this.buffered = undefined;
      this.dispatch(this.request!, this.response!, buffered.length === 1 ? buffered[0]! : Buffer.concat(buffered));
    } else if (this.stream !== undefined) {
      this.stream.push(null);
      this.stream = undefined;
      // The body is all pushed: whatever undici has yet to read, the pipe needs no more pausing for it.
      this.bodyPaused = false;
      this.resumeReading();
    }
  }

  onMalformed(status: MalformedStatus, reason: string): void {
    this.finishing = true;
    const response = this.response;
    this.response = undefined;
    this.stream?.destroy(new Error(`malformed request body: ${reason}`));
    this.stream = undefined;
    if (response !== undefined) {
      const started = response.headersStarted;
      response.disconnected();
      if (started) return this.reset();
    }
    const body = `${reason}\n`;
    this.write(Buffer.from(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nx-meshlet-flags: DPE\r\nconnection: close\r\n\r\n${body}`, 'latin1'));
    this.socket.end();
  }

  write(data: Buffer): boolean {
    if (this.socket.destroyed) return true;
    return this.socket.write(data);
  }

  responseDone(response: AgentResponse, close: boolean): void {
    if (response !== this.response) return;
    this.response = undefined;
    if (close || this.closing) {
      this.finishing = true;
      this.dropStream();
      this.socket.end();
      return;
    }
    if (!this.requestDone) {
      // Answered before the body was all sent (a fault, a local reply): read the rest and drop it, as node's server does.
      this.discard = true;
      this.buffered = undefined;
      this.dropStream();
      return;
    }
    this.next();
  }

  reset(): void {
    this.socket.destroy();
  }

  /** Reads the next request on the connection, if the client sent one. */
  private next(): void {
    this.request = undefined;
    this.reader.resume();
    this.resumeReading();
  }

  /** undici read the streamed body: the pipe may flow again. @internal */
  bodyRead(): void {
    if (!this.bodyPaused) return;
    this.bodyPaused = false;
    this.resumeReading();
  }

  private resumeReading(): void {
    if (!this.reader.holding && !this.bodyPaused && this.socket.isPaused()) this.socket.resume();
  }

  /** Stops a streamed body nobody reads any more; the pipe reads on (to drop the rest). */
  private dropStream(): void {
    const stream = this.stream;
    if (stream === undefined) return;
    this.stream = undefined;
    stream.destroy();
    this.bodyPaused = false;
    this.resumeReading();
  }

  private dispatch(head: RequestHead, response: AgentResponse, body: Buffer | Readable | null): void {
    const host = head.host ?? 'localhost';
    if (host !== this.lastHost) {
      this.lastHost = host;
      this.lastOrigin = `${this.scheme}://${host}`;
    }
    const opts: Dispatcher.DispatchOptions = { origin: this.lastOrigin, method: head.method as Dispatcher.HttpMethod, path: head.target, headers: head.headers, body };
    const server = this.server;
    // The pipe's events fire in whatever context wrote or resumed it last; a request without a noted
    // context is dispatched in the root one, never in another request's.
    const ctx = (head.contextId !== undefined ? server.takeContext(head.contextId) : undefined) ?? ROOT_CONTEXT;
    try {
      runInContext(server.context, ctx, dispatchWith, undefined, [server.dispatcher, opts, response]);
    } catch (err) {
      response.onError(err as Error);
    }
  }

  private onEnd(): void {
    // node's client does not half-close, but a client that does gets its last response before the close.
    this.finishing = true;
    if (this.response === undefined || !this.requestDone) this.socket.destroy();
  }

  private onClose(): void {
    this.finishing = true;
    this.response?.disconnected();
    this.response = undefined;
    this.stream?.destroy(new Error('downstream disconnected'));
    this.stream = undefined;
    this.server.forget(this);
  }
}

/** A streamed request body: the pipe is paused while undici has not read what was pushed. */
class RequestBody extends Readable {
  constructor(private readonly connection: AgentConnection) {
    super();
  }

  override _read(): void {
    this.connection.bodyRead();
  }
}

function dispatchWith(dispatcher: Dispatcher, opts: Dispatcher.DispatchOptions, handler: AgentResponse): void {
  dispatcher.dispatch(opts, handler as unknown as Dispatcher.DispatchHandler);
}

function ignore(): void {}
