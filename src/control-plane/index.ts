/**
 * `createControlPlane({ config, port })` (DESIGN.md §3, §6): watches a
 * directory of Istio YAML, translates it per namespace with the same code as
 * embedded mode, and serves it over ADS to many clients, pushing (debounced)
 * only what changed for each. Workloads that connect with instance metadata
 * become endpoints of their service. Optional debug HTTP server.
 */
import * as grpc from '@grpc/grpc-js';
import type { Server as HttpServer } from 'node:http';
import type { EnvoyResources } from '../config/envoy.js';
import type { IstioResource } from '../config/istio-types.js';
import { translate } from '../config/translate.js';
import { createTrace, type TraceFn } from '../xds/trace.js';
import { AdsServer, type SyncStatus } from './ads-server.js';
import { ConfigWatcher, type ConfigProblem } from './config-watcher.js';
import { startDebugServer } from './debug-server.js';
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
  /** Stops serving: ends streams, closes the servers and every timer. */
  close(): Promise<void>;
}

/** Starts a control plane. Throws MeshConfigError when the config directory does not exist. */
export async function createControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const host = options.host ?? '0.0.0.0';
  const debounceMs = options.debounceMs ?? 100;
  const trace: TraceFn = createTrace('control-plane');
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
    return translate(combined.resources, { name: 'meshlet-control-plane', namespace, labels: {} }, translations);
  });
  const ads = new AdsServer({
    cache,
    trace,
    onNode: (info) => registry.connect(info),
    onNodeGone: (info) => registry.disconnect(info.id),
  });

  await watcher.start();
  const server = new grpc.Server({ 'grpc.keepalive_permit_without_calls': 1, 'grpc.max_send_message_length': 64 * 1024 * 1024 });
  ads.addTo(server);
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${options.port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
  } catch (err) {
    watcher.close();
    throw err;
  }

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
  log('info', `serving ADS on ${host}:${port}${debug ? `, debug on ${debug.port}` : ''}`);

  let closing: Promise<void> | undefined;
  return {
    port,
    debugPort: debug?.port,
    status,
    syncz,
    configDump,
    reload: () => watcher.reload(),
    close: () => (closing ??= (async () => {
      clearTimeout(pushTimer);
      watcher.close();
      registry.close();
      ads.endAll();
      server.forceShutdown();
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
