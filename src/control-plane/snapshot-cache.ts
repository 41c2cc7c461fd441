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
import { createHash } from 'node:crypto';
import { TYPE_URL, type EnvoyResources } from '../config/envoy.js';
import { TranslateCache } from '../config/translate.js';
import { XDS_TYPES, resourceName, type XdsType } from '../xds/resources.js';
import { encodeAny } from '../xds/protos.js';
import { encodeSotwBody } from './sotw-wire.js';
import { INBOUND_LISTENER_PREFIX } from '../core/listener-role.js';
import { VIRTUAL_INBOUND } from '../config/translate-inbound.js';

/** One encoded resource: its Any, serialized once and shared by every client and namespace. */
export interface EncodedResource {
  any: { type_url: string; value: Buffer };
  /** Content hash: the resource's version in Delta xDS. */
  hash: string;
}

/** What a client was last sent of one type: enough to diff the next push against. */
export interface SentVersion {
  version: string;
  /** Hash of every resource the version covers, by name. */
  hashes: Map<string, string>;
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

/**
 * Encoded resources shared across namespaces and generations, keyed by the
 * resource object itself: the translator (with its TranslateCache) returns the
 * very same object for an unchanged resource, in every namespace and push, so
 * an unchanged resource is never serialized again. Entries go with their objects.
 */
export class EncodingCache {
  private readonly byObject = new WeakMap<object, EncodedResource>();

  /** Kept for callers that mark generations; identity keys need no rotation. */
  rotate(): void {}

  /** The encoding of `resource` as `typeUrl`. */
  encode(typeUrl: string, resource: object): EncodedResource {
    let e = this.byObject.get(resource);
    if (e && e.any.type_url === typeUrl) return e;
    const any = encodeAny(typeUrl, resource);
    e = { any, hash: createHash('sha1').update(any.value).digest('base64url').slice(0, 16) };
    this.byObject.set(resource, e);
    return e;
  }
}

/** The resources of one namespace at one generation. */
export class NamespaceSnapshot {
  private readonly byType = new Map<string, Map<string, EncodedResource>>();
  private readonly responses = new Map<string, Map<string, Map<string, CachedResponse>>>();
  private readonly typeVersions = new Map<string, string>();

  /** @param previous the namespace's snapshot this one replaces: a type holding the very same encodings keeps its version. */
  /** Per type, each resource's name and encoding, aligned with `resources`: the next snapshot reuses what sits unchanged at the same index. */
  private readonly aligned = new Map<string, { names: string[]; encodings: EncodedResource[] }>();

  /** @param previous the namespace's snapshot this one replaces: a type holding the very same encodings keeps its version. */
  constructor(readonly namespace: string, readonly generation: number, readonly resources: EnvoyResources, private readonly encodings: EncodingCache, previous?: NamespaceSnapshot) {
    for (const type of XDS_TYPES) {
      const list = resources[type.key] as readonly object[];
      const prevList = previous?.resources[type.key] as readonly object[] | undefined;
      const prevAligned = previous?.aligned.get(type.typeUrl);
      const before = previous?.byType.get(type.typeUrl);
      // A patched translation keeps unchanged resources at their index: reuse their names and encodings,
      // and when nothing of the type moved, the very map and version (a push then costs the changed resources only).
      let names: string[];
      let encs: EncodedResource[];
      let reused = 0;
      /** indices whose resource is not the previous snapshot's at that index */
      const fresh: number[] = [];
      if (prevAligned && prevList!.length === list.length) {
        // Copy the previous arrays (native) and fix what moved: most of a patched translation is the same objects.
        for (let i = 0; i < list.length; i++) if (prevList![i] !== list[i]) fresh.push(i);
        reused = list.length - fresh.length;
        names = prevAligned.names.slice();
        encs = prevAligned.encodings.slice();
        for (const i of fresh) {
          names[i] = resourceName(type, list[i] as Record<string, unknown>);
          encs[i] = encodings.encode(type.typeUrl, list[i]!);
        }
      } else {
        names = new Array<string>(list.length);
        encs = new Array<EncodedResource>(list.length);
        for (let i = 0; i < list.length; i++) {
          const r = list[i]!;
          if (prevAligned && prevList![i] === r) {
            names[i] = prevAligned.names[i]!;
            encs[i] = prevAligned.encodings[i]!;
            reused++;
          } else {
            names[i] = resourceName(type, r as Record<string, unknown>);
            encs[i] = encodings.encode(type.typeUrl, r);
          }
        }
      }
      this.aligned.set(type.typeUrl, { names, encodings: encs });
      if (prevAligned && previous) this.recordChanges(type, previous, prevAligned.names, prevList!, list, names);
      this.responses.set(type.typeUrl, new Map());
      const version = previous?.typeVersions.get(type.typeUrl);
      if (before && version !== undefined && prevList!.length === list.length && reused === list.length) {
        this.byType.set(type.typeUrl, before);
        this.typeVersions.set(type.typeUrl, version);
        continue;
      }
      let map: Map<string, EncodedResource>;
      let same: boolean | undefined;
      if (before && prevAligned && prevList!.length === list.length && fresh.every((i) => names[i] === prevAligned.names[i])) {
        same = fresh.every((i) => encs[i] === prevAligned.encodings[i]);
        // the same names at the same places: the previous map, copied natively, with the changed encodings
        map = new Map(before);
        for (const i of fresh) map.set(names[i]!, encs[i]!);
      } else {
        map = new Map<string, EncodedResource>();
        for (let i = 0; i < list.length; i++) map.set(names[i]!, encs[i]!);
      }
      this.byType.set(type.typeUrl, map);
      // An identity comparison, not a hash of thousands of names on every push.
      this.typeVersions.set(type.typeUrl, before && version !== undefined && (same ?? sameEntries(before, map)) ? version : `g${generation}`);
    }
  }

  /** Per type: the names that may differ from the previous snapshot's version `since` (a superset). */
  private readonly changes = new Map<string, { since: string; names: ReadonlySet<string> }>();

  private recordChanges(type: XdsType, previous: NamespaceSnapshot, prevNames: readonly string[], prevList: readonly object[], list: readonly object[], names: readonly string[]): void {
    const since = previous.typeVersions.get(type.typeUrl);
    if (since === undefined) return;
    const changed = new Set<string>();
    for (let i = 0; i < list.length; i++) {
      if (prevList[i] === list[i]) continue;
      changed.add(names[i]!);
      if (i < prevNames.length) changed.add(prevNames[i]!);
    }
    for (let i = list.length; i < prevNames.length; i++) changed.add(prevNames[i]!);
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
    return this.byType.get(type.typeUrl)!.size;
  }

  /** Every resource of a type, by name (a wildcard subscription). */
  all(type: XdsType): ReadonlyMap<string, EncodedResource> {
    return this.byType.get(type.typeUrl)!;
  }

  /** One resource by the name a client asked for (an istiod inbound listener name included). */
  lookup(type: XdsType, name: string): EncodedResource | undefined {
    return this.byType.get(type.typeUrl)!.get(name) ?? this.inboundAs(type, name);
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
   * The response for a subscription: `subscription` is `*` (wildcard) or the
   * sorted names joined by NUL. For RDS and EDS, given what the client got
   * last (`previous`), the body carries only the resources that changed, as
   * SotW allows for those types (Envoy and gRPC keep the others). Undefined
   * when the client already has this version. Cached per subscription and
   * previous version, so identical clients share one body; the body is held
   * weakly, so a subscription only one client has does not pin its bytes
   * after the write (a client costs its hashes, not its responses).
   */
  response(type: XdsType, subscription: string, names: readonly string[], previous?: SentVersion): PreparedResponse | undefined {
    const incremental = !type.fullState && previous !== undefined;
    // Nested by subscription, then previous version: no per-call concatenation of a long subscription key.
    const cache = this.responses.get(type.typeUrl)!;
    let bySub = cache.get(subscription);
    if (!bySub) cache.set(subscription, (bySub = new Map()));
    const cacheKey = incremental ? previous.version : '';
    const cached = bySub.get(cacheKey);
    if (cached && cached.version === previous?.version) return undefined;
    const cachedBody = cached?.body.deref();
    if (cached && cachedBody) return { version: cached.version, hashes: cached.hashes, count: cached.count, body: cachedBody };
    const all = this.byType.get(type.typeUrl)!;
    const picked: Array<[string, EncodedResource]> = [];
    if (subscription === '*') {
      for (const e of all) picked.push(e);
      picked.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    } else {
      // names come sorted (the subscription key is built from them sorted)
      for (const n of names) { const r = all.get(n) ?? this.inboundAs(type, n); if (r) picked.push([n, r]); }
    }
    // Nothing this client subscribes to changed: no hashing, no response.
    // (Not cached: the cache holds bodies, and another client of this subscription may need the full one.)
    if (previous && previous.hashes.size === picked.length && picked.every(([n, r]) => previous.hashes.get(n) === r.hash)) return undefined;
    const hashes = new Map<string, string>();
    let text = '';
    for (const [n, r] of picked) {
      text += `${n}\0${r.hash}\n`;
      hashes.set(n, r.hash);
    }
    // One digest over the joined text (the same bytes as before, fed once instead of three times per name).
    const version = createHash('sha1').update(text).digest('hex').slice(0, 12);
    if (previous?.version === version) return undefined;
    const sent = incremental ? picked.filter(([n, r]) => previous.hashes.get(n) !== r.hash) : picked;
    const body = encodeSotwBody(version, sent.map(([, r]) => r), type.typeUrl);
    bySub.set(cacheKey, { version, hashes, count: sent.length, body: new WeakRef(body) });
    return { version, hashes, count: sent.length, body };
  }
}

/** Whether two name → encoding maps hold the same encodings under the same names. */
function sameEntries(a: ReadonlyMap<string, EncodedResource>, b: ReadonlyMap<string, EncodedResource>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, r] of b) if (a.get(name) !== r) return false;
  return true;
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
    this.encodings.rotate();
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

  /** Translation errors by namespace. */
  translationErrors(): Record<string, string> {
    return Object.fromEntries(this.errors);
  }
}
