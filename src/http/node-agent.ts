/**
 * node:http and node:https clients through the mesh — axios's default
 * adapter, got, node-fetch 2, superagent, the AWS SDK's Node handler, plain
 * `http.request` — by an `http.Agent` (`mesh.httpAgent`, `mesh.httpsAgent`).
 *
 * The agent's connections are in-process pipes (pipe.ts) to an http.Server
 * that never listens: node's own HTTP/1.1 parser reads what the client
 * writes, and each request is dispatched through `mesh.dispatcher` — the same
 * router as `mesh.fetch` (routing, load balancing, outlier detection, mTLS,
 * connection-pool limits, timeouts, retries, local replies, metrics, tracing).
 * The response streams back through the pipe with back-pressure.
 *
 * The client's trace context does not survive the trip through the parser
 * (its events fire later, from the pipe), so the agent notes the context when
 * the request is created and hands it over in a header it removes again.
 */
import type { AsyncLocalStorage } from 'node:async_hooks';
import { Agent as HttpAgent, type AgentOptions, type ClientRequest, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { type Context, context as otelContext } from '@opentelemetry/api';
import type { Dispatcher } from 'undici';
import { runInContext } from './inbound.js';
import { pipePair } from './pipe.js';
import { ResponseWriter } from './response-writer.js';

/** What the agents need from a mesh. */
export interface AgentMesh {
  readonly dispatcher: Dispatcher;
  readonly context: AsyncLocalStorage<Context>;
}

/** The header that carries a request's context id through the pipe; never forwarded. */
const CONTEXT_HEADER = 'x-meshlet-agent-context';
/** Request bodies up to this size are read whole before dispatch, so a retry can replay them. */
const REPLAYABLE_BODY_BYTES = 64 * 1024;
/** Connection-scoped request headers; `host` is re-set from the authority by the dispatcher. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'host', 'http2-settings', CONTEXT_HEADER]);

/** The parser side shared by one mesh's agents. */
class AgentServer {
  private readonly server: Server;
  private readonly contexts = new Map<string, Context>();
  private nextId = 0;

  constructor(private readonly mesh: AgentMesh) {
    this.server = createServer((req, res) => this.forward(req, res));
  }

  /** A new connection: the client's end of a pipe whose other end this server reads. */
  connect(): import('node:stream').Duplex {
    const [client, server] = pipePair();
    this.server.emit('connection', server);
    return client;
  }

  /** Notes the caller's context for a request about to be written. */
  track(req: ClientRequest): void {
    if (req.headersSent) return; // raw-array headers are serialized at once: no room for the id
    const id = String(++this.nextId);
    this.contexts.set(id, this.mesh.context.getStore() ?? otelContext.active());
    req.setHeader(CONTEXT_HEADER, id);
    req.once('close', () => this.contexts.delete(id));
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    const id = req.headers[CONTEXT_HEADER] as string | undefined;
    const ctx = id !== undefined ? this.contexts.get(id) : undefined;
    if (id !== undefined) this.contexts.delete(id);
    const scheme = (req.socket as { meshScheme?: string }).meshScheme ?? 'http';
    const length = Number(req.headers['content-length'] ?? NaN);
    if (length > 0 && length <= REPLAYABLE_BODY_BYTES) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.dispatch(req, res, scheme, Buffer.concat(chunks), ctx));
      return;
    }
    this.dispatch(req, res, scheme, hasBody(req) ? req : null, ctx);
  }

  private dispatch(req: IncomingMessage, res: ServerResponse, scheme: string, body: Buffer | IncomingMessage | null, ctx: Context | undefined): void {
    const raw = req.rawHeaders;
    const headers: string[] = [];
    for (let i = 0; i < raw.length; i += 2) if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!);
    const opts: Dispatcher.DispatchOptions = {
      origin: `${scheme}://${req.headers.host ?? 'localhost'}`,
      method: req.method as Dispatcher.HttpMethod,
      path: req.url ?? '/',
      headers,
      body,
    };
    const writer = new ResponseWriter(res, neverClose);
    if (ctx === undefined) this.mesh.dispatcher.dispatch(opts, writer as unknown as Dispatcher.DispatchHandler);
    else runInContext(this.mesh.context, ctx, dispatchWith, undefined, [this.mesh.dispatcher, opts, writer]);
  }

  close(): void {
    this.server.closeAllConnections();
  }
}

const neverClose = () => false;

function dispatchWith(dispatcher: Dispatcher, opts: Dispatcher.DispatchOptions, handler: ResponseWriter): void {
  dispatcher.dispatch(opts, handler as unknown as Dispatcher.DispatchHandler);
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return length !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

type AddRequest = (this: HttpAgent, req: ClientRequest, options: unknown) => void;
const httpAddRequest = (HttpAgent.prototype as unknown as { addRequest: AddRequest }).addRequest;

/**
 * `mesh.httpAgent`: an http.Agent for `http.request` and every client built
 * on it. Connections are kept alive and reused as with any agent
 * (`keepAlive: true` by default).
 */
export class MeshHttpAgent extends HttpAgent {
  constructor(private readonly parser: AgentServer, options: AgentOptions = {}) {
    super({ keepAlive: true, ...options });
  }

  override createConnection(): import('node:stream').Duplex {
    return this.parser.connect();
  }

  /** @internal node's Agent hook for a new request (stable since node 0.x, used by agent libraries). */
  addRequest(req: ClientRequest, options: unknown): void {
    this.parser.track(req);
    httpAddRequest.call(this, req, options);
  }
}

/**
 * `mesh.httpsAgent`: the same for `https.request` (and clients given an
 * `https:` URL). The client writes plain HTTP into the pipe; TLS to the
 * upstream is the mesh's (ISTIO_MUTUAL, SIMPLE or MUTUAL per DestinationRule,
 * or TLS to the host for a passthrough call), so the agent's own TLS options
 * (`ca`, `cert`, `rejectUnauthorized`) do not apply.
 */
export class MeshHttpsAgent extends HttpsAgent {
  constructor(private readonly parser: AgentServer, options: AgentOptions = {}) {
    super({ keepAlive: true, ...options });
  }

  override createConnection(): import('node:stream').Duplex {
    const socket = this.parser.connect();
    // The server end tells the parser side which scheme the client asked for.
    (socket as unknown as { peer: { meshScheme?: string } }).peer.meshScheme = 'https';
    return socket;
  }

  /** @internal see {@link MeshHttpAgent.addRequest} */
  addRequest(req: ClientRequest, options: unknown): void {
    this.parser.track(req);
    httpAddRequest.call(this as unknown as HttpAgent, req, options);
  }
}

/** The agents of one mesh, made on first use and closed with it. */
export class MeshAgents {
  private parser: AgentServer | undefined;
  private http: MeshHttpAgent | undefined;
  private https: MeshHttpsAgent | undefined;

  constructor(private readonly mesh: AgentMesh) {}

  get httpAgent(): MeshHttpAgent {
    return (this.http ??= new MeshHttpAgent(this.server()));
  }

  get httpsAgent(): MeshHttpsAgent {
    return (this.https ??= new MeshHttpsAgent(this.server()));
  }

  private server(): AgentServer {
    return (this.parser ??= new AgentServer(this.mesh));
  }

  close(): void {
    this.http?.destroy();
    this.https?.destroy();
    this.parser?.close();
  }
}
