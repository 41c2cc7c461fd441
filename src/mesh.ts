/**
 * The mesh object: one workload's view of the service mesh. It owns the
 * current snapshot (swapped atomically on apply), the outbound dispatcher and
 * everything that must be closed.
 */
import { request as undiciRequest, type Dispatcher } from 'undici';
import { MeshAgents, type MeshHttpAgent, type MeshHttpsAgent } from './http/node-agent.js';
import { loadDocuments, type ConfigSource } from './config/load.js';
import { parseResources } from './config/resources.js';
import type { ResourceStatus } from './config/admission.js';
import { ConfigStatusLog } from './config/config-status.js';
import { checkMeshConfig, type MeshConfigOptions } from './config/mesh-config.js';
import { pathNormalizationSettings } from './core/path-normalization.js';
import type { ProxyInfo } from './config/translate.js';
import type { EnvoyResources, Listener } from './config/envoy.js';
import { fromStruct } from './config/struct.js';
import { TELEMETRY_METADATA_KEY } from './config/translate-inbound.js';
import { inboundListener } from './core/listener-role.js';
import { inboundListenersOf } from './core/inbound-listener.js';
import { defaultRandom, type RandomSource } from './core/random.js';
import { retireCluster } from './core/cluster.js';
import { clusterStatuses, type ClusterStatus } from './core/cluster-status.js';
export type { ClusterStatus } from './core/cluster-status.js';
import type { MeshOptions } from './mesh-options.js';
export type { MeshOptions, WorkloadOptions } from './mesh-options.js';
import { compileSnapshot, compileSnapshotSliced, emptySnapshot, type Snapshot } from './core/snapshot.js';
import { SerialQueue } from './core/slices.js';
import { MeshDispatcher } from './http/dispatcher.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Context } from '@opentelemetry/api';
import type { MeshTelemetry } from './telemetry/telemetry.js';

type AccessLogs = ReturnType<MeshTelemetry['compileAccessLogs']>;
import { telemetryPolicyFor } from './telemetry/telemetry-policy.js';
import { createAdminServer, DEFAULT_ADMIN_PORT, type AdminServer } from './telemetry/admin.js';
import { createMeshGrpc, type MeshGrpc } from './grpc/index.js';
import type { AdsClient } from './xds/ads-client.js';
import { subscribe } from './xds/mesh-subscription.js';
import { workloadProxy } from './mesh-workload.js';
import { translateEmbedded } from './config/embedded.js';
import { resolveBootstrap } from './xds/bootstrap.js';
import { bootstrapIdentitySource, defaultInstanceIp, resolveNodeIdentity, type NodeIdentity } from './xds/node.js';
import { meshTelemetry } from './mesh-telemetry.js';
import { expressMiddleware, type ExpressMiddleware } from './http/express.js';
import { fastifyPlugin, type MeshFastifyPlugin } from './http/fastify.js';
import { InboundServer } from './http/inbound.js';
// security: identity, mTLS, authorization
import type { IncomingMessage, RequestListener } from 'node:http';
import type { Http2SecureServer } from 'node:http2';
import type { Server as HttpsServer } from 'node:https';
import type { TlsOptions, TLSSocket } from 'node:tls';
import { InboundPolicyCompiler, validateInboundPolicy } from './core/inbound-policy.js';
import { remoteJwksOf } from './core/jwt-authn.js';
import { MeshSecurity, type InboundChain, type MeshIdentityOptions } from './security/mesh-security.js';
import type { AnyRequestListener, Http2RequestListener, MeshRequestListener } from './security/mesh-http2.js';
import type { MeshServer } from './security/mesh-server.js';
import type { Disposable, WorkloadIdentity } from './security/workload-identity.js';
import type { ServerTimeouts } from './security/server-timeouts.js';

/** A workload's mesh: outbound dispatcher, fetch, config and lifecycle. */
export class Mesh {
  /** An undici Dispatcher: `undici.request(url, { dispatcher: mesh.dispatcher })`. */
  readonly dispatcher: MeshDispatcher;
  /** The workload as the translator sees it. */
  readonly proxy: ProxyInfo;
  /** Tracing, metrics and metadata exchange for this workload. */
  readonly telemetry: MeshTelemetry;
  /**
   * The trace context of the inbound request being handled. Inbound middleware
   * runs handlers inside it so outbound calls become child spans with no app code.
   */
  readonly context = new AsyncLocalStorage<Context>();
  private current: Snapshot = emptySnapshot;
  private generation = 0;
  private readonly installs = new SerialQueue();
  private readonly closeTimeout: number;
  /** CLUSTER_ID: one value for node metadata, metadata exchange and the *_cluster labels. */
  readonly clusterId: string;
  /** CLUSTER_ID, MESH_ID and ISTIO_VERSION as node metadata and telemetry both use them (options, bootstrap, env). */
  readonly nodeIdentity: NodeIdentity;
  private closing: Promise<void> | undefined;
  /** createMesh's outboundTrafficPolicy; a Sidecar selecting this workload overrides it */
  private readonly defaultOutboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  private outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';

  /** @internal use {@link createMesh} */
  constructor(options: MeshOptions) {
    this.proxy = workloadProxy(options.workload);
    this.closeTimeout = options.closeTimeout ?? 1000;
    this.defaultOutboundTrafficPolicy = this.outboundTrafficPolicy = options.outboundTrafficPolicy ?? 'ALLOW_ANY';
    this.nodeIdentity = resolveNodeIdentity({
      options: { ...(options.clusterId && { clusterId: options.clusterId }), ...(options.meshId && { meshId: options.meshId }), ...(options.istioVersion && { istioVersion: options.istioVersion }) },
      ...bootstrapIdentitySource(options.config !== undefined ? undefined : options.xds ?? {}),
      ...(options.trustDomain !== undefined && { trustDomain: options.trustDomain }),
    });
    this.clusterId = this.nodeIdentity.clusterId;
    this.telemetry = meshTelemetry(options, this.proxy, this.nodeIdentity);
    this.dispatcher = new MeshDispatcher(this, {
      random: options.random ?? defaultRandom,
      localReplies: options.localReplies ?? 'response',
      outboundTrafficPolicy: () => this.outboundTrafficPolicy,
      sourceAddress: options.xds?.address ?? defaultInstanceIp(),
    });
    this.random = options.random ?? defaultRandom;
    this.meshConfig = checkMeshConfig(options.meshConfig, 'MeshOptions', 'meshConfig', 'meshConfig');
    // security: mTLS mode and authorization come from the snapshot's inbound listeners (filter chains, RBAC filters)
    this.security = new MeshSecurity({ namespace: this.proxy.namespace, labels: this.proxy.labels, ...(this.proxy.serviceAccount !== undefined && { serviceAccount: this.proxy.serviceAccount }) }, {
      ...(options.trustDomain !== undefined && { trustDomain: options.trustDomain }),
      normalize: (req) => this.inbound.normalize(req),
      inbound: {
        modeFor: (port) => inboundListenersOf(this.current.resources).modeFor(port),
        policyFor: (port) => this.inbound.policies.forSnapshot(this.current, port),
      },
    });
    this.inbound = new InboundServer(this, {
      policies: new InboundPolicyCompiler({ jwks: this.security.jwks }),
      pathNormalization: pathNormalizationSettings(this.meshConfig.pathNormalization?.normalization),
    });
    this.fastify = fastifyPlugin(this);
    this.grpc = createMeshGrpc(this, {
      random: this.random,
      telemetry: this.telemetry,
      outboundTrafficPolicy: () => this.outboundTrafficPolicy,
      contextStore: this.context,
      identity: () => this.security.identity,
      authorize: (call) => this.security.authorization.authorizeGrpc(call),
      inboundMode: (port) => this.security.modeFor(port),
      // One router: gRPC calls share the HTTP side's deadline queues and rate-limit clients.
      deadlines: this.dispatcher.deadlines,
      globalLimits: this.dispatcher.globalLimits,
      sourceAddress: this.dispatcher.sourceAddress,
    });
  }

  /** @internal Subscribes to the control plane and waits (bounded) for the first config. */
  async connectXds(options: NonNullable<MeshOptions['xds']>, identityOptions: MeshIdentityOptions = {}): Promise<void> {
    const security = this.security;
    this.xds = subscribe({
      proxy: this.proxy, nodeIdentity: this.nodeIdentity, identity: security.identity, trustDomain: security.trustDomain,
      onResources: (resources, version) => this.applyFromControlPlane(resources, version),
    }, options, identityOptions);
    await this.xds.ready();
  }

  /** The xDS subscription's state (connected, ACKed versions, last NACK), in control-plane mode. */
  xdsStatus(): ReturnType<AdsClient['status']> | undefined {
    return this.xds?.status();
  }

  private readonly random: RandomSource;
  private readonly meshConfig: MeshConfigOptions;
  /** gRPC: `new Client(target, creds, mesh.grpc.clientOptions())`, interceptors. */
  readonly grpc: MeshGrpc;
  private xds: AdsClient | undefined;
  /** Inbound policies and telemetry shared by every server adapter of this workload. */
  readonly inbound: InboundServer;
  /** Fastify plugin: `fastify.register(mesh.fastify)`. */
  readonly fastify: MeshFastifyPlugin;

  /** The snapshot new requests use. */
  get snapshot(): Snapshot {
    return this.current;
  }

  /**
   * Replaces the embedded configuration atomically. Throws MeshConfigError
   * (naming kind, resource, field and reason) and keeps the old config when
   * any document is invalid.
   */
  async apply(config: ConfigSource): Promise<void> {
    const docs = await loadDocuments(config);
    // One install at a time: each compiles (in slices) against the snapshot the one before it installed.
    await this.installs.run(async () => {
      const { admitted, envoy, outboundTrafficPolicy } = await translateEmbedded(docs, this.proxy, { meshConfig: this.meshConfig, outboundTrafficPolicy: this.defaultOutboundTrafficPolicy });
      if (!(await this.installEnvoy(envoy, `embedded-${++this.generation}`))) return;
      await this.security.jwks.ready(remoteJwksOf(envoy.listeners).map((j) => j.uri)); // each fetch bounded by its timeout
      this.outboundTrafficPolicy = outboundTrafficPolicy;
      this.security.install(admitted.resources);
      this.telemetry.applyPolicy(telemetryPolicyFor(admitted.resources, this.proxy));
      this.statusLog.update(admitted.statuses);
    });
  }

  /**
   * Per Istio resource of the embedded config in force: `{ kind, namespace,
   * name, source?, status: 'applied' | 'partial' | 'rejected', warnings:
   * [{ path, code, message }] }` (DESIGN.md §3). `partial` means valid with
   * fields meshlet does not apply, each named by a warning (logged once, by
   * console.warn); codes are in docs/configuration.md. Empty in control-plane
   * mode: the control plane reports on /debug/config_status.
   */
  configStatus(): ResourceStatus[] {
    return this.statusLog.list();
  }

  private readonly statusLog = new ConfigStatusLog();

  /**
   * Installs resources from the control plane (meshlet's or istiod): the
   * Envoy resources — inbound policy included, as the inbound listeners'
   * filter chains and RBAC filters — plus the Telemetry resources meshlet's
   * control plane carries on `virtual_inbound` (a documented meshlet
   * extension). Throws (→ NACK) when any is unusable.
   */
  private applyFromControlPlane(resources: EnvoyResources, version: string): Promise<void> {
    return this.installs.run(async () => {
      const inbound = inboundListener(resources.listeners) as (Listener & { metadata?: { filter_metadata?: Record<string, unknown> } }) | undefined;
      const carried = fromStruct(inbound?.metadata?.filter_metadata?.[TELEMETRY_METADATA_KEY]).resources;
      const telemetry = telemetryPolicyFor(parseResources(Array.isArray(carried) ? (carried as object[]) : []), this.proxy);
      if (await this.installEnvoy(resources, version)) this.telemetry.applyPolicy(telemetry);
    });
  }

  /** Installs a set of Envoy resources (from the translator or an xDS stream) at once; throws when unusable. */
  applyEnvoy(resources: EnvoyResources, version: string): void {
    const accessLogs = this.checkEnvoy(resources);
    this.swap(compileSnapshot(resources, version, { previous: this.current, random: this.random }), accessLogs);
  }

  /**
   * {@link applyEnvoy} compiling in slices (core/slices.ts), so a large push never blocks the event loop:
   * requests keep the snapshot in force until the new one is whole. False when the mesh closed meanwhile.
   */
  private async installEnvoy(resources: EnvoyResources, version: string): Promise<boolean> {
    const accessLogs = this.checkEnvoy(resources);
    const next = await compileSnapshotSliced(resources, version, { previous: this.current, random: this.random });
    if (this.closing) {
      for (const [name, cluster] of next.clusters) retireCluster(cluster, this.current.clusters.get(name));
      return false;
    }
    this.swap(next, accessLogs);
    return true;
  }

  private checkEnvoy(resources: EnvoyResources): AccessLogs {
    validateInboundPolicy(resources);
    this.security.jwks.prefetch(remoteJwksOf(resources.listeners));
    return this.telemetry.compileAccessLogs(resources.listeners);
  }

  private swap(next: Snapshot, accessLogs: AccessLogs): void {
    const previous = this.current;
    this.current = next;
    this.telemetry.installAccessLogs(accessLogs);
    for (const [name, old] of previous.clusters) retireCluster(old, next.clusters.get(name));
    // Endpoints that left take their connections with them (in-flight requests finish first).
    this.dispatcher.retain(next);
    this.grpc.retain(next);
  }

  /** Express middleware: `app.use(mesh.express())` — inbound trace context, SERVER spans, metrics, policies. */
  express(): ExpressMiddleware {
    return expressMiddleware(this);
  }

  /**
   * WHATWG fetch through the mesh: Node's own `fetch`, so it takes everything the global one takes —
   * a URL string or object, a `Request` (with its body and signal), `Headers`, `FormData`, streams with
   * `duplex: 'half'` — and resolves to the global `Response`, local replies included.
   */
  readonly fetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> =>
    // Node's fetch takes a `dispatcher` (undici's option, not in the DOM types) for the one call. An arrow
    // property, so `{ fetch: mesh.fetch }` (axios's `env.fetch`, ky, …) keeps its mesh.
    globalThis.fetch(input, Object.assign({}, init, { dispatcher: this.dispatcher }) as RequestInit);

  /**
   * An `http.Agent` that sends node:http requests through the mesh (axios's default adapter, got,
   * node-fetch 2, superagent…): `http.request(url, { agent: mesh.httpAgent })`. See docs/clients.md.
   */
  get httpAgent(): MeshHttpAgent {
    return this.agents.httpAgent;
  }

  /** The same for `https.request`; the mesh does the upstream TLS (see docs/clients.md). */
  get httpsAgent(): MeshHttpsAgent {
    return this.agents.httpsAgent;
  }

  private readonly agents = new MeshAgents(this);

  /** undici.request through the mesh. */
  request(url: string | URL, options?: Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & { method?: Dispatcher.HttpMethod }): Promise<Dispatcher.ResponseData<unknown>> {
    return undiciRequest(url, Object.assign({}, options, { dispatcher: this.dispatcher }) as Parameters<typeof undiciRequest>[1]);
  }

  /** The Envoy resources in force, as plain JSON (like Envoy's /config_dump). */
  configDump(): { version: string } & EnvoyResources {
    const s = this.current;
    return structuredClone({ version: s.version, ...s.resources });
  }

  /**
   * Live cluster state, like Envoy's /clusters: each endpoint with its active
   * requests and outlier-detection state (ejected, why, until when), and the
   * circuit-breaker counters.
   */
  clusters(): ClusterStatus[] {
    return clusterStatuses(this.current);
  }

  /** The admin server, when `admin` was given. */
  admin: AdminServer | undefined;

  /** @internal Starts the admin endpoints. */
  async startAdmin(options: NonNullable<MeshOptions['admin']>): Promise<void> {
    this.admin = await createAdminServer({
      port: options.port ?? DEFAULT_ADMIN_PORT,
      host: options.host ?? '127.0.0.1',
      handlers: {
        metrics: () => this.metrics(),
        configDump: () => this.configDump(),
        clusters: () => this.clusters(),
        ready: () => this.current !== emptySnapshot,
      },
    });
  }

  /** Prometheus text exposition of this workload's istio_* metrics. */
  metrics(): Promise<string> {
    return this.telemetry.text();
  }

  // ── security: workload identity, mTLS, authorization (src/security/) ──────────────────────

  /** Identity, PeerAuthentication and AuthorizationPolicy of this workload. */
  readonly security: MeshSecurity;

  /** @internal Obtains the workload certificate (when configured) and hands it to the pools and gRPC. */
  async startSecurity(options: MeshOptions): Promise<void> {
    // Without certs or ca, a bootstrap's `default` certificate provider (istio's grpc-agent template) is the identity.
    const bootstrap = options.config === undefined && !options.certs && !options.ca ? resolveBootstrap(options.xds ?? {}) : undefined;
    await this.security.start(options, options.xds?.server, this.clusterId, bootstrap?.certificateProviders?.default);
  }

  /** The workload identity (key, certificate chain, root; rotates), when certs / ca is configured. */
  get identity(): WorkloadIdentity | undefined {
    return this.security.identity;
  }

  /** The Istio resources of the embedded config in force (AuthorizationPolicy, PeerAuthentication …). */
  get resources(): readonly unknown[] {
    return this.security.resources;
  }

  /**
   * A node:http(s) server for `handler` with the workload's mTLS per
   * PeerAuthentication (STRICT / PERMISSIVE / DISABLE, per port) and
   * AuthorizationPolicy enforced (403 `RBAC: access denied`). `mesh.peerOf(req)`
   * gives the caller's SPIFFE id.
   *
   * With `{ http2: true }` the same port also speaks HTTP/2: TLS clients get
   * h2 or http/1.1 by ALPN, plaintext clients (PERMISSIVE, DISABLE) h2c with
   * prior knowledge or HTTP/1.1. `handler` then receives node:http2's compat
   * `Http2ServerRequest` / `Http2ServerResponse` for h2 requests and
   * `IncomingMessage` / `ServerResponse` for HTTP/1.1 ones.
   * @param handler a node:http request listener (an Express app, Fastify's serverFactory handler); with
   *   `http2`, one that also handles the HTTP/2 compat request and response
   * @param options `http2`: also serve HTTP/2 on the same port (default false); `timeouts`: request-headers,
   *   request, stream-idle and keep-alive timeouts in ms (Envoy's HCM names; default 10 s, 5 min, 5 min, 5 s)
   */
  createServer(handler: MeshRequestListener, options: { http2: true; timeouts?: ServerTimeouts }): MeshServer<Http2SecureServer>;
  createServer(handler: RequestListener | Http2RequestListener, options: { http2: true; timeouts?: ServerTimeouts }): MeshServer<Http2SecureServer>;
  createServer(handler: RequestListener, options?: { http2?: false; timeouts?: ServerTimeouts }): MeshServer<HttpsServer>;
  createServer(handler: MeshRequestListener, options?: { http2?: boolean; timeouts?: ServerTimeouts }): MeshServer;
  createServer(handler: RequestListener, options?: { http2?: boolean; timeouts?: ServerTimeouts }): MeshServer;
  createServer(handler: AnyRequestListener, options?: { http2?: boolean; timeouts?: ServerTimeouts }): MeshServer {
    return this.security.createServer(handler, { ...options, inbound: this.inbound.chain as InboundChain });
  }

  /** TLS options (key, cert, ca, requestCert …) for servers the app builds itself; pair with {@link secure}. */
  serverTls(options?: { mode?: 'STRICT' | 'PERMISSIVE' }): TlsOptions {
    return this.security.serverTls(options);
  }

  /** Follows certificate rotation and refuses foreign trust domains on an app-built TLS server. */
  secure(server: Parameters<MeshSecurity['secure']>[0], options?: { mode?: 'STRICT' | 'PERMISSIVE' }): Disposable {
    return this.security.secure(server, options);
  }

  /** The caller's SPIFFE id (`spiffe://td/ns/x/sa/y`) when it authenticated with mTLS; undefined otherwise. */
  peerOf(req: IncomingMessage | TLSSocket | { socket?: unknown }): string | undefined {
    return this.security.peerOf(req);
  }

  /** Stops taking requests, lets in-flight ones finish within closeTimeout, then aborts them. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.xds?.close();
      await this.admin?.close();
      this.agents.close();
      await Promise.all([this.dispatcher.shutdown(this.closeTimeout), this.grpc.close(this.closeTimeout)]);
      for (const cluster of this.current.clusters.values()) cluster.outlier?.close();
      await this.telemetry.close();
      await this.security.close();
    })();
    return this.closing;
  }
}

export { createMesh } from './create-mesh.js';
