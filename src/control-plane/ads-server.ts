/**
 * The ADS server: one {@link AdsConnection} per State-of-the-World stream,
 * tracking per type the subscription, the last sent version and nonce, the
 * ACKed version and the last NACK, and one DeltaConnection (delta-server.ts)
 * per Delta stream. SotW responses are prepared per (namespace, type,
 * subscription) by the snapshot cache and written as bytes; a push skips a
 * type whose resources did not change in the client's translation.
 */
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { XDS_TYPE_BY_URL, type XdsType } from '../xds/resources.js';
import { loadGrpcPackage } from '../xds/protos.js';
import { includesSorted, type SentVersion } from './snapshot-cache.js';
import { withNonce } from './xds-wire.js';
import { DeltaConnection, type DeltaCall, type DeltaRequest } from './delta-server.js';
import { XdsConnection, type AdsServerHooks, type StreamAuthentication } from './xds-connection.js';

export type { AdsServerHooks, NackRecord, StreamAuthentication, SyncStatus } from './xds-connection.js';

interface TypeSubscription {
  /** `*`, or a digest of the sorted names (the response cache's key: a client holds 43 characters, not every name again) */
  key: string;
  names: string[];
  sentVersion: string | undefined;
  /** what the client last got, to diff RDS/EDS pushes against */
  sent: SentVersion | undefined;
  sentNonce: string | undefined;
  ackedVersion: string | undefined;
  /** translation key and type version last pushed against: the same again means nothing of the type changed */
  basisKey: string | undefined;
  basisVersion: string | undefined;
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

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Says who opened a stream (either protocol); never throws (a failure is a `problem`). */
export type StreamAuthenticator = (call: AdsCall | DeltaCall) => StreamAuthentication | Promise<StreamAuthentication>;

/** One State-of-the-World ADS stream. */
export class AdsConnection extends XdsConnection {
  private readonly subs = new Map<string, TypeSubscription>();
  private nonce = 0;

  constructor(id: number, private readonly call: AdsCall, hooks: AdsServerHooks) {
    super(id, hooks);
  }

  /** Handles one DiscoveryRequest. */
  onRequest(req: DiscoveryRequest): void {
    const type = this.requestedType(req, '');
    if (!type) return;
    let sub = this.subs.get(type.typeUrl);
    const nonce = req.response_nonce ?? '';
    if (nonce) {
      // a request answering an older response: the client will send another for the newest
      if (!sub || nonce !== sub.sentNonce) return;
      if (req.error_detail) {
        this.lastNack = { typeUrl: type.typeUrl, version: sub.sentVersion ?? '', nonce, message: req.error_detail.message ?? '', at: new Date().toISOString() };
        sub.sent = undefined; // the client kept its older set: next push sends everything
        sub.basisKey = undefined;
        this.hooks.trace(`stream ${this.id}: NACK ${type.short} ${sub.sentVersion}: ${req.error_detail.message}`);
      } else {
        sub.ackedVersion = req.version_info ?? '';
      }
    }
    const requested = req.resource_names ?? [];
    const wildcard = requested.includes('*') || (requested.length === 0 && (type.key === 'listeners' || type.key === 'clusters'));
    const names = wildcard ? [] : [...new Set(requested)].sort();
    // An ACK repeats the subscription: the same names keep their key without hashing them again.
    const key = wildcard ? '*' : sub && sub.key !== '*' && sameNames(sub.names, names) ? sub.key : createHash('sha256').update(names.join('\0')).digest('base64url');
    if (!sub) {
      sub = { key, names, sentVersion: undefined, sent: undefined, sentNonce: undefined, ackedVersion: undefined, basisKey: undefined, basisVersion: undefined };
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
    const { key, snapshot } = this.snapshot();
    // Nothing of this type changed in this client's translation: no client of it needs this type.
    const version = snapshot.typeVersion(type);
    if (!force && key === sub.basisKey && version === sub.basisVersion) return false;
    const since = key === sub.basisKey ? sub.basisVersion : undefined;
    sub.basisKey = key;
    sub.basisVersion = version;
    // Pushed against the previous snapshot of this translation: only its changed names can matter.
    const changed = !force && sub.sent && since !== undefined ? snapshot.changedSince(type, since) : undefined;
    if (changed && !(sub.key === '*' ? changed.size > 0 : anySubscribed(changed, sub.names))) return false;
    // a forced push (new stream, new subscription) sends everything; a change push only what changed
    const prepared = snapshot.response(type, sub.key, sub.names, force ? undefined : sub.sent, changed);
    if (!prepared) return false;
    sub.sent = { version: prepared.version, hashes: prepared.hashes, sum: prepared.sum };
    const nonce = String(++this.nonce);
    sub.sentVersion = prepared.version;
    sub.sentNonce = nonce;
    this.call.write(withNonce(prepared.body, nonce));
    return true;
  }

  /** Ends the stream (control plane shutdown). */
  end(): void {
    this.call.end();
  }

  /** Status for /debug/syncz. */
  status() {
    const types: Record<string, { subscribed: number | '*'; sent?: string; acked?: string; nonce?: string }> = {};
    for (const [url, s] of this.subs) {
      const t = XDS_TYPE_BY_URL.get(url)!;
      types[t.short] = {
        subscribed: s.key === '*' ? '*' : s.names.length,
        ...(s.sentVersion !== undefined && { sent: s.sentVersion }),
        ...(s.ackedVersion !== undefined && { acked: s.ackedVersion }),
        ...(s.sentNonce !== undefined && { nonce: s.sentNonce }),
      };
    }
    return this.baseStatus('sotw', types);
  }
}

/** The gRPC service: tracks connections, pushes on demand. */
export class AdsServer {
  readonly connections = new Set<XdsConnection>();
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
    // Responses are pre-encoded bytes: swap the serializers.
    const sotw = { ...definition.StreamAggregatedResources!, responseSerialize: (b: Buffer) => b };
    const delta = { ...definition.DeltaAggregatedResources!, responseSerialize: (b: Buffer) => b };
    const refuse = options.refuse;
    const refused = (call: grpc.ServerDuplexStream<unknown, unknown>) => {
      this.refusedStreams++;
      this.hooks.trace(`refused a plaintext ADS stream from ${call.getPeer()}: ${refuse}`);
      call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: refuse });
    };
    server.addService({ ...definition, StreamAggregatedResources: sotw, DeltaAggregatedResources: delta }, {
      StreamAggregatedResources: refuse !== undefined ? refused : (call: AdsCall) => {
        this.onStream(call, new AdsConnection(++this.nextId, call, this.hooks), options.authenticate);
      },
      DeltaAggregatedResources: refuse !== undefined ? refused : (call: DeltaCall) => {
        this.onStream(call, new DeltaConnection(++this.nextId, call, this.hooks), options.authenticate);
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

  private onStream<R extends DiscoveryRequest | DeltaRequest>(
    call: grpc.ServerDuplexStream<R, Buffer>, conn: XdsConnection & { onRequest(req: R): void }, authenticate: StreamAuthenticator | undefined,
  ): void {
    this.connections.add(conn);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      this.connections.delete(conn);
      if (conn.registered && conn.node) this.hooks.onNodeGone(conn.node, conn.auth);
      this.hooks.trace(`stream ${conn.id} ended`);
    };
    const handle = (req: R) => {
      try {
        conn.onRequest(req);
      } catch (err) {
        this.hooks.trace(`stream ${conn.id}: ${(err as Error).message}`);
        const code = (err as { code?: unknown }).code;
        call.emit('error', { code: typeof code === 'number' ? code : grpc.status.INTERNAL, details: (err as Error).message });
      }
    };
    // Requests wait (a microtask, or an async authenticator) until the stream's identity is settled.
    let waiting: R[] | undefined = [];
    call.on('data', (req: R) => (waiting ? waiting.push(req) : handle(req)));
    void Promise.resolve(authenticate?.(call as AdsCall | DeltaCall) ?? {}).catch((err: Error) => ({ problem: err.message })).then((auth) => {
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

/** Whether any of `changed` is in the sorted subscription `names`. */
function anySubscribed(changed: ReadonlySet<string>, names: readonly string[]): boolean {
  for (const n of changed) if (includesSorted(names, n)) return true;
  return false;
}
