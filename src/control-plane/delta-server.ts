/**
 * The Delta (incremental) ADS server side: one {@link DeltaConnection} per
 * `DeltaAggregatedResources` stream. Per type it keeps what the client
 * subscribes to (wildcard and/or names) and what it has (name → version, from
 * `initial_resource_versions` on a reconnect and from what was sent), and a
 * push sends only the resources whose version differs, plus
 * `removed_resources` for the ones that went away — so a one-service change
 * costs every client one small response, not its whole subscription.
 *
 * Resource versions are the content hashes of the shared encodings; a
 * response writes each `Resource` around the Any bytes every client shares.
 *
 * Protocol as in Envoy's xDS docs ("Incremental xDS") and istiod
 * (pilot/pkg/xds/delta.go): the first request of a type with no names is a
 * wildcard subscription for LDS and CDS; `*` subscribes or unsubscribes the
 * wildcard explicitly; a request answering an older nonce is stale; a NACK
 * (error_detail) means the client kept what it had, so the versions that
 * response announced are forgotten and the next change re-sends them.
 */
import type * as grpc from '@grpc/grpc-js';
import type { XdsType } from '../xds/resources.js';
import type { EncodedResource } from './encoding-cache.js';
import type { NamespaceSnapshot } from './snapshot-cache.js';
import { XdsConnection, type AdsServerHooks, type SyncStatus } from './xds-connection.js';

/** A DeltaDiscoveryRequest as proto-loader decodes it (keepCase). */
export interface DeltaRequest {
  node?: { id?: string; metadata?: unknown };
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

/** A Delta ADS server stream; responses are pre-encoded bytes. */
export type DeltaCall = grpc.ServerDuplexStream<DeltaRequest, Buffer>;

/** What one response changed for one name, to undo it if the client NACKs. */
interface Change {
  /** the version the server believed the client had before ('' = none) */
  before: string;
  /** the version the response announced ('' = removed) */
  after: string;
}

interface DeltaSubscription {
  type: XdsType;
  wildcard: boolean;
  names: Set<string>;
  /** what the client has, name → version, as far as this server knows */
  known: Map<string, string>;
  /** responses not yet ACKed or NACKed, oldest first */
  pending: Map<string, Map<string, Change>>;
  sentVersion: string | undefined;
  sentNonce: string | undefined;
  ackedVersion: string | undefined;
  /** translation key and type version last pushed against: the same again means nothing to send */
  basisKey: string | undefined;
  basisVersion: string | undefined;
}

/** Unanswered responses remembered per type (Envoy answers each one; this bounds a client that does not). */
const MAX_PENDING = 16;

/** One Delta ADS stream. */
export class DeltaConnection extends XdsConnection {
  private readonly subs = new Map<string, DeltaSubscription>();
  private nonce = 0;

  constructor(id: number, private readonly call: DeltaCall, hooks: AdsServerHooks) {
    super(id, hooks);
  }

  /** Handles one DeltaDiscoveryRequest. */
  onRequest(req: DeltaRequest): void {
    const type = this.requestedType(req, 'delta: ');
    if (!type) return;
    let sub = this.subs.get(type.typeUrl);
    const first = !sub;
    const subscribe = req.resource_names_subscribe ?? [];
    if (!sub) {
      // "A client that never subscribed to names is a wildcard subscriber" — for the wildcard types only.
      const wildcard = subscribe.length === 0 && (type.key === 'listeners' || type.key === 'clusters');
      sub = { type, wildcard, names: new Set(), known: new Map(), pending: new Map(), sentVersion: undefined, sentNonce: undefined, ackedVersion: undefined, basisKey: undefined, basisVersion: undefined };
      this.subs.set(type.typeUrl, sub);
      for (const [name, version] of Object.entries(req.initial_resource_versions ?? {})) {
        sub.known.set(name, version);
        if (!sub.wildcard && !subscribe.includes('*')) sub.names.add(name);
      }
    }
    const nonce = req.response_nonce ?? '';
    if (nonce) this.settle(sub, nonce, req.error_detail);
    // Names newly subscribed get an answer even when they do not exist (removed_resources says so).
    const fresh = new Set<string>();
    for (const name of subscribe) {
      if (name === '*') sub.wildcard = true;
      else if (!sub.names.has(name)) { sub.names.add(name); fresh.add(name); }
    }
    let unsubscribed = false;
    for (const name of req.resource_names_unsubscribe ?? []) {
      if (name === '*') { if (sub.wildcard) unsubscribed = true; sub.wildcard = false; continue; }
      if (sub.names.delete(name)) unsubscribed = true;
      // the client drops what it unsubscribes; a later subscribe must send it again
      if (!sub.wildcard) sub.known.delete(name);
    }
    if (first || fresh.size > 0 || unsubscribed) this.push(type, { always: first || fresh.size > 0, fresh });
  }

  /** An ACK or NACK of `nonce`; answers to a response older than the newest pending one settle it too. */
  private settle(sub: DeltaSubscription, nonce: string, error: DeltaRequest['error_detail']): void {
    const changes = sub.pending.get(nonce);
    if (!changes) return; // stale, or from before a reconnect
    // Responses are answered in order: everything sent before this nonce was settled already.
    for (const n of sub.pending.keys()) {
      sub.pending.delete(n);
      if (n === nonce) break;
    }
    if (!error) {
      if (nonce === sub.sentNonce) sub.ackedVersion = sub.sentVersion;
      return;
    }
    this.lastNack = { typeUrl: sub.type.typeUrl, version: sub.sentVersion ?? '', nonce, message: error.message ?? '', at: new Date().toISOString() };
    this.hooks.trace(`stream ${this.id}: delta NACK ${sub.type.short} nonce ${nonce}: ${error.message}`);
    // The client kept its older resources: forget what this response announced (unless a later one replaced it).
    for (const [name, c] of changes) {
      if ((sub.known.get(name) ?? '') !== c.after) continue;
      if (c.before) sub.known.set(name, c.before);
      else sub.known.delete(name);
    }
    sub.basisKey = undefined;
  }

  /**
   * Sends what of `type` differs from what the client has. `always` sends a
   * response even when nothing differs (the answer to a first request or a
   * new subscription); `fresh` names are reported removed when they do not exist.
   */
  push(type: XdsType, options: { always?: boolean; fresh?: ReadonlySet<string> } = {}): boolean {
    const sub = this.subs.get(type.typeUrl);
    if (!sub) return false;
    const { key, snapshot } = this.snapshot();
    const version = snapshot.typeVersion(type);
    const routine = !options.always && !options.fresh?.size;
    if (routine && key === sub.basisKey && version === sub.basisVersion) return false;
    // Diffed against the previous snapshot of this translation last time: only its changed names can differ.
    const only = routine && key === sub.basisKey && sub.basisVersion !== undefined ? snapshot.changedSince(type, sub.basisVersion) : undefined;
    sub.basisKey = key;
    sub.basisVersion = version;
    const { resources, removed, changes } = diff(sub, snapshot, options.fresh, only);
    if (resources.length === 0 && removed.length === 0 && !options.always) return false;
    // A push response carries the snapshot's nonce, shared by every stream (and so its bytes); anything else its own.
    const shared = routine && !sub.pending.has(snapshot.sharedNonce);
    const nonce = shared ? snapshot.sharedNonce : String(++this.nonce);
    for (const [name, c] of changes) {
      if (c.after) sub.known.set(name, c.after);
      else sub.known.delete(name);
    }
    sub.pending.set(nonce, changes);
    // A client that never answers must not grow this without bound: forget the oldest (its NACK then undoes nothing).
    if (sub.pending.size > MAX_PENDING) sub.pending.delete(sub.pending.keys().next().value!);
    sub.sentNonce = nonce;
    sub.sentVersion = version;
    this.call.write(snapshot.deltaResponse(type, resources, removed, nonce, shared));
    return true;
  }

  /** Ends the stream. */
  end(): void {
    this.call.end();
  }

  /** Status for /debug/syncz. */
  status(): SyncStatus {
    const types: SyncStatus['types'] = {};
    for (const s of this.subs.values()) {
      types[s.type.short] = {
        subscribed: s.wildcard ? '*' : s.names.size,
        ...(s.sentVersion !== undefined && { sent: s.sentVersion }),
        ...(s.ackedVersion !== undefined && { acked: s.ackedVersion }),
        ...(s.sentNonce !== undefined && { nonce: s.sentNonce }),
      };
    }
    return this.baseStatus('delta', types);
  }
}

/** The resources to send (name and shared encoding), the names to remove, and what that changes. */
function diff(sub: DeltaSubscription, snapshot: NamespaceSnapshot, fresh: ReadonlySet<string> | undefined, only?: ReadonlySet<string>) {
  const resources: Array<[string, EncodedResource]> = [];
  const removed: string[] = [];
  const changes = new Map<string, Change>();
  const offer = (name: string, r: EncodedResource | undefined) => {
    if (changes.has(name)) return;
    const before = sub.known.get(name) ?? '';
    if (r) {
      if (before === r.hash) return;
      resources.push([name, r]);
      changes.set(name, { before, after: r.hash });
    } else if (before || fresh?.has(name)) {
      removed.push(name);
      changes.set(name, { before, after: '' });
    }
  };
  if (only) {
    for (const name of only) if (sub.wildcard || sub.names.has(name)) offer(name, snapshot.lookup(sub.type, name));
    return { resources, removed, changes };
  }
  if (sub.wildcard) {
    const all = snapshot.all(sub.type);
    for (const [name, r] of all) offer(name, r);
    for (const name of sub.known.keys()) if (!all.has(name) && !sub.names.has(name)) offer(name, undefined);
  }
  for (const name of sub.names) offer(name, snapshot.lookup(sub.type, name));
  return { resources, removed, changes };
}
