/**
 * The ingress gateway: a node:http(s) server in front of a mesh created for
 * the gateway workload. Each request's Host header picks a virtual host in
 * the route table of the Gateway server port it serves (`http.<port>`), and
 * the mesh dispatcher routes it with every outbound feature — the same path
 * a sidecar-less client takes, so a gateway is one more mesh workload.
 * Each request is first normalized as Envoy's HCM does (mesh
 * `meshConfig.pathNormalization`) and checked against the AuthorizationPolicies
 * that select the gateway workload, so routes, policies and upstreams all
 * see the normalized path.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { ConfigSource } from '../config/load.js';
import { DEFAULT_GATEWAY_LABELS } from '../config/translate-gateway.js';
import type { CompiledVirtualHost, RouteTable, Snapshot } from '../core/snapshot.js';
import { createMesh, type Mesh, type MeshOptions, type WorkloadOptions } from '../mesh.js';
import { ResponseWriter, writeLocalReply } from '../http/response-writer.js';
import { dispatchOptions, parseAuthority } from './forward.js';
import { dynamicMetadataOf } from '../security/inbound-authz.js';
import { gatewayListeners, httpsOptions, listenerCertificates, routeTables } from './listeners.js';
import { compileEdgePolicy, type EdgePolicy, type GatewayEdgeOptions } from './sanitize.js';
import { applyIdleTimeout, DEFAULT_SERVER_TIMEOUTS, handshakeTimeout, httpServerOptions, resolveServerTimeouts, type ServerTimeouts } from '../security/server-timeouts.js';

/** The xDS options of createMesh, whatever shape the mesh gives them. */
type XdsOption = MeshOptions extends { xds?: infer X } ? X : unknown;

/**
 * Options of {@link createGateway} (DESIGN.md §3); mesh options (random, telemetry…) pass through.
 * What the gateway trusts in outside requests (`gatewayTopology`, `internalAddresses`,
 * `preserveExternalRequestId`) is in {@link GatewayEdgeOptions}.
 */
export interface GatewayOptions extends Omit<MeshOptions, 'workload' | 'config' | 'localReplies'>, GatewayEdgeOptions {
  /** Embedded mode: Gateway, VirtualService, ServiceEntry… as a file, directory, YAML string or objects. */
  config?: ConfigSource;
  /** Control-plane mode: passed to createMesh unchanged. */
  xds?: XdsOption;
  /** Listening port; 0 picks a free one. Default: the port of the Gateway server it serves, else 8080. */
  port?: number;
  /** Listening address. Default 127.0.0.1. */
  host?: string;
  /**
   * The Gateway server port whose routes this server serves, when it differs
   * from the listening port (e.g. Gateway port 80, listening on 8080 or 0).
   * Default: the listening port if a Gateway server has it, the only Gateway
   * port if there is one, else every plain-HTTP Gateway port (first host match wins).
   */
  serverPort?: number;
  /** The gateway workload. Default name `istio-ingressgateway`, namespace `default`, labels `{ istio: 'ingressgateway' }`. */
  workload?: WorkloadOptions;
  /** How long close() lets in-flight requests finish, in ms, before cutting them (default 5000). */
  drainTimeout?: number;
  /**
   * Downstream timeouts in ms (Envoy's HCM names): `requestHeadersTimeout` (default 10 s),
   * `streamIdleTimeout` (5 min), `keepAliveTimeout` (5 s), `requestTimeout` (default 0 here:
   * uploads and downloads are bounded by the routes' own timeouts and by stream idle).
   */
  timeouts?: ServerTimeouts;
}

/** The gateway's defaults: as every mesh server, but no whole-request timeout (routes carry their own). */
const GATEWAY_TIMEOUTS: Readonly<Required<ServerTimeouts>> = Object.freeze({ ...DEFAULT_SERVER_TIMEOUTS, requestTimeout: 0 });

/** A running gateway. */
export interface Gateway {
  /** The port it listens on. */
  readonly port: number;
  /** The gateway workload's mesh (config, metrics, apply). */
  readonly mesh: Mesh;
  /** `http` or `https`. */
  readonly protocol: 'http' | 'https';
  /** Requests being served right now. */
  readonly inFlight: number;
  /**
   * Graceful drain: stops accepting connections at once, lets in-flight
   * requests finish within drainTimeout (answering them `connection: close`),
   * then closes every connection and the mesh. Idempotent.
   */
  close(): Promise<void>;
}

/** The default gateway workload, as Istio's ingress gateway Deployment. */
export const DEFAULT_GATEWAY_WORKLOAD: Readonly<Required<Pick<WorkloadOptions, 'name' | 'namespace' | 'labels'>>> = Object.freeze({
  name: 'istio-ingressgateway',
  namespace: 'default',
  labels: DEFAULT_GATEWAY_LABELS,
});

/** Starts an ingress gateway (DESIGN.md §3). */
export async function createGateway(options: GatewayOptions = {}): Promise<Gateway> {
  const { port, host = '127.0.0.1', serverPort, workload, drainTimeout, timeouts, gatewayTopology, internalAddresses, preserveExternalRequestId, ...meshOptions } = options;
  const edge = compileEdgePolicy({ gatewayTopology, internalAddresses, preserveExternalRequestId },
    `${workload?.namespace ?? DEFAULT_GATEWAY_WORKLOAD.namespace}/${workload?.name ?? DEFAULT_GATEWAY_WORKLOAD.name}`);
  const mesh = await createMesh({
    ...(meshOptions as MeshOptions),
    workload: { ...DEFAULT_GATEWAY_WORKLOAD, ...workload, labels: { ...(workload?.labels ?? DEFAULT_GATEWAY_LABELS) } },
    localReplies: 'response',
  });
  try {
    const gateway = new GatewayServer(mesh, { port, serverPort, drainTimeout: drainTimeout ?? 5000, edge, timeouts: resolveServerTimeouts(timeouts, GATEWAY_TIMEOUTS) });
    await gateway.listen(host);
    return gateway;
  } catch (err) {
    await mesh.close();
    throw err;
  }
}

class GatewayServer implements Gateway {
  readonly protocol: 'http' | 'https';
  private readonly server: Server;
  private readonly servedPorts: ReadonlySet<number> | undefined;
  private readonly defaultPort: number;
  private readonly listenPort: number;
  private readonly drainTimeout: number;
  private readonly edge: EdgePolicy;
  private tablesSnapshot: Snapshot | undefined;
  private tables: RouteTable[] = [];
  private active = 0;
  private draining = false;
  private idle: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  private boundPort = 0;
  private readonly closeConnection = (): boolean => this.draining;

  constructor(readonly mesh: Mesh, options: {
    port: number | undefined; serverPort: number | undefined; drainTimeout: number; edge: EdgePolicy; timeouts: Required<ServerTimeouts>;
  }) {
    this.drainTimeout = options.drainTimeout;
    this.edge = options.edge;
    const listeners = gatewayListeners(mesh.snapshot);
    const wanted = options.serverPort ?? (listeners.some((l) => l.port === options.port) ? options.port : undefined);
    const served = wanted !== undefined ? listeners.filter((l) => l.port === wanted) : listeners.length === 1 ? listeners : undefined;
    this.servedPorts = wanted !== undefined ? new Set([wanted]) : served ? new Set(served.map((l) => l.port)) : undefined;
    const tls = served?.find((l) => l.tls);
    this.protocol = tls ? 'https' : 'http';
    this.defaultPort = tls ? 443 : 80;
    this.listenPort = options.port ?? served?.[0]?.port ?? listeners[0]?.port ?? 8080;
    const handler = (req: IncomingMessage, res: ServerResponse): void => this.handle(req, res);
    const http = httpServerOptions(options.timeouts);
    this.server = tls
      ? createHttpsServer({ ...httpsOptions(listenerCertificates(tls.listener)), ...http, ...handshakeTimeout(options.timeouts) }, handler)
      : createHttpServer(http, handler);
    applyIdleTimeout(this.server, options.timeouts);
  }

  get port(): number {
    return this.boundPort;
  }

  get inFlight(): number {
    return this.active;
  }

  async listen(host: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.listenPort, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.boundPort = (this.server.address() as AddressInfo).port;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.active++;
    res.once('close', this.requestDone);
    // As Envoy's HCM, before anything reads the path: route matching, policy and the upstream get the normalized one.
    const refused = this.mesh.inbound.normalize(req) ?? this.mesh.security.authorization.authorizeHttp(req);
    if (refused !== undefined) {
      for (const [name, value] of refused.headers) res.setHeader(name, value);
      writeLocalReply(res, refused.status, refused.flags, refused.body, this.draining);
      return;
    }
    const snapshot = this.mesh.snapshot;
    const authority = req.headers.host ?? '';
    const { host, port } = parseAuthority(authority, this.defaultPort);
    const vhost = this.virtualHost(snapshot, host, port);
    if (!vhost) {
      writeLocalReply(res, 404, 'NR', 'route not found', this.draining);
      return;
    }
    const opts = dispatchOptions(req, authority, this.protocol, this.edge);
    const writer = new ResponseWriter(res, this.closeConnection);
    // The gateway is where a trace starts (or joins the client's): outbound spans parent on this context.
    const context = this.mesh.telemetry.propagator.extract(req.headers);
    // jwt_authn's payload (authorizeHttp ran it): VirtualService `@request.auth.claims` matches read it.
    const metadata = dynamicMetadataOf(req);
    this.mesh.context.run(context, () => this.mesh.dispatcher.dispatchToVirtualHost(snapshot, vhost, opts, writer, authority, undefined, req.socket.remoteAddress, metadata));
  }

  private readonly requestDone = (): void => {
    if (--this.active === 0) this.idle?.();
  };

  private virtualHost(snapshot: Snapshot, host: string, port: number): CompiledVirtualHost | undefined {
    if (snapshot !== this.tablesSnapshot) {
      this.tables = routeTables(snapshot, this.servedPorts, this.protocol === 'https');
      this.tablesSnapshot = snapshot;
    }
    const tables = this.tables;
    for (let i = 0; i < tables.length; i++) {
      const vhost = tables[i]!.virtualHost(host, port);
      if (vhost) return vhost;
    }
    return undefined;
  }

  close(): Promise<void> {
    this.closing ??= this.drain();
    return this.closing;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    if (this.active > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.drainTimeout);
        timer.unref();
        this.idle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.server.closeAllConnections();
    await closed;
    await this.mesh.close();
  }
}
