/**
 * `createControlPlane({ config, port })` (DESIGN.md §3, §6): watches a
 * directory of Istio YAML, translates it per namespace with the same code as
 * embedded mode, and serves it over ADS to many clients, pushing (debounced)
 * only what changed for each. Workloads that prove their identity and name
 * their WorkloadGroup become endpoints of their service (registry.ts).
 * Optional debug HTTP server on loopback. On the same gRPC port, when asked:
 * the CA (Istio's CSR API; the port then also speaks TLS, and ADS requires
 * TLS unless `plaintext: true`) and the rate-limit service.
 */
import { GATEWAY_NAME_LABEL } from '../config/gateway-api/ingress.js';
import * as grpc from '@grpc/grpc-js';
import type { Server as HttpServer } from 'node:http';
import type { EnvoyResources } from '../config/envoy.js';
import type { IstioResource } from '../config/istio-types.js';
import type { DroppedResource } from '../config/translate-isolated.js';
import { IncrementalTranslator } from '../config/translate-incremental.js';
import type { ResourceStatus } from '../config/admission.js';
import { ConfigStatusLog, withDropped } from '../config/config-status.js';
import { checkMeshConfig, type MeshConfigOptions } from '../config/mesh-config.js';
import { MeshError } from '../errors.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import type { CertificateAuthority, MintTokenOptions } from '../security/ca.js';
import { authenticateCaller } from '../security/ca-service.js';
import { parseSpiffeId } from '../security/identity.js';
import { createTrace, type TraceFn } from '../xds/trace.js';
import { AdsServer, type StreamAuthentication, type StreamAuthenticator, type SyncStatus } from './ads-server.js';
import { ConfigWatcher, type ConfigProblem } from './config-watcher.js';
import { startDebugServer } from './debug-server.js';
import type { ServerTimeouts } from '../security/server-timeouts.js';
import { type ControlPlaneCaOptions, type ControlPlaneRateLimitOptions, type HostedCa, hostCa, hostRateLimit } from './hosted-services.js';
import { type GrpcListener, listenGrpc } from './listener.js';
import { WorkloadRegistry, type NodeInfo, type RefusedRegistration, type RegisteredWorkload } from './registry.js';
import { SnapshotCache } from './snapshot-cache.js';
import { StagedTranslation } from './staged-translation.js';
import type { ProxyInfo } from '../config/translate.js';

/** Options of {@link createControlPlane}. */
export interface ControlPlaneOptions {
  /** Directory of Istio YAML/JSON (top level, *.yaml, *.yml, *.json). */
  config: string;
  /** ADS port (0 picks a free one; the CLI default is 15010). */
  port: number;
  /** Bind address of the ADS port (default 127.0.0.1; `0.0.0.0` to serve other hosts). */
  host?: string;
  /**
   * Whether ADS is served over plaintext connections. Default: true without
   * a CA (there is no TLS then), false with `ca` — workloads must then
   * connect over TLS, checking the control plane's certificate against the
   * mesh root, and present their workload certificate (mTLS) or a bootstrap
   * token to be registered. Plaintext streams never prove an identity, so
   * they are never registered as endpoints, whatever this says.
   */
  plaintext?: boolean;
  /** Port of the debug HTTP server (/debug/syncz, /debug/status); off when undefined. */
  debugPort?: number;
  /** Bind address of the debug server (default 127.0.0.1: it shows every workload and the config). */
  debugHost?: string;
  /** Timeouts of the debug server against slow clients, ms (defaults as `mesh.createServer`'s, docs/reliability.md). */
  debugTimeouts?: ServerTimeouts;
  /** Debounce for file changes and registrations, ms (default 100). */
  debounceMs?: number;
  /** How long a registered workload outlives its stream, ms (default 10 000). */
  registrationGraceMs?: number;
  /** Receives log lines (default: config errors to stderr, the rest through MESHLET_TRACE=control-plane). */
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
  /**
   * Host a CA (Istio's `istio.v1.auth.IstioCertificateService/CreateCertificate`)
   * kept in `dir`. The ADS port then speaks TLS as well as plaintext (first
   * byte sniffed): workloads ask for certificates over TLS, authenticated by
   * a bootstrap token or, for renewals, their current certificate.
   */
  ca?: ControlPlaneCaOptions;
  /** Host the rate-limit service (`envoy.service.ratelimit.v3.RateLimitService`) on the ADS port. */
  ratelimit?: ControlPlaneRateLimitOptions;
  /**
   * Istio MeshConfig (`pathNormalization`), written onto every inbound
   * listener as istiod does. An `istio` ConfigMap in `istio-system` in the
   * config directory overrides it.
   */
  meshConfig?: MeshConfigOptions;
}

/** Returned by {@link ControlPlane.status}. */
export interface ControlPlaneStatus {
  /** Config generation served. */
  generation: number;
  /** Successful loads of the config directory. */
  loads: number;
  loadedAt: string | undefined;
  /** The first rejected resource of the config (the rest is served; see configStatus()), or why the directory could not be read. */
  configError: ConfigProblem | undefined;
  /** Translation errors by namespace. */
  translationErrors: Record<string, string>;
  clients: number;
  /** Whether ADS is served over plaintext. */
  plaintext: boolean;
  /** Plaintext ADS streams refused (plaintext off). */
  refusedPlaintextStreams: number;
  /** Registered workloads (WorkloadEntries made from their WorkloadGroup). */
  workloads: RegisteredWorkload[];
  /** Connected nodes that asked to be registered and are not endpoints, with the reason. */
  unregistered: RefusedRegistration[];
  /** Responses sent by the last push. */
  lastPush: { at: string; responses: number; ms: number } | undefined;
}

/** A running control plane. */
export interface ControlPlane {
  /** The ADS port. */
  readonly port: number;
  /** The address the ADS port is bound to. */
  readonly host: string;
  /** The debug HTTP port, when enabled. */
  readonly debugPort: number | undefined;
  /** The address the debug server is bound to, when enabled (loopback unless `debugHost` says otherwise). */
  readonly debugHost: string | undefined;
  /** Config state, errors, registered workloads. */
  status(): ControlPlaneStatus;
  /**
   * Per Istio resource of the config directory, as `mesh.configStatus()`:
   * applied, partial (warnings name what is not applied) or rejected (not
   * valid, or left out of a translation) — also on /debug/config_status.
   */
  configStatus(): ResourceStatus[];
  /** Connected clients with sent/ACKed versions and last NACK. */
  syncz(): SyncStatus[];
  /** The Envoy resources served to a namespace. */
  configDump(namespace: string): EnvoyResources;
  /** Reloads the directory now and pushes (tests, SIGHUP). */
  reload(): Promise<void>;
  /** The hosted CA, when `ca` was given. */
  readonly ca: CertificateAuthority | undefined;
  /** The hosted rate limiter, when `ratelimit` was given (`rateLimiter.update(config)` reloads). */
  readonly rateLimiter: RateLimiter | undefined;
  /**
   * PEM of the CA's root certificate, what workloads trust (`createMesh({ ca: { root } })`).
   * @throws MeshError (MESH_NO_CA) when the control plane hosts no CA.
   */
  rootCert(): string;
  /**
   * Mints a bootstrap token for one namespace/service account (default ttl 1 h).
   * @throws MeshError (MESH_NO_CA) when the control plane hosts no CA.
   */
  mintToken(options: MintTokenOptions): string;
  /** Stops serving: ends streams, closes the servers and every timer. */
  close(): Promise<void>;
}

function noCa(): never {
  throw new MeshError('MESH_NO_CA', 'this control plane hosts no CA: createControlPlane({ ca: { dir } }) or --ca-dir');
}

/** Starts a control plane. Throws MeshConfigError when the config directory does not exist. */
export async function createControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const host = options.host ?? '127.0.0.1';
  const plaintext = options.plaintext ?? options.ca === undefined;
  if (!plaintext && !options.ca) throw new MeshError('MESH_NO_CA', 'plaintext: false needs a CA to serve TLS: createControlPlane({ ca: { dir } }) or --ca-dir');
  const debounceMs = options.debounceMs ?? 100;
  const trace: TraceFn = createTrace('control-plane');
  const meshConfig = checkMeshConfig(options.meshConfig, 'ControlPlaneOptions', 'meshConfig', 'meshConfig');
  const log = options.log ?? ((level, message) => {
    if (level === 'info') trace(message);
    else process.stderr.write(`meshlet control-plane ${level}: ${message}\n`);
  });

  let pushTimer: NodeJS.Timeout | undefined;
  let lastPush: ControlPlaneStatus['lastPush'];
  const push = () => {
    pushTimer = undefined;
    const started = performance.now();
    cache.invalidate();
    const responses = ads.pushAll();
    lastPush = { at: new Date().toISOString(), responses, ms: Math.round((performance.now() - started) * 10) / 10 };
    log('info', `generation ${cache.generation}: ${responses} responses to ${ads.connections.size} clients in ${lastPush.ms} ms`);
    statusLog.update(configStatus());
  };
  const schedulePush = () => {
    if (pushTimer) return;
    pushTimer = setTimeout(push, debounceMs);
    pushTimer.unref();
  };

  const watcher = new ConfigWatcher({
    dir: options.config,
    debounceMs,
    onChange: push, // the watcher already debounced
    onRead: (read) => staging.stage(read.resources, read.meshConfig ?? meshConfig),
    onError: (p) => log('error', `config directory not read, still serving the previous config: ${p.message}`),
  });
  const statusLog = new ConfigStatusLog((line, state) => log(state === 'rejected' ? 'error' : 'warn', line));
  // Resources each translation left out, by translation key, for the generation they were found in.
  const dropped = new Map<string, { generation: number; resources: DroppedResource[] }>();
  const configStatus = (): ResourceStatus[] => {
    let statuses = watcher.statuses;
    for (const [key, d] of dropped) {
      if (d.generation !== cache.generation) continue;
      const [ns] = parseTranslationKey(key);
      statuses = withDropped(statuses, d.resources, `for proxies in namespace ${ns}${key.includes('\u0000') ? ' with some labels' : ''}`);
    }
    return [...statuses];
  };
  const registry = new WorkloadRegistry(options.registrationGraceMs ?? 10_000, schedulePush);
  // One resource array per generation, so the translation cache sees the same set for every namespace.
  let combined: { generation: number; resources: IstioResource[] } | undefined;
  // Each translation key's last translation, patched when a change touches a few hosts only.
  const incremental = new IncrementalTranslator();
  const proxyFor = (key: string, mc: MeshConfigOptions): ProxyInfo => {
    const [ns, labels] = parseTranslationKey(key);
    const normalization = mc.pathNormalization?.normalization;
    return { name: 'meshlet-control-plane', namespace: ns, labels, ...(normalization !== undefined && { pathNormalization: normalization }), accessLog: mc, exportTo: mc };
  };
  const staging = new StagedTranslation(incremental, () => cache, registry, proxyFor);
  const cache: SnapshotCache = new SnapshotCache((namespace, translations) => {
    if (combined?.generation !== cache.generation) {
      combined = { generation: cache.generation, resources: staging.combined(watcher.resources) };
    }
    // One resource that fails to translate is left out and reported, never an empty config (#16).
    const result = incremental.translate(namespace, combined.resources, proxyFor(namespace, watcher.meshConfig ?? meshConfig), translations);
    if (result.dropped.length > 0 || dropped.has(namespace)) dropped.set(namespace, { generation: cache.generation, resources: result.dropped });
    if (result.dropped.length > 0) statusLog.update(configStatus());
    return result.envoy;
  });
  // Label keys that some selector in the config reads; a node's translation depends on those labels only.
  let selectorKeys: { generation: number; keys: string[] } | undefined;
  const translationKey = (node: NodeInfo | undefined): string => {
    if (selectorKeys?.generation !== cache.generation) selectorKeys = { generation: cache.generation, keys: selectorLabelKeys(watcher.resources) };
    const labels = node?.labels ?? {};
    const picked = selectorKeys.keys.filter((k) => labels[k] !== undefined).map((k) => [k, labels[k]!]);
    return picked.length === 0 ? node?.namespace ?? 'default' : `${node?.namespace ?? 'default'}\u0000${JSON.stringify(picked)}`;
  };
  const onNode = (info: NodeInfo, auth: StreamAuthentication): boolean => {
    const candidate = registry.connect(info, auth.identity, auth.problem);
    if (!candidate) return false;
    const registered = registry.registered(watcher.resources).find((w) => w.id === info.id && w.identity === auth.identity?.uri);
    if (registered) {
      log('info', `registered ${info.id} into WorkloadGroup ${info.namespace}/${registered.group} as ${registered.identity}`);
      for (const w of registered.warnings) log('warn', `${info.id}: ${w}`);
    } else {
      const refused = registry.refused(watcher.resources).find((w) => w.id === info.id && w.identity === auth.identity?.uri);
      log('warn', `not registering ${info.id} as an endpoint (it still gets config): ${refused?.reason ?? 'unknown'}`);
    }
    return true;
  };
  const ads = new AdsServer({ cache, translationKey, trace, onNode, onNodeGone: (info, auth) => registry.disconnect(info.id, auth.identity) });

  await watcher.start();
  const serverOptions = { 'grpc.keepalive_permit_without_calls': 1, 'grpc.max_send_message_length': 64 * 1024 * 1024 };
  // Two servers behind one port: what plaintext callers reach is what the plaintext server has.
  const plainServer = new grpc.Server(serverOptions);
  const tlsServer = options.ca ? new grpc.Server(serverOptions) : undefined;
  let hosted: HostedCa | undefined;
  let rateLimiter: RateLimiter | undefined;
  let listener: GrpcListener;
  try {
    if (options.ca && tlsServer) {
      hosted = await hostCa(tlsServer, options.ca);
      ads.addTo(tlsServer, { authenticate: streamAuthenticator(hosted.ca) });
    }
    ads.addTo(plainServer, plaintext ? {} : { refuse: 'plaintext ADS is off on this control plane: connect over TLS, verifying its certificate against the mesh root (createMesh({ ca: { root, token } }))' });
    if (options.ratelimit) rateLimiter = await hostRateLimit(tlsServer ? [plainServer, tlsServer] : [plainServer], options.ratelimit);
    listener = await listenGrpc({ host, port: options.port, plaintext: plainServer, ...(hosted && tlsServer && { tls: { server: tlsServer, credentials: hosted.credentials } }) });
  } catch (err) {
    watcher.close();
    plainServer.forceShutdown();
    tlsServer?.forceShutdown();
    await hosted?.close();
    await rateLimiter?.close();
    throw err;
  }
  const port = listener.port;

  const status = (): ControlPlaneStatus => ({
    generation: cache.generation,
    loads: watcher.loads,
    loadedAt: watcher.loadedAt,
    configError: watcher.error,
    translationErrors: cache.translationErrors(),
    clients: ads.connections.size,
    plaintext,
    refusedPlaintextStreams: ads.refusedStreams,
    workloads: registry.registered(watcher.resources),
    unregistered: registry.refused(watcher.resources),
    lastPush,
  });
  const syncz = () => [...ads.connections].map((c) => c.status());
  const configDump = (namespace: string) => cache.get(namespace).resources;

  let debug: { server: HttpServer; port: number } | undefined;
  const debugHost = options.debugHost ?? '127.0.0.1';
  if (options.debugPort !== undefined) debug = await startDebugServer({ syncz, status, configDump, configStatus }, options.debugPort, debugHost, options.debugTimeouts);
  const extras = [hosted && `CA (${hosted.ca.trustDomain}, TLS)`, rateLimiter && 'rate-limit service'].filter(Boolean);
  log('info', `serving ADS (${plaintext ? 'plaintext' : 'no plaintext'}${hosted ? ', TLS' : ''})${extras.length ? ` + ${extras.join(' + ')}` : ''} on ${host}:${port}${debug ? `, debug on ${debug.port}` : ''}`);

  let closing: Promise<void> | undefined;
  return {
    port,
    host,
    debugPort: debug?.port,
    debugHost: debug && debugHost,
    status,
    configStatus,
    syncz,
    configDump,
    ca: hosted?.ca,
    rateLimiter,
    rootCert: () => hosted?.ca.rootPem ?? noCa(),
    mintToken: (o) => (hosted ? hosted.ca.mintBootstrapToken(o) : noCa()),
    reload: () => watcher.reload(),
    close: () => (closing ??= (async () => {
      clearTimeout(pushTimer);
      watcher.close();
      staging.cancel();
      registry.close();
      ads.endAll();
      await listener.close();
      plainServer.forceShutdown();
      tlsServer?.forceShutdown();
      await hosted?.close();
      await rateLimiter?.close();
      if (debug) {
        debug.server.closeAllConnections();
        await new Promise<void>((resolve) => debug!.server.close(() => resolve()));
      }
    })()),
  };
}

export type { SyncStatus, NackRecord } from './ads-server.js';
export type { ConfigProblem } from './config-watcher.js';
export type { NodeInfo, RegisteredWorkload, RefusedRegistration } from './registry.js';
export type { ControlPlaneCaOptions, ControlPlaneRateLimitOptions } from './hosted-services.js';
export { CONTROL_PLANE_SERVICE_ACCOUNT } from './hosted-services.js';

/**
 * Who opened an ADS stream over TLS, by the CA's own rule (ca-service.ts):
 * a verified client certificate of the trust domain, else an
 * `authorization: Bearer` bootstrap token this CA minted.
 */
function streamAuthenticator(ca: CertificateAuthority): StreamAuthenticator {
  return async (call) => {
    try {
      // The CA's rule reads only the auth context and metadata, which a stream has too. A token is
      // verified, not redeemed: a stream reconnects with the same token, and it buys no certificate here.
      const { identity } = authenticateCaller(ca, call as unknown as Parameters<typeof authenticateCaller>[1], false);
      return { identity: parseSpiffeId(identity, { trustDomain: ca.trustDomain }) };
    } catch (err) {
      return { problem: (err as Error).message };
    }
  };
}

/** `namespace` or `namespace\0[[label, value]…]` → its parts. */
function parseTranslationKey(key: string): [string, Record<string, string>] {
  const i = key.indexOf('\u0000');
  if (i === -1) return [key, {}];
  return [key.slice(0, i), Object.fromEntries(JSON.parse(key.slice(i + 1)) as Array<[string, string]>)];
}

/** The label keys the config's workload selectors read (Gateway, RateLimit, EnvoyFilter, policies). */
function selectorLabelKeys(resources: readonly IstioResource[]): string[] {
  const keys = new Set<string>();
  const add = (labels: Record<string, unknown> | undefined) => {
    for (const k in labels) keys.add(k);
  };
  for (const r of resources) {
    const spec = r.spec as { selector?: Record<string, unknown> & { matchLabels?: Record<string, string> }; workloadSelector?: { labels?: Record<string, string>; matchLabels?: Record<string, string> } };
    if (r.kind === 'Gateway') add(spec.selector);
    // A Kubernetes Gateway selects its gateway workloads by Istio's gateway-name label (gateway-api/ingress.ts).
    if (r.kind === 'KubernetesGateway') keys.add(GATEWAY_NAME_LABEL);
    add(spec.selector?.matchLabels);
    add(spec.workloadSelector?.labels);
    add(spec.workloadSelector?.matchLabels);
  }
  return [...keys].sort();
}
