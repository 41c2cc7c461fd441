/**
 * Translated, encoded resources per namespace (a proxy's translation depends
 * on its namespace only), rebuilt lazily once per config generation from a
 * memoized translation (only hosts whose inputs changed are re-translated)
 * and identity-keyed encodings (only changed resources are re-encoded). Each
 * response body is encoded once per (namespace, type, subscription) and
 * shared by every client with that subscription; versions are content hashes,
 * so a client is pushed to only when what it subscribes to really changed,
 * and a restarted control plane hands out the same versions for the same config.
 */
import { TYPE_URL, type EnvoyResources } from '../config/envoy.js';
import { TranslateCache } from '../config/translate.js';
import { XDS_TYPES, resourceName, type XdsType } from '../xds/resources.js';
import { EncodingCache, type EncodedResource } from './encoding-cache.js';
import { encodeDeltaBody, encodeSotwBody, withNonce } from './xds-wire.js';
import { EMPTY_SUM, addLanes, entryLanes, subtractLanes, versionOf, type VersionSum } from './sotw-version.js';
import { ResourceTable } from './resource-table.js';
import { INBOUND_LISTENER_PREFIX } from '../core/listener-role.js';
import { VIRTUAL_INBOUND } from '../config/translate-inbound.js';

/** What a client was last sent of one type: enough to diff the next push against. */
export interface SentVersion {
  version: string;
  /** Hash of every resource the version covers, by name. */
  hashes: Map<string, string>;
  /** The lanes the version is written from (sotw-version.ts). */
  sum: VersionSum;
}

/** A response body (DiscoveryResponse without its nonce) and its version. */
export interface PreparedResponse extends SentVersion {
  /** Encoded DiscoveryResponse fields version_info, resources, type_url, control_plane. */
  body: Buffer;
  /** Resources in the body. */
  count: number;
}

interface CachedResponse extends SentVersion {
  count: number;
  body: WeakRef<Buffer>;
}

/** Past this many resources and removals a Delta body is not shared: its key would cost what sharing saves. */
const SHARED_DELTA_BODY = 32;

/** The resources of one namespace at one generation. */
export class NamespaceSnapshot {
  private readonly tables = new Map<string, ResourceTable>();
  private readonly responses = new Map<string, Map<string, Map<string, CachedResponse>>>();
  private readonly typeVersions = new Map<string, string>();
  /**
   * The nonce of this snapshot's push responses: the same for every stream (a
   * nonce need only be unique on its stream, and a stream gets at most one
   * push response per type per generation), so their bytes can be shared.
   */
  readonly sharedNonce: string;
  /** Delta push responses by type, then by nonce and what they send. */
  private readonly deltaBodies = new Map<string, Map<string, WeakRef<Buffer>>>();
  /** Per type: the names that may differ from the previous snapshot's version `since` (a superset). */
  private readonly changes = new Map<string, { since: string; names: ReadonlySet<string> }>();

  /** @param previous the namespace's snapshot this one replaces: a type holding the very same encodings keeps its version. */
  constructor(readonly namespace: string, readonly generation: number, readonly resources: EnvoyResources, private readonly encodings: EncodingCache, previous?: NamespaceSnapshot) {
    this.sharedNonce = `g${generation}`;
    for (const type of XDS_TYPES) {
      const list = resources[type.key] as readonly object[];
      const prevList = previous?.resources[type.key] as readonly object[] | undefined;
      const before = previous?.tables.get(type.typeUrl);
      const version = previous?.typeVersions.get(type.typeUrl);
      this.responses.set(type.typeUrl, new Map());
      let table: ResourceTable;
      let same: boolean;
      if (before && prevList!.length === list.length) {
        // Most of a patched translation is the same objects at the same places: fix the few that are not.
        const fresh: number[] = [];
        for (let i = 0; i < list.length; i++) if (prevList![i] !== list[i]) fresh.push(i);
        if (fresh.length === 0) {
          this.keep(type, before, version ?? `g${generation}`);
          continue;
        }
        const names = before.names.slice();
        const encs = before.encodings.slice();
        const moved: number[] = [];
        for (const i of fresh) {
          names[i] = resourceName(type, list[i] as Record<string, unknown>);
          const e = encodings.encode(type.typeUrl, list[i]!);
          // A resource translated again into the same bytes (a patch re-makes every cluster of a changed host)
          // keeps its encoding: no client of this translation has anything new to look at.
          if (names[i] === before.names[i] && e.hash === before.encodings[i]!.hash) continue;
          encs[i] = e;
          moved.push(i);
        }
        if (moved.length === 0) {
          this.keep(type, before, version ?? `g${generation}`);
          continue;
        }
        table = before.with(moved, names, encs);
        if (version !== undefined) this.recordChanges(type, version, before.names, names, moved);
        // (a change that only moved encodings between names gets a new version: a superset, never a miss)
        same = false;
      } else {
        const names = list.map((r) => resourceName(type, r as Record<string, unknown>));
        table = new ResourceTable(names, list.map((r) => encodings.encode(type.typeUrl, r)));
        if (before && version !== undefined) {
          const fresh: number[] = [];
          for (let i = 0; i < Math.max(list.length, prevList!.length); i++) if (prevList![i] !== list[i]) fresh.push(i);
          this.recordChanges(type, version, before.names, names, fresh);
        }
        same = before !== undefined && table.sameAs(before);
      }
      this.tables.set(type.typeUrl, table);
      // An identity comparison, not a hash of thousands of names on every push.
      this.typeVersions.set(type.typeUrl, same && version !== undefined ? version : `g${generation}`);
    }
  }

  /** Nothing of `type` changed: the previous table and version, and no changed names. */
  private keep(type: XdsType, table: ResourceTable, version: string): void {
    this.changes.set(type.typeUrl, { since: version, names: new Set() });
    this.tables.set(type.typeUrl, table);
    this.typeVersions.set(type.typeUrl, version);
  }

  /** `fresh`: the indices whose resource is not the previous one at that index, in either list. */
  private recordChanges(type: XdsType, since: string, prevNames: readonly string[], names: readonly string[], fresh: readonly number[]): void {
    const changed = new Set<string>();
    for (const i of fresh) {
      if (i < names.length) changed.add(names[i]!);
      if (i < prevNames.length) changed.add(prevNames[i]!);
    }
    // Inbound listeners are also served under the names proxyless servers ask for: any change could be theirs.
    if (type.key === 'listeners' && changed.has(VIRTUAL_INBOUND)) return;
    this.changes.set(type.typeUrl, { since, names: changed });
  }

  /**
   * The names of `type` that may have changed since version `since` of the
   * previous snapshot (a superset); undefined when not known (another
   * version, a first snapshot, an inbound listener changed): look at everything.
   */
  changedSince(type: XdsType, since: string): ReadonlySet<string> | undefined {
    const c = this.changes.get(type.typeUrl);
    if (c && c.since === since) return c.names;
    if (this.typeVersions.get(type.typeUrl) === since) return new Set();
    return undefined;
  }

  private inboundAs(type: XdsType, name: string): EncodedResource | undefined {
    return type.key === 'listeners' && name.startsWith(INBOUND_LISTENER_PREFIX) ? inboundListenerAs(this, name, this.encodings) : undefined;
  }

  /** Number of resources of a type. */
  count(type: XdsType): number {
    return this.tables.get(type.typeUrl)!.size;
  }

  /** Every resource of a type, by name (a wildcard subscription). */
  all(type: XdsType): ResourceTable {
    return this.tables.get(type.typeUrl)!;
  }

  /** One resource by the name a client asked for (an istiod inbound listener name included). */
  lookup(type: XdsType, name: string): EncodedResource | undefined {
    return this.tables.get(type.typeUrl)!.get(name) ?? this.inboundAs(type, name);
  }

  /**
   * The type's version in this translation: the generation in which its set
   * of resources last changed (`g<n>`), kept while every resource is the very
   * same encoding — so a push skips the type for every client of this
   * translation without looking at their subscriptions. Delta responses carry
   * it as system_version_info (informational there; per-resource versions are
   * content hashes).
   */
  typeVersion(type: XdsType): string {
    return this.typeVersions.get(type.typeUrl)!;
  }

  /**
   * A Delta response sending `resources` and removing `removed`, with `nonce`.
   * At a push (`shared`) most clients of a translation are sent the same few
   * under the same nonce ({@link sharedNonce}), so the bytes are written once
   * per snapshot and shared — held weakly, as SotW bodies are. A first answer
   * (each client's own subscription) or a large one is written for the client alone.
   */
  deltaResponse(type: XdsType, resources: ReadonlyArray<readonly [string, EncodedResource]>, removed: readonly string[], nonce: string, shared: boolean): Buffer {
    const version = this.typeVersion(type);
    if (!shared || resources.length + removed.length > SHARED_DELTA_BODY) return withNonce(encodeDeltaBody(version, resources, type.typeUrl, removed), nonce);
    let key = nonce;
    for (const [n, r] of resources) key += `\0${n}\0${r.hash}`;
    for (const n of removed) key += `\0\u0001${n}`;
    let bodies = this.deltaBodies.get(type.typeUrl);
    if (!bodies) this.deltaBodies.set(type.typeUrl, (bodies = new Map()));
    const cached = bodies.get(key)?.deref();
    if (cached) return cached;
    const body = withNonce(encodeDeltaBody(version, resources, type.typeUrl, removed), nonce);
    bodies.set(key, new WeakRef(body));
    return body;
  }

  /**
   * The response for a subscription: `subscription` is `*` (wildcard) or a
   * key of the sorted `names` (a digest: identical subscriptions, one key).
   * For RDS and EDS, given what the client got
   * last (`previous`), the body carries only the resources that changed, as
   * SotW allows for those types (Envoy and gRPC keep the others). Undefined
   * when the client already has this version. Cached per subscription and
   * previous version, so identical clients share one body; the body is held
   * weakly, so a subscription only one client has does not pin its bytes
   * after the write (a client costs its hashes, not its responses).
   */
  response(type: XdsType, subscription: string, names: readonly string[], previous?: SentVersion, changed?: ReadonlySet<string>): PreparedResponse | undefined {
    const incremental = !type.fullState && previous !== undefined;
    // Nested by subscription, then previous version: no per-call concatenation of a long subscription key.
    const cache = this.responses.get(type.typeUrl)!;
    let bySub = cache.get(subscription);
    if (!bySub) cache.set(subscription, (bySub = new Map()));
    const cacheKey = incremental ? previous.version : '';
    const cached = bySub.get(cacheKey);
    if (cached && cached.version === previous?.version) return undefined;
    const cachedBody = cached?.body.deref();
    if (cached && cachedBody) return { version: cached.version, hashes: cached.hashes, sum: cached.sum, count: cached.count, body: cachedBody };
    const prepared = incremental && changed ? this.patched(type, subscription, names, previous, changed) : this.full(type, subscription, names, previous);
    if (!prepared) return undefined;
    bySub.set(cacheKey, { version: prepared.version, hashes: prepared.hashes, sum: prepared.sum, count: prepared.count, body: new WeakRef(prepared.body) });
    return prepared;
  }

  /** Every subscribed resource, hashed; for RDS/EDS against `previous`, only the changed ones go in the body. */
  private full(type: XdsType, subscription: string, names: readonly string[], previous: SentVersion | undefined): PreparedResponse | undefined {
    const all = this.tables.get(type.typeUrl)!;
    const picked: Array<[string, EncodedResource]> = [];
    if (subscription === '*') {
      for (const e of all) picked.push(e);
      picked.sort(byName);
    } else {
      // names come sorted (the subscription key is built from them sorted)
      for (const n of names) { const r = all.get(n) ?? this.inboundAs(type, n); if (r) picked.push([n, r]); }
    }
    // Nothing this client subscribes to changed: no hashing, no response.
    // (Not cached: the cache holds bodies, and another client of this subscription may need the full one.)
    if (previous && previous.hashes.size === picked.length && picked.every(([n, r]) => previous.hashes.get(n) === r.hash)) return undefined;
    const hashes = new Map<string, string>();
    let sum = EMPTY_SUM;
    for (const [n, r] of picked) {
      sum = addLanes(sum, entryLanes(n, r.hash));
      hashes.set(n, r.hash);
    }
    const version = versionOf(sum);
    if (previous?.version === version) return undefined;
    const sent = !type.fullState && previous !== undefined ? picked.filter(([n, r]) => previous.hashes.get(n) !== r.hash) : picked;
    return { version, hashes, sum, count: sent.length, body: encodeSotwBody(version, sent.map(([, r]) => r), type.typeUrl) };
  }

  /**
   * RDS/EDS when the names that changed since `previous` are known: only
   * those are looked up, and the version moves by their entries — the same
   * version {@link full} computes for the same content.
   */
  private patched(type: XdsType, subscription: string, names: readonly string[], previous: SentVersion, changed: ReadonlySet<string>): PreparedResponse | undefined {
    const all = this.tables.get(type.typeUrl)!;
    const updated: Array<[string, EncodedResource]> = [];
    let sum = previous.sum;
    let hashes: Map<string, string> | undefined;
    for (const n of changed) {
      if (subscription !== '*' && !includesSorted(names, n)) continue;
      const r = all.get(n) ?? this.inboundAs(type, n);
      const before = previous.hashes.get(n);
      if (r?.hash === before) continue;
      hashes ??= new Map(previous.hashes);
      if (before !== undefined) sum = subtractLanes(sum, entryLanes(n, before));
      if (r) {
        sum = addLanes(sum, entryLanes(n, r.hash));
        hashes.set(n, r.hash);
        updated.push([n, r]);
      } else {
        hashes.delete(n);
      }
    }
    if (!hashes) return undefined;
    const version = versionOf(sum);
    if (version === previous.version) return undefined;
    updated.sort(byName);
    return { version, hashes, sum, count: updated.length, body: encodeSotwBody(version, updated.map(([, r]) => r), type.typeUrl) };
  }
}

function byName(a: readonly [string, unknown], b: readonly [string, unknown]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/** Whether a sorted list holds `name` (binary search: a subscription is a sorted list, not a set). */
export function includesSorted(sorted: readonly string[], name: string): boolean {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const m = sorted[mid]!;
    if (m === name) return true;
    if (m < name) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

/** Inbound listeners re-encoded under the names clients ask for, per snapshot. */
const inboundEncodings = new WeakMap<NamespaceSnapshot, Map<string, EncodedResource>>();

/**
 * A listener asked for by istiod's inbound name (`xds.istio.io/grpc/lds/inbound/<ip>:<port>`, as a
 * proxyless server subscribes) is this proxy's inbound listener under that name, as istiod answers it.
 */
function inboundListenerAs(snapshot: NamespaceSnapshot, name: string, encodings: EncodingCache): EncodedResource | undefined {
  const inbound = snapshot.resources.listeners.find((l) => l.name === VIRTUAL_INBOUND);
  if (!inbound) return undefined;
  let byName = inboundEncodings.get(snapshot);
  if (!byName) inboundEncodings.set(snapshot, (byName = new Map()));
  let e = byName.get(name);
  if (!e) byName.set(name, (e = encodings.encode(TYPE_URL.listener, { ...inbound, name })));
  return e;
}

/** Namespace snapshots; `invalidate()` starts a new generation, rebuilt on demand. */
export class SnapshotCache {
  private readonly snapshots = new Map<string, NamespaceSnapshot>();
  private readonly errors = new Map<string, string>();
  private readonly encodings = new EncodingCache();
  /** Current config generation. */
  generation = 1;

  /** Memoized translation shared by every namespace and generation. */
  readonly translations = new TranslateCache();

  /** @param build translates the current config for a namespace (using `translations`); may throw. */
  constructor(private readonly build: (namespace: string, translations: TranslateCache) => EnvoyResources) {}

  /** Marks every snapshot stale. */
  invalidate(): void {
    this.generation++;
    this.translations.rotate();
  }

  /** The namespace's snapshot for the current generation (the last good one if translation fails). */
  get(namespace: string): NamespaceSnapshot {
    const current = this.snapshots.get(namespace);
    if (current && current.generation === this.generation) return current;
    let next: NamespaceSnapshot;
    try {
      next = new NamespaceSnapshot(namespace, this.generation, this.build(namespace, this.translations), this.encodings, current);
      this.errors.delete(namespace);
    } catch (err) {
      this.errors.set(namespace, (err as Error).message);
      const empty: EnvoyResources = { listeners: [], routes: [], clusters: [], endpoints: [] };
      // keep serving the last good translation, stamped with this generation so we do not retry in a loop
      next = current
        ? new NamespaceSnapshot(namespace, this.generation, current.resources, this.encodings, current)
        : new NamespaceSnapshot(namespace, this.generation, empty, this.encodings);
    }
    this.snapshots.set(namespace, next);
    return next;
  }

  /**
   * Encodes, ahead of the next snapshot of `namespace`, the resources of a
   * translation its current snapshot does not hold (the encodings are kept by
   * object): staged-translation.ts calls it while the push waits out the debounce.
   */
  prepare(namespace: string, resources: EnvoyResources): void {
    const current = this.snapshots.get(namespace);
    if (!current) return;
    for (const type of XDS_TYPES) {
      const list = resources[type.key] as readonly object[];
      const before = current.resources[type.key] as readonly object[];
      if (list === before) continue;
      for (let i = 0; i < list.length; i++) if (list[i] !== before[i]) this.encodings.encode(type.typeUrl, list[i]!);
    }
  }

  /** The translation keys that have a snapshot (a client asked for one). */
  keys(): IterableIterator<string> {
    return this.snapshots.keys();
  }

  /** Translation errors by namespace. */
  translationErrors(): Record<string, string> {
    return Object.fromEntries(this.errors);
  }
}
