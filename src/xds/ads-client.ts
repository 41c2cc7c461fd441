/**
 * An ADS client, State-of-the-World (Envoy v3 `StreamAggregatedResources`,
 * the default) or Delta (`DeltaAggregatedResources`, with `apiType:
 * 'DELTA_GRPC'` or a bootstrap server feature `delta_grpc`; see ads-wire.ts),
 * subscribing as gRPC's xDS client does (gRFC A27, see subscriptions.ts):
 * LDS wildcard or by name (plus the inbound listeners of the servers the
 * workload runs), then RDS, CDS and EDS by the names the resources before
 * them reference — never CDS wildcard, which istiod's grpc generator answers
 * with nothing. Each accepted update is handed to the
 * consumer as one consistent EnvoyResources set; a consumer that throws
 * rejects it (NACK with the previous version and error_detail) and the last
 * accepted set stays. Reconnects with jittered exponential backoff; the last
 * good set keeps serving meanwhile.
 */
import * as grpc from '@grpc/grpc-js';
import type { EnvoyResources } from '../config/envoy.js';
import { Backoff } from './backoff.js';
import { resolveBootstrap, type XdsBootstrap } from './bootstrap.js';
import { bootstrapChannelCredentials } from './channel-credentials.js';
import { LastKnownGoodWriter, readLastKnownGood } from './last-known-good.js';
import { buildNode, mergeNode, type XdsNode } from './node.js';
import { loadGrpcPackage } from './protos.js';
import { XDS_TYPES, type XdsType } from './resources.js';
import { decodeUpdate, type TypeState } from './ads-decode.js';
import { runSliced } from '../core/slices.js';
import { buildRequest, readResponse, replacesAll, type AdsApiType, type AdsUpdate } from './ads-wire.js';
import { INBOUND_LISTENER_PREFIX, neededNames, toEnvoyResources, withoutWarmingClusters } from './subscriptions.js';
import { createTrace, type TraceFn } from './trace.js';
import { MeshConfigError } from '../errors.js';

import type { AdsClientOptions, AdsClientStatus, XdsNack, XdsTypeStatus } from './ads-types.js';

export type { AdsClientOptions, AdsClientStatus, XdsNack, XdsTypeStatus } from './ads-types.js';

type AdsStream = grpc.ClientDuplexStream<Record<string, unknown>, unknown>;

/** The ADS client. Create with {@link createAdsClient}. */
export class AdsClient {
  private readonly options: AdsClientOptions;
  /** The ADS protocol of this client. */
  readonly apiType: AdsApiType;
  private readonly bootstrap: XdsBootstrap;
  private readonly node: XdsNode;
  private readonly trace: TraceFn;
  private readonly backoff: Backoff;
  private readonly states = new Map<string, TypeState>();
  private readonly lkg: LastKnownGoodWriter | undefined;
  private grpcClient: grpc.Client | undefined;
  private stream: AdsStream | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private fetchTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** the response being handled; the next waits for it */
  private queue: Promise<void> = Promise.resolve();
  private secure = false;
  private connected = false;
  private reconnects = 0;
  private deliveredVersion = '';
  private lastNack: XdsNack | undefined;
  private readyResolve!: () => void;
  private readonly readyPromise: Promise<void>;
  private readonly inboundNames: readonly string[];
  /** LDS started wildcard but inbound listeners are wanted: switch to names once the outbound ones are known. */
  private pinOutbound: boolean;

  constructor(options: AdsClientOptions) {
    this.options = options;
    const bootstrap = resolveBootstrap(options, options.env);
    if (!bootstrap) throw new MeshConfigError('XdsBootstrap', 'xds', 'server', 'no xDS server: pass { server } or set GRPC_XDS_BOOTSTRAP / MESHLET_XDS');
    this.bootstrap = bootstrap;
    this.apiType = options.apiType ?? (bootstrap.serverFeatures.includes('delta_grpc') ? 'DELTA_GRPC' : 'GRPC');
    this.node = mergeNode(buildNode(options.workload), bootstrap.node);
    this.trace = createTrace('xds', options.trace);
    this.backoff = new Backoff(options.backoff);
    this.readyPromise = new Promise((resolve) => { this.readyResolve = resolve; });
    const outbound = options.listenerNames ?? [];
    this.inboundNames = options.inboundListenerNames ?? [];
    // Without outbound names: wildcard LDS, which istiod answers; pinned below once inbound names must join it.
    this.pinOutbound = outbound.length === 0 && this.inboundNames.length > 0;
    for (const type of XDS_TYPES) {
      const wildcard = type.key === 'listeners' && outbound.length === 0;
      const names = new Set(type.key === 'listeners' && !wildcard ? [...outbound, ...this.inboundNames] : []);
      this.states.set(type.typeUrl, { type, wildcard, names, version: '', nonce: '', ackPending: false, resources: new Map(), raw: new Map(), versions: new Map(), sentNames: undefined });
    }
    if (options.lastKnownGood) {
      this.lkg = new LastKnownGoodWriter(options.lastKnownGood, (err) => this.trace(`last-known-good write failed: ${err.message}`));
    }
  }

  /** Loads the last-known-good file (if any) and opens the stream. */
  start(): void {
    if (this.options.lastKnownGood) {
      const saved = readLastKnownGood(this.options.lastKnownGood);
      if (saved) {
        this.enqueue(async () => {
          try {
            await this.options.onResources(saved.resources, `lkg:${saved.version}`);
            this.deliveredVersion = `lkg:${saved.version}`;
            this.trace(`serving last-known-good ${saved.version} from ${this.options.lastKnownGood}`);
            this.readyResolve();
          } catch (err) {
            this.trace(`last-known-good rejected: ${(err as Error).message}`);
          }
        });
      }
    }
    const pkg = loadGrpcPackage(['envoy/service/discovery/v3/ads.proto']) as unknown as {
      envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: grpc.ServiceClientConstructor } } } };
    };
    const Ads = pkg.envoy.service.discovery.v3.AggregatedDiscoveryService;
    const creds = this.options.credentials ?? bootstrapChannelCredentials(this.bootstrap);
    // A bearer token is a credential: sent only on channels the caller or the bootstrap made TLS.
    this.secure = this.options.credentials !== undefined || this.bootstrap.channelCreds === 'tls';
    if (this.options.token !== undefined && !this.secure) this.trace('not sending the bootstrap token: the ADS channel is plaintext');
    this.grpcClient = new Ads(this.bootstrap.server, creds, { 'grpc.keepalive_time_ms': 30_000, 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
    this.connect();
  }

  /** Resolves once a first set was delivered (from the server, or the last-known-good file). */
  ready(): Promise<void> {
    return this.readyPromise;
  }

  /** RDS/EDS names referenced by the accepted listeners/clusters that have not arrived. */
  missing(): string[] {
    const out: string[] = [];
    for (const state of this.states.values()) {
      if (state.wildcard) continue;
      if (state.type.key === 'listeners') continue;
      for (const name of state.names) if (!state.resources.has(name)) out.push(`${state.type.kind} ${name}`);
    }
    return out;
  }

  /** Versions, nonces, subscriptions, last NACK. */
  status(): AdsClientStatus {
    const types = {} as Record<XdsType['short'], XdsTypeStatus>;
    for (const s of this.states.values()) {
      types[s.type.short] = { version: s.version, nonce: s.nonce, subscribed: s.wildcard ? '*' : [...s.names].sort(), count: s.resources.size };
    }
    return {
      server: this.bootstrap.server, node: this.node.id, connected: this.connected, reconnects: this.reconnects,
      version: this.deliveredVersion, types, lastNack: this.lastNack, missing: this.missing(),
    };
  }

  /** Ends the stream, the channel and every timer; waits for a pending last-known-good write. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.fetchTimer);
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
    this.grpcClient?.close();
    await this.lkg?.flush();
  }

  private connect(): void {
    if (this.closed || !this.grpcClient) return;
    const client = this.grpcClient as grpc.Client & Record<'StreamAggregatedResources' | 'DeltaAggregatedResources', (metadata?: grpc.Metadata) => AdsStream>;
    const metadata = new grpc.Metadata();
    if (this.options.token !== undefined && this.secure) metadata.set('authorization', `Bearer ${this.options.token}`);
    const stream = this.apiType === 'DELTA_GRPC' ? client.DeltaAggregatedResources(metadata) : client.StreamAggregatedResources(metadata);
    this.stream = stream;
    this.trace(`${this.apiType === 'DELTA_GRPC' ? 'delta ' : ''}stream opened to ${this.bootstrap.server} as ${this.node.id}`);
    let ended = false;
    const onEnd = (reason: string) => {
      if (ended) return;
      ended = true;
      if (this.stream === stream) this.stream = undefined;
      this.connected = false;
      if (this.closed) return;
      const delay = this.backoff.next();
      this.trace(`stream ended (${reason}); reconnecting in ${delay} ms`);
      this.retryTimer = setTimeout(() => { this.reconnects++; this.connect(); }, delay);
      this.retryTimer.unref();
    };
    stream.on('data', (res: unknown) => {
      const update = readResponse(this.apiType, res);
      this.enqueue(() => this.onResponse(stream, update));
    });
    stream.on('error', (err: grpc.ServiceError) => onEnd(`${grpc.status[err.code] ?? err.code}: ${err.details}`));
    stream.on('status', (s: grpc.StatusObject) => onEnd(`${grpc.status[s.code] ?? s.code}: ${s.details}`));
    stream.on('end', () => onEnd('server closed the stream'));
    // First request carries the node; versions (if any) tell the server what we already run.
    let first = true;
    for (const state of this.states.values()) {
      state.sentNames = undefined;
      state.nonce = '';
      state.ackPending = false;
      if (state.wildcard || state.names.size > 0) {
        this.send(state, undefined, first);
        first = false;
      }
    }
  }

  private send(state: TypeState, errorDetail: string | undefined, withNode = false): void {
    this.stream?.write(buildRequest(this.apiType, state, withNode ? this.node : undefined, errorDetail));
  }

  /**
   * Responses are handled one at a time, in order: decoding and installing a
   * large one spans event-loop turns (in slices), and the next must see the
   * state it left.
   */
  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(task).catch((err: Error) => this.trace(`response handling failed: ${err.message}`));
  }

  private async onResponse(stream: AdsStream, res: AdsUpdate): Promise<void> {
    if (stream !== this.stream || this.closed) return;
    if (!this.connected) {
      this.connected = true;
      this.backoff.reset();
    }
    const state = this.states.get(res.typeUrl);
    if (!state) {
      this.trace(`ignoring response of unknown type ${res.typeUrl}`);
      return;
    }
    const version = res.version;
    state.nonce = res.nonce;
    state.ackPending = true;
    this.trace(`${state.type.short} version=${version} nonce=${state.nonce} resources=${res.resources.length}${res.removed.length ? ` removed=${res.removed.length}` : ''}`);

    const decoded = await runSliced(decodeUpdate(state, res));
    // A reconnect meanwhile asks for everything again on the new stream; this answer is moot.
    if (stream !== this.stream || this.closed) return;
    if (typeof decoded === 'string') return this.nack(state, version, decoded);

    const candidate = this.candidate(state, decoded.resources, res.removed);
    const complete = this.applySubscriptions(candidate, false);
    if (complete) {
      const resources = toEnvoyResources(candidate);
      const combined = this.combinedVersion(state, version);
      try {
        await this.options.onResources(resources, combined);
      } catch (err) {
        if (stream !== this.stream || this.closed) return;
        return this.nack(state, version, (err as Error).message);
      }
      // Installed: commit even if the stream went meanwhile, so the state matches what serves.
      this.commit(state, version, candidate.get(state.type.typeUrl)!, decoded.versions, res.removed, decoded.raw);
      this.delivered(resources, combined);
    } else {
      // Individually valid but waiting for resources it references: ACK it and keep serving the old set.
      this.commit(state, version, candidate.get(state.type.typeUrl)!, decoded.versions, res.removed, decoded.raw);
      this.armFetchTimer();
    }
    if (stream !== this.stream || this.closed) return;
    this.send(state, undefined);
    if (state.type.key === 'listeners') this.pinListeners(state);
    this.applySubscriptions(this.currentMaps(), true);
  }

  /**
   * istiod answers wildcard LDS with outbound listeners only, and a named
   * request with exactly the names (pilot/pkg/networking/grpcgen/lds.go):
   * to add the inbound listeners, name the outbound listeners the wildcard
   * answer held. Services added later then need the `listenerNames` option
   * or a restart (SotW cannot mix wildcard and names).
   */
  private pinListeners(state: TypeState): void {
    if (!this.pinOutbound || !state.wildcard) return;
    this.pinOutbound = false;
    const outbound = [...state.resources.keys()].filter((n) => !n.startsWith(INBOUND_LISTENER_PREFIX));
    state.wildcard = false;
    state.names = new Set([...outbound, ...this.inboundNames]);
    this.trace(`LDS: naming ${outbound.length} outbound and ${this.inboundNames.length} inbound listeners`);
    this.send(state, undefined);
  }


  /** The maps every type would have if this response were accepted. */
  private candidate(state: TypeState, decoded: Map<string, Record<string, unknown>>, removed: readonly string[]): Map<string, Map<string, Record<string, unknown>>> {
    const maps = this.currentMaps();
    let next: Map<string, Record<string, unknown>>;
    if (replacesAll(this.apiType, state.type)) next = decoded;
    else {
      next = new Map(state.resources);
      for (const name of removed) next.delete(name);
      for (const [name, r] of decoded) next.set(name, r);
    }
    maps.set(state.type.typeUrl, next);
    return maps;
  }

  private currentMaps(): Map<string, Map<string, Record<string, unknown>>> {
    const maps = new Map<string, Map<string, Record<string, unknown>>>();
    for (const s of this.states.values()) maps.set(s.type.typeUrl, s.resources);
    return maps;
  }

  /**
   * Computes the RDS/EDS names `maps` need. With `update`, adopts them (drops
   * resources no longer named, sends changed subscriptions). Returns whether
   * every needed resource is present.
   */
  private applySubscriptions(maps: Map<string, Map<string, Record<string, unknown>>>, update: boolean): boolean {
    let complete = true;
    const [lds, rds, cds, eds] = XDS_TYPES.map((t) => t.typeUrl) as [string, string, string, string];
    const needed = neededNames(maps.get(lds)!.values() as never, maps.get(rds)!.values() as never, maps.get(cds)!.values() as never);
    const needs: Array<[TypeState, string[]]> = [
      [this.states.get(rds)!, needed.routes],
      [this.states.get(cds)!, needed.clusters],
      [this.states.get(eds)!, needed.endpoints],
    ];
    for (const [state, names] of needs) {
      const have = maps.get(state.type.typeUrl)!;
      for (const n of names) if (!have.has(n)) complete = false;
      if (!update) continue;
      // An empty CDS request could read as wildcard (the xDS spec's legacy rule): stay subscribed to the last
      // names instead, keeping their resources, as the server keeps sending them. For RDS and EDS an empty
      // request unsubscribes (istiod's shouldUnsubscribe), sent only when something was subscribed.
      if (names.length === 0 && state.type.key === 'clusters') continue;
      state.names = new Set(names);
      for (const n of [...state.resources.keys()]) if (!state.names.has(n)) { state.resources.delete(n); state.versions.delete(n); }
      const key = names.join('\0');
      if (key !== state.sentNames && (names.length > 0 || state.sentNames)) this.send(state, undefined);
    }
    return complete;
  }

  private commit(state: TypeState, version: string, resources: Map<string, Record<string, unknown>>, versions: Map<string, string>, removed: readonly string[], raw: Map<string, Uint8Array>): void {
    state.version = version;
    // The bytes of what is now held: this answer's, else (a resource it did not carry) the ones before.
    const kept = new Map<string, Uint8Array>();
    for (const [name, resource] of resources) {
      const b = raw.get(name) ?? (resource === state.resources.get(name) ? state.raw.get(name) : undefined);
      if (b) kept.set(name, b);
    }
    state.raw = kept;
    state.resources = resources;
    // Delta: the per-resource versions a reconnect announces in initial_resource_versions
    if (this.apiType === 'GRPC') return;
    for (const n of removed) state.versions.delete(n);
    for (const [n, v] of versions) state.versions.set(n, v);
  }

  private delivered(resources: EnvoyResources, version: string): void {
    clearTimeout(this.fetchTimer);
    this.fetchTimer = undefined;
    this.deliveredVersion = version;
    this.lkg?.save(resources, version);
    this.readyResolve();
  }

  /** After a bounded wait, hand over an incomplete set: the consumer fails calls to what is missing (NC). */
  private armFetchTimer(): void {
    if (this.fetchTimer) return;
    this.fetchTimer = setTimeout(() => this.enqueue(async () => {
      this.fetchTimer = undefined;
      const resources = withoutWarmingClusters(toEnvoyResources(this.currentMaps()));
      const version = this.combinedVersion();
      this.trace(`delivering without ${this.missing().join(', ')}`);
      try {
        await this.options.onResources(resources, version);
        this.delivered(resources, version);
      } catch (err) {
        this.trace(`incomplete set rejected: ${(err as Error).message}`);
      }
    }), this.options.initialFetchTimeoutMs ?? 5000);
    this.fetchTimer.unref();
  }

  private nack(state: TypeState, rejectedVersion: string, message: string): void {
    this.lastNack = { typeUrl: state.type.typeUrl, rejectedVersion, version: state.version, nonce: state.nonce, message, at: new Date() };
    this.trace(`NACK ${state.type.short} version=${rejectedVersion} nonce=${state.nonce}: ${message}`);
    this.send(state, message);
    this.options.onNack?.(this.lastNack);
  }

  private combinedVersion(changed?: TypeState, version?: string): string {
    const parts: string[] = [];
    for (const s of this.states.values()) parts.push(`${s.type.short}=${s === changed ? version : s.version}`);
    return parts.join(',');
  }
}

/** Creates and starts an ADS client. */
export function createAdsClient(options: AdsClientOptions): AdsClient {
  const client = new AdsClient(options);
  client.start();
  return client;
}
