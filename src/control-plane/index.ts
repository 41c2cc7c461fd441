/**
 * `createControlPlane({ config, port })` (DESIGN.md §3, §6): watches a
 * directory of Istio YAML, translates it per namespace with the same code as
 * embedded mode, and serves it over ADS to many clients, pushing (debounced)
 * only what changed for each. Workloads that connect with instance metadata
 * become endpoints of their service. Optional debug HTTP server. On the same
 * gRPC port, when asked: the CA (Istio's CSR API; the port then also speaks
 * TLS) and the rate-limit service.
 */
import * as grpc from '@grpc/grpc-js';
import type { Server as HttpServer } from 'node:http';
import type { EnvoyResources } from '../config/envoy.js';
import type { IstioResource } from '../config/istio-types.js';
import { translate } from '../config/translate.js';
import { checkMeshConfig, type MeshConfigOptions } from '../config/mesh-config.js';
import { MeshError } from '../errors.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import type { CertificateAuthority, MintTokenOptions } from '../security/ca.js';
import { createTrace, type TraceFn } from '../xds/trace.js';
import { AdsServer, type SyncStatus } from './ads-server.js';
import { ConfigWatcher, type ConfigProblem } from './config-watcher.js';
import { startDebugServer } from './debug-server.js';
import { type ControlPlaneCaOptions, type ControlPlaneRateLimitOptions, type HostedCa, hostCa, hostRateLimit } from './hosted-services.js';
import { type GrpcListener, listenGrpc } from './listener.js';
import { WorkloadRegistry, type NodeInfo } from './registry.js';
import { SnapshotCache } from './snapshot-cache.js';

/** Options of {@link createControlPlane}. */
export interface ControlPlaneOptions {
  /** Directory of Istio YAML/JSON (top level, *.yaml, *.yml, *.json). */
  config: string;
  /** ADS port (0 picks a free one; the CLI default is 15010). */
  port: number;
  /** Bind address (default 0.0.0.0). */
  host?: string;
  /** Port of the debug HTTP server (/debug/syncz, /debug/status); off when undefined. */
  debugPort?: number;
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
  /** The current config error (the previous good config is still served). */
  configError: ConfigProblem | undefined;
  /** Translation errors by namespace. */
  translationErrors: Record<string, string>;
  clients: number;
  workloads: Array<Pick<NodeInfo, 'id' | 'name' | 'namespace' | 'labels' | 'address' | 'ports'>>;
  /** Responses sent by the last push. */
  lastPush: { at: string; responses: number; ms: number } | undefined;
}

/** A running control plane. */
export interface ControlPlane {
  /** The ADS port. */
  readonly port: number;
  /** The debug HTTP port, when enabled. */
  readonly debugPort: number | undefined;
  /** Config state, errors, registered workloads. */
  status(): ControlPlaneStatus;
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
  const host = options.host ?? '0.0.0.0';
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
    onError: (p) => log('error', `config rejected, still serving the previous config: ${p.message}`),
  });
  const registry = new WorkloadRegistry(options.registrationGraceMs ?? 10_000, schedulePush);
  // One resource array per generation, so the translation cache sees the same set for every namespace.
  let combined: { generation: number; resources: IstioResource[] } | undefined;
  const cache: SnapshotCache = new SnapshotCache((namespace, translations) => {
    if (combined?.generation !== cache.generation) {
      combined = { generation: cache.generation, resources: [...watcher.resources, ...registry.resources(watcher.resources)] };
    }
    const [ns, labels] = parseTranslationKey(namespace);
    const normalization = (watcher.meshConfig ?? meshConfig).pathNormalization?.normalization;
    return translate(combined.resources, { name: 'meshlet-control-plane', namespace: ns, labels, ...(normalization !== undefined && { pathNormalization: normalization }) }, translations);
  });
  // Label keys that some selector in the config reads; a node's translation depends on those labels only.
  let selectorKeys: { generation: number; keys: string[] } | undefined;
  const translationKey = (node: NodeInfo | undefined): string => {
    if (selectorKeys?.generation !== cache.generation) selectorKeys = { generation: cache.generation, keys: selectorLabelKeys(watcher.resources) };
    const labels = node?.labels ?? {};
    const picked = selectorKeys.keys.filter((k) => labels[k] !== undefined).map((k) => [k, labels[k]!]);
    return picked.length === 0 ? node?.namespace ?? 'default' : `${node?.namespace ?? 'default'}\u0000${JSON.stringify(picked)}`;
  };
  const ads = new AdsServer({
    cache,
    translationKey,
    trace,
    onNode: (info) => registry.connect(info),
    onNodeGone: (info) => registry.disconnect(info.id),
  });

  await watcher.start();
  const server = new grpc.Server({ 'grpc.keepalive_permit_without_calls': 1, 'grpc.max_send_message_length': 64 * 1024 * 1024 });
  ads.addTo(server);
  let hosted: HostedCa | undefined;
  let rateLimiter: RateLimiter | undefined;
  let listener: GrpcListener;
  try {
    if (options.ca) hosted = await hostCa(server, options.ca);
    if (options.ratelimit) rateLimiter = await hostRateLimit(server, options.ratelimit);
    listener = await listenGrpc(server, { host, port: options.port, ...(hosted && { tls: hosted.credentials }) });
  } catch (err) {
    watcher.close();
    server.forceShutdown();
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
    workloads: registry.list().map(({ id, name, namespace, labels, address, ports }) => ({ id, name, namespace, labels, address, ports })),
    lastPush,
  });
  const syncz = () => [...ads.connections].map((c) => c.status());
  const configDump = (namespace: string) => cache.get(namespace).resources;

  let debug: { server: HttpServer; port: number } | undefined;
  if (options.debugPort !== undefined) {
    debug = await startDebugServer({ syncz, status, configDump }, options.debugPort, host);
  }
  const extras = [hosted && `CA (${hosted.ca.trustDomain}, TLS)`, rateLimiter && 'rate-limit service'].filter(Boolean);
  log('info', `serving ADS${extras.length ? ` + ${extras.join(' + ')}` : ''} on ${host}:${port}${debug ? `, debug on ${debug.port}` : ''}`);

  let closing: Promise<void> | undefined;
  return {
    port,
    debugPort: debug?.port,
    status,
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
      registry.close();
      ads.endAll();
      await listener.close();
      server.forceShutdown();
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
export type { NodeInfo } from './registry.js';
export type { ControlPlaneCaOptions, ControlPlaneRateLimitOptions } from './hosted-services.js';
export { CONTROL_PLANE_SERVICE_ACCOUNT } from './hosted-services.js';

/** `namespace` or `namespace\0[[label, value]…]` → its parts. */
function parseTranslationKey(key: string): [string, Record<string, string>] {
  const i = key.indexOf('\u0000');
  if (i === -1) return [key, {}];
  return [key.slice(0, i), Object.fromEntries(JSON.parse(key.slice(i + 1)) as Array<[string, string]>)];
}

/** The label keys the config's workload selectors read (Gateway, RateLimit, EnvoyFilter, policies). */
function selectorLabelKeys(resources: readonly IstioResource[]): string[] {
  const keys = new Set<string>();
  for (const r of resources) {
    const spec = r.spec as { selector?: Record<string, unknown> & { matchLabels?: Record<string, string> }; workloadSelector?: { labels?: Record<string, string>; matchLabels?: Record<string, string> } };
    if (r.kind === 'Gateway') for (const k of Object.keys(spec.selector ?? {})) keys.add(k);
    for (const k of Object.keys(spec.selector?.matchLabels ?? {})) keys.add(k);
    for (const k of Object.keys(spec.workloadSelector?.labels ?? {})) keys.add(k);
    for (const k of Object.keys(spec.workloadSelector?.matchLabels ?? {})) keys.add(k);
  }
  return [...keys].sort();
}
