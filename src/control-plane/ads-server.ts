/**
 * The ADS State-of-the-World server: one {@link AdsConnection} per stream,
 * tracking per type the subscription, the last sent version and nonce, the
 * ACKed version and the last NACK. Responses are prepared per (namespace,
 * type, subscription) by the snapshot cache and written as bytes.
 */
import * as grpc from '@grpc/grpc-js';
import { XDS_TYPES, XDS_TYPE_BY_URL, type XdsType } from '../xds/resources.js';
import { loadGrpcPackage } from '../xds/protos.js';
import { withNonce, type PreparedResponse, type SnapshotCache } from './snapshot-cache.js';
import { nodeInfoOf, type NodeInfo } from './registry.js';
import type { TraceFn } from '../xds/trace.js';
import type { SpiffeId } from '../security/identity.js';

/** A NACK a client sent. */
export interface NackRecord {
  typeUrl: string;
  version: string;
  nonce: string;
  message: string;
  at: string;
}

interface TypeSubscription {
  /** `*` or sorted names joined by NUL */
  key: string;
  names: string[];
  sentVersion: string | undefined;
  /** what the client last got, to diff RDS/EDS pushes against */
  sent: PreparedResponse | undefined;
  sentNonce: string | undefined;
  ackedVersion: string | undefined;
}

/** What /debug/syncz shows for one stream. */
export interface SyncStatus {
  id: number;
  node: string;
  namespace: string;
  /** The SPIFFE id the stream proved (client certificate or bootstrap token), when it did. */
  identity?: string;
  connectedAt: string;
  types: Record<string, { subscribed: number | '*'; sent?: string; acked?: string; nonce?: string }>;
  lastNack: NackRecord | undefined;
}

interface DiscoveryRequest {
  version_info?: string;
  node?: { id?: string; metadata?: unknown };
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

type AdsCall = grpc.ServerDuplexStream<DiscoveryRequest, Buffer>;

/** Says who opened a stream; never throws (a failure is a `problem`). */
export type StreamAuthenticator = (call: AdsCall) => StreamAuthentication | Promise<StreamAuthentication>;

/** Who a stream proved to be: an identity, or why it has none. */
export interface StreamAuthentication {
  identity?: SpiffeId;
  /** Why a presented credential (token, certificate) was not accepted. */
  problem?: string;
}

/** Hooks the server calls into the control plane. */
export interface AdsServerHooks {
  cache: SnapshotCache;
  /** A node identified itself on a stream authenticated as `auth`; returns whether it is a registration candidate. */
  onNode(info: NodeInfo, auth: StreamAuthentication): boolean;
  /** A registration candidate's stream (authenticated as `auth`) ended. */
  onNodeGone(info: NodeInfo, auth: StreamAuthentication): void;
  trace: TraceFn;
  /**
   * The translation a node gets: by default its namespace; the control plane
   * adds the labels that config selectors look at (Gateway selector,
   * workloadSelector), so a gateway gets its listeners and a selected workload
   * its policies.
   */
  translationKey?(info: NodeInfo | undefined): string;
}

/** One ADS stream. */
export class AdsConnection {
  readonly connectedAt = new Date().toISOString();
  node: NodeInfo | undefined;
  registered = false;
  lastNack: NackRecord | undefined;
  private readonly subs = new Map<string, TypeSubscription>();
  private nonce = 0;

  /** Who the stream proved to be; settled before its first request is handled. */
  auth: StreamAuthentication = {};

  constructor(readonly id: number, private readonly call: AdsCall, private readonly hooks: AdsServerHooks) {}

  /** The namespace translations for this client come from. */
  get namespace(): string {
    return this.node?.namespace ?? 'default';
  }

  /** Handles one DiscoveryRequest. */
  onRequest(req: DiscoveryRequest): void {
    if (!this.node) {
      const node = nodeInfoOf(req.node);
      const mismatch = identityMismatch(node, this.auth.identity);
      if (mismatch) {
        // As istiod's checkConnectionIdentity: an authenticated stream may not speak for another namespace or account.
        this.hooks.trace(`stream ${this.id}: node ${node.id} refused: ${mismatch}`);
        throw Object.assign(new Error(mismatch), { code: grpc.status.PERMISSION_DENIED });
      }
      this.node = node;
      this.registered = this.hooks.onNode(this.node, this.auth);
      this.hooks.trace(`stream ${this.id}: node ${this.node.id} ns=${this.node.namespace}${this.auth.identity ? ` as ${this.auth.identity.uri}` : ''}${this.registered ? ' (registration candidate)' : ''}`);
    }
    const type = XDS_TYPE_BY_URL.get(req.type_url ?? '');
    if (!type) {
      this.hooks.trace(`stream ${this.id}: unsupported type ${req.type_url}`);
      return;
    }
    let sub = this.subs.get(type.typeUrl);
    const nonce = req.response_nonce ?? '';
    if (nonce) {
      // a request answering an older response: the client will send another for the newest
      if (!sub || nonce !== sub.sentNonce) return;
      if (req.error_detail) {
        this.lastNack = { typeUrl: type.typeUrl, version: sub.sentVersion ?? '', nonce, message: req.error_detail.message ?? '', at: new Date().toISOString() };
        sub.sent = undefined; // the client kept its older set: next push sends everything
        this.hooks.trace(`stream ${this.id}: NACK ${type.short} ${sub.sentVersion}: ${req.error_detail.message}`);
      } else {
        sub.ackedVersion = req.version_info ?? '';
      }
    }
    const requested = req.resource_names ?? [];
    const wildcard = requested.includes('*') || (requested.length === 0 && (type.key === 'listeners' || type.key === 'clusters'));
    const names = wildcard ? [] : [...new Set(requested)].sort();
    const key = wildcard ? '*' : names.join('\0');
    if (!sub) {
      sub = { key, names, sentVersion: undefined, sent: undefined, sentNonce: undefined, ackedVersion: undefined };
      this.subs.set(type.typeUrl, sub);
    }
    const changed = sub.key !== key;
    sub.key = key;
    sub.names = names;
    // SotW: answer every initial request, and every subscription change
    if (!nonce || changed) this.push(type, true);
  }

  /** Sends `type` when its content for this client changed (or always, with `force`). */
  push(type: XdsType, force = false): boolean {
    const sub = this.subs.get(type.typeUrl);
    if (!sub) return false;
    // a forced push (new stream, new subscription) sends everything; a change push only what changed
    const key = this.hooks.translationKey ? this.hooks.translationKey(this.node) : this.namespace;
    const prepared = this.hooks.cache.get(key).response(type, sub.key, sub.names, force ? undefined : sub.sent);
    if (!force && prepared.version === sub.sentVersion) return false;
    sub.sent = prepared;
    const nonce = String(++this.nonce);
    sub.sentVersion = prepared.version;
    sub.sentNonce = nonce;
    this.call.write(withNonce(prepared.body, nonce));
    return true;
  }

  /** Pushes every subscribed type whose content changed, in {@link PUSH_ORDER}; returns how many responses were sent. */
  pushChanged(): number {
    let sent = 0;
    for (const type of PUSH_ORDER) if (this.push(type)) sent++;
    return sent;
  }

  /** Ends the stream (control plane shutdown). */
  end(): void {
    this.call.end();
  }

  /** Status for /debug/syncz. */
  status(): SyncStatus {
    const types: SyncStatus['types'] = {};
    for (const [url, s] of this.subs) {
      const t = XDS_TYPE_BY_URL.get(url)!;
      types[t.short] = {
        subscribed: s.key === '*' ? '*' : s.names.length,
        ...(s.sentVersion !== undefined && { sent: s.sentVersion }),
        ...(s.ackedVersion !== undefined && { acked: s.ackedVersion }),
        ...(s.sentNonce !== undefined && { nonce: s.sentNonce }),
      };
    }
    return {
      id: this.id, node: this.node?.id ?? '', namespace: this.namespace, ...(this.auth.identity && { identity: this.auth.identity.uri }),
      connectedAt: this.connectedAt, types, lastNack: this.lastNack,
    };
  }
}

/**
 * Envoy's ADS ordering, make before break: clusters, then endpoints, then listeners, then routes — so a
 * route never names a cluster the client has not got yet.
 */
const PUSH_ORDER: readonly XdsType[] = ['CDS', 'EDS', 'LDS', 'RDS'].map((short) => XDS_TYPES.find((t) => t.short === short)!);

/** The gRPC service: tracks connections, pushes on demand. */
export class AdsServer {
  readonly connections = new Set<AdsConnection>();
  /** Streams refused because they came over plaintext where TLS is required. */
  refusedStreams = 0;
  private nextId = 0;

  constructor(private readonly hooks: AdsServerHooks) {}

  /**
   * Adds the ADS service to a grpc-js server. `authenticate` says who is
   * calling, once per stream (absent: every stream is anonymous, as on a
   * plaintext port). With `refuse`, the server answers every stream with
   * UNAUTHENTICATED and that reason instead (the plaintext side of a control
   * plane whose ADS requires TLS).
   */
  addTo(server: grpc.Server, options: { refuse?: string; authenticate?: StreamAuthenticator } = {}): void {
    const definition = adsDefinition();
    // Responses are pre-encoded bytes: swap the serializer of the SotW method.
    const sotw = { ...definition.StreamAggregatedResources!, responseSerialize: (b: Buffer) => b };
    const refuse = options.refuse;
    const refused = (call: grpc.ServerDuplexStream<unknown, unknown>) => {
      this.refusedStreams++;
      this.hooks.trace(`refused a plaintext ADS stream from ${call.getPeer()}: ${refuse}`);
      call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: refuse });
    };
    server.addService({ ...definition, StreamAggregatedResources: sotw }, {
      StreamAggregatedResources: refuse !== undefined ? refused : (call: AdsCall) => this.onStream(call, options.authenticate),
      DeltaAggregatedResources: refuse !== undefined ? refused : (call: grpc.ServerDuplexStream<unknown, unknown>) => {
        call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'meshlet serves State-of-the-World ADS only' });
      },
    });
  }


  /** Pushes changed types to every client; returns the number of responses sent. */
  pushAll(): number {
    let sent = 0;
    for (const c of this.connections) sent += c.pushChanged();
    return sent;
  }

  /** Ends every stream. */
  endAll(): void {
    for (const c of this.connections) c.end();
  }

  private onStream(call: AdsCall, authenticate: StreamAuthenticator | undefined): void {
    const conn = new AdsConnection(++this.nextId, call, this.hooks);
    this.connections.add(conn);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      this.connections.delete(conn);
      if (conn.registered && conn.node) this.hooks.onNodeGone(conn.node, conn.auth);
      this.hooks.trace(`stream ${conn.id} ended`);
    };
    const handle = (req: DiscoveryRequest) => {
      try {
        conn.onRequest(req);
      } catch (err) {
        this.hooks.trace(`stream ${conn.id}: ${(err as Error).message}`);
        const code = (err as { code?: unknown }).code;
        call.emit('error', { code: typeof code === 'number' ? code : grpc.status.INTERNAL, details: (err as Error).message });
      }
    };
    // Requests wait (a microtask, or an async authenticator) until the stream's identity is settled.
    let waiting: DiscoveryRequest[] | undefined = [];
    call.on('data', (req: DiscoveryRequest) => (waiting ? waiting.push(req) : handle(req)));
    void Promise.resolve(authenticate?.(call) ?? {}).catch((err: Error) => ({ problem: err.message })).then((auth) => {
      conn.auth = auth;
      const queued = waiting!;
      waiting = undefined;
      for (const req of queued) if (!done) handle(req);
    });
    call.on('end', () => { finish(); call.end(); });
    call.on('error', finish);
    call.on('close', finish);
    call.on('cancelled', finish);
  }
}

function adsDefinition(): grpc.ServiceDefinition {
  const pkg = loadGrpcPackage(['envoy/service/discovery/v3/ads.proto']) as unknown as {
    envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: grpc.ServiceClientConstructor } } } };
  };
  return pkg.envoy.service.discovery.v3.AggregatedDiscoveryService.service;
}

/**
 * Why an authenticated stream's node may not be served (istiod's
 * checkConnectionIdentity): its namespace, or its SERVICE_ACCOUNT when it
 * names one, is not the identity's. Undefined when it may be.
 */
function identityMismatch(node: NodeInfo, identity: SpiffeId | undefined): string | undefined {
  if (!identity) return undefined;
  if (node.namespace !== identity.namespace) return `authenticated as ${identity.uri}, but the node claims namespace ${node.namespace}`;
  if (node.serviceAccount !== undefined && node.serviceAccount !== identity.serviceAccount) {
    return `authenticated as ${identity.uri}, but the node claims service account ${node.serviceAccount}`;
  }
  return undefined;
}
