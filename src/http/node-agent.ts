/**
 * node:http and node:https clients through the mesh — axios's default
 * adapter, got, node-fetch 2, superagent, the AWS SDK's Node handler, plain
 * `http.request` — by an `http.Agent` (`mesh.httpAgent`, `mesh.httpsAgent`).
 *
 * The agent's connections are in-process pipes (pipe.ts). Their server end
 * is not an http.Server but a small HTTP/1.1 reader and writer made for what
 * node's ClientRequest writes (agent-connection.ts): each request is
 * dispatched through `mesh.dispatcher` — the same router as `mesh.fetch`
 * (routing, load balancing, outlier detection, mTLS, connection-pool limits,
 * timeouts, retries, local replies, metrics, tracing) — and the response is
 * written straight into the pipe with back-pressure, so a request crosses
 * node's HTTP machinery once (the client's), not twice.
 *
 * The client's trace context does not survive the trip through the pipe (its
 * events fire later), so the agent notes the context when the request is
 * created and hands it over in a header the reader removes again.
 */
import type { AsyncLocalStorage } from 'node:async_hooks';
import { Agent as HttpAgent, type AgentOptions, type ClientRequest } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Duplex } from 'node:stream';
import { type Context, context as otelContext, ROOT_CONTEXT } from '@opentelemetry/api';
import type { Dispatcher } from 'undici';
import { AgentConnection, type AgentWireServer } from './agent-connection.js';
import { CONTEXT_HEADER } from './agent-request-reader.js';
import { pipePair } from './pipe.js';

/** What the agents need from a mesh. */
export interface AgentMesh {
  readonly dispatcher: Dispatcher;
  readonly context: AsyncLocalStorage<Context>;
}

/** The server side shared by one mesh's agents: the contexts handed over and the open connections. */
class AgentServer implements AgentWireServer {
  private readonly contexts = new Map<string, Context>();
  private readonly connections = new Set<AgentConnection>();
  private nextId = 0;
  closing = false;
  /** One listener for every tracked request (`this` is the request), not a closure per request. */
  private readonly untrack: (this: ClientRequest) => void;

  constructor(private readonly mesh: AgentMesh) {
    const contexts = this.contexts;
    this.untrack = function (this: ClientRequest) {
      contexts.delete(this.getHeader(CONTEXT_HEADER) as string);
    };
  }

  get dispatcher(): Dispatcher {
    return this.mesh.dispatcher;
  }

  get context(): AsyncLocalStorage<Context> {
    return this.mesh.context;
  }

  /** A new connection: the client's end of a pipe whose other end this side reads. */
  connect(scheme: 'http' | 'https'): Duplex {
    const [client, server] = pipePair();
    this.connections.add(new AgentConnection(this, server, scheme));
    return client;
  }

  forget(connection: AgentConnection): void {
    this.connections.delete(connection);
  }

  /** Notes the caller's context for a request about to be written. */
  track(req: ClientRequest): void {
    if (req.headersSent) return; // raw-array headers are serialized at once: no room for the id
    const ctx = this.mesh.context.getStore() ?? otelContext.active();
    if (ctx === ROOT_CONTEXT) return; // nothing to hand over: the request is dispatched in the root context
    const id = String(++this.nextId);
    this.contexts.set(id, ctx);
    req.setHeader(CONTEXT_HEADER, id);
    req.on('close', this.untrack);
  }

  takeContext(id: string): Context | undefined {
    const ctx = this.contexts.get(id);
    this.contexts.delete(id);
    return ctx;
  }

  close(): void {
    this.closing = true;
    for (const connection of this.connections) connection.destroy();
    this.connections.clear();
  }
}

type AddRequest = (this: HttpAgent, req: ClientRequest, options: unknown) => void;
const httpAddRequest = (HttpAgent.prototype as unknown as { addRequest: AddRequest }).addRequest;

/**
 * `mesh.httpAgent`: an http.Agent for `http.request` and every client built
 * on it. Connections are kept alive and reused as with any agent
 * (`keepAlive: true` by default).
 */
export class MeshHttpAgent extends HttpAgent {
  constructor(private readonly server: AgentServer, options: AgentOptions = {}) {
    super({ keepAlive: true, ...options });
  }

  override createConnection(): Duplex {
    return this.server.connect('http');
  }

  /** @internal node's Agent hook for a new request (stable since node 0.x, used by agent libraries). */
  addRequest(req: ClientRequest, options: unknown): void {
    this.server.track(req);
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
  constructor(private readonly server: AgentServer, options: AgentOptions = {}) {
    super({ keepAlive: true, ...options });
  }

  override createConnection(): Duplex {
    return this.server.connect('https'); // the request goes to an https origin
  }

  /** @internal see {@link MeshHttpAgent.addRequest} */
  addRequest(req: ClientRequest, options: unknown): void {
    this.server.track(req);
    httpAddRequest.call(this as unknown as HttpAgent, req, options);
  }
}

/** The agents of one mesh, made on first use and closed with it. */
export class MeshAgents {
  private side: AgentServer | undefined;
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
    return (this.side ??= new AgentServer(this.mesh));
  }

  close(): void {
    this.http?.destroy();
    this.https?.destroy();
    this.side?.close();
  }
}
