/**
 * The mesh object: one workload's view of the service mesh. It owns the
 * current snapshot (swapped atomically on apply), the outbound dispatcher and
 * everything that must be closed.
 */
import { fetch as undiciFetch, request as undiciRequest, type Dispatcher, type RequestInfo, type RequestInit, type Response } from 'undici';
import { loadDocuments, type ConfigSource } from './config/load.js';
import { parseResources } from './config/resources.js';
import { translate, type ProxyInfo } from './config/translate.js';
import type { EnvoyResources } from './config/envoy.js';
import { defaultRandom, type RandomSource } from './core/random.js';
import { compileSnapshot, emptySnapshot, type Snapshot } from './core/snapshot.js';
import { MeshDispatcher, type OutboundTrafficPolicy } from './http/dispatcher.js';
import type { LocalReplyMode } from './http/local-reply.js';

/** The workload this mesh instance runs as (its identity and labels). */
export interface WorkloadOptions {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  serviceAccount?: string;
}

/** Options of {@link createMesh}. */
export interface MeshOptions {
  /** Who this process is. Default: name `unknown` in namespace `default`. */
  workload?: WorkloadOptions;
  /** Embedded mode: a file, a directory, a YAML string or an array of resource objects. */
  config?: ConfigSource;
  /** Unknown hosts pass through (ALLOW_ANY, the default, as Istio) or fail with 502 NR. */
  outboundTrafficPolicy?: OutboundTrafficPolicy;
  /** Local replies as Responses (default, like a sidecar) or thrown MeshErrors. */
  localReplies?: LocalReplyMode;
  /** The random source for weights, faults, load balancing and jitter; seed it in tests. */
  random?: RandomSource;
  /** How long close() lets in-flight calls finish, in ms (default 1000). */
  closeTimeout?: number;
}

/** A workload's mesh: outbound dispatcher, fetch, config and lifecycle. */
export class Mesh {
  /** An undici Dispatcher: `undici.request(url, { dispatcher: mesh.dispatcher })`. */
  readonly dispatcher: MeshDispatcher;
  /** The workload as the translator sees it. */
  readonly proxy: ProxyInfo;
  private current: Snapshot = emptySnapshot;
  private generation = 0;
  private readonly closeTimeout: number;
  private closing: Promise<void> | undefined;

  /** @internal use {@link createMesh} */
  constructor(options: MeshOptions) {
    const w = options.workload;
    this.proxy = {
      name: w?.name ?? 'unknown',
      namespace: w?.namespace ?? 'default',
      labels: w?.labels ?? {},
      ...(w?.serviceAccount !== undefined && { serviceAccount: w.serviceAccount }),
    };
    this.closeTimeout = options.closeTimeout ?? 1000;
    this.dispatcher = new MeshDispatcher(this, {
      random: options.random ?? defaultRandom,
      localReplies: options.localReplies ?? 'response',
      outboundTrafficPolicy: options.outboundTrafficPolicy ?? 'ALLOW_ANY',
    });
    this.random = options.random ?? defaultRandom;
  }

  private readonly random: RandomSource;

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
    const resources = parseResources(await loadDocuments(config));
    this.applyEnvoy(translate(resources, this.proxy), `embedded-${++this.generation}`);
  }

  /** Installs a set of Envoy resources (from the translator or an xDS stream); throws when unusable. */
  applyEnvoy(resources: EnvoyResources, version: string): void {
    this.current = compileSnapshot(resources, version, { previous: this.current, random: this.random });
  }

  /** WHATWG fetch through the mesh; resolves to a Response, local replies included. */
  fetch(input: RequestInfo, init?: RequestInit): Promise<Response> {
    return undiciFetch(input, { ...init, dispatcher: this.dispatcher });
  }

  /** undici.request through the mesh. */
  request(url: string | URL, options?: Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & { method?: Dispatcher.HttpMethod }): Promise<Dispatcher.ResponseData<unknown>> {
    return undiciRequest(url, { ...options, dispatcher: this.dispatcher } as Parameters<typeof undiciRequest>[1]);
  }

  /** The Envoy resources in force, as plain JSON (like Envoy's /config_dump). */
  configDump(): { version: string } & EnvoyResources {
    const s = this.current;
    return structuredClone({ version: s.version, ...s.resources });
  }

  /** Stops taking requests, lets in-flight ones finish within closeTimeout, then aborts them. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.dispatcher.shutdown(this.closeTimeout);
    return this.closing;
  }
}

/** Creates a mesh for this workload and loads its configuration. */
export async function createMesh(options: MeshOptions = {}): Promise<Mesh> {
  const mesh = new Mesh(options);
  if (options.config !== undefined) await mesh.apply(options.config);
  return mesh;
}
