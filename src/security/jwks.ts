/**
 * The mesh's JWKS cache: the keys of every `remote_jwks` a jwt_authn
 * filter names (RequestAuthentication `jwksUri`, or the issuer's OpenID
 * discovery document), fetched over HTTP(S) off the request path.
 *
 * - A URI is fetched when a snapshot naming it is applied (`prefetch`;
 *   `mesh.apply` awaits it, each fetch bounded by the provider's timeout, so
 *   createMesh never waits longer than that) or when a request first needs it.
 * - Keys are served from memory; past `cache_duration` (istiod writes 5 min)
 *   the next request triggers a refresh and keeps using the old keys meanwhile.
 * - A token naming an unknown `kid` triggers a refetch, at most one per
 *   `minRefetchMs` per URI, so a key rotation is picked up without letting
 *   forged kids turn into a request flood towards the issuer.
 * - A failed first fetch leaves the URI `failed`: every token verified
 *   against it fails (401), as istiod's public-only fallback key does; it is
 *   retried after `retryMs`. A failed refresh keeps the last good keys.
 */
import type { JwksSource, RemoteJwksOptions } from '../core/jwt-authn.js';
import { type JwtKey, importJwks } from '../core/jwt-verify.js';

/** Options of {@link JwksCache}. */
export interface JwksCacheOptions {
  /** Clock in ms (default Date.now). */
  now?: () => number;
  /** Fewest ms between two refetches of one URI for unknown kids (default 10 s). */
  minRefetchMs?: number;
  /** Ms before a failed first fetch is tried again (default 60 s, istiod's refreshIntervalOnFailure). */
  retryMs?: number;
  /** Largest JWKS document accepted, in bytes (default 1 MiB). */
  maxBytes?: number;
}

interface Entry {
  readonly uri: string;
  options: RemoteJwksOptions;
  keys: readonly JwtKey[] | undefined;
  failed: boolean;
  /** When the keys were loaded, or the last attempt ended. */
  at: number;
  inFlight: Promise<void> | undefined;
  /** Fetches started (tests and the debug view read it). */
  fetches: number;
  lastError: string | undefined;
}

/** A JwksSource backed by HTTP(S) fetches. One per mesh; close it with the mesh. */
export class JwksCache implements JwksSource {
  private readonly entries = new Map<string, Entry>();
  private readonly controllers = new Set<AbortController>();
  private closed = false;
  private readonly now: () => number;
  private readonly minRefetchMs: number;
  private readonly retryMs: number;
  private readonly maxBytes: number;

  constructor(options: JwksCacheOptions = {}) {
    this.now = options.now ?? Date.now;
    this.minRefetchMs = options.minRefetchMs ?? 10_000;
    this.retryMs = options.retryMs ?? 60_000;
    this.maxBytes = options.maxBytes ?? 1 << 20;
  }

  keys(uri: string, options: RemoteJwksOptions): readonly JwtKey[] | 'pending' | 'failed' {
    let e = this.entries.get(uri);
    if (e === undefined) e = this.start(uri, options);
    else if (e.inFlight === undefined) {
      const age = this.now() - e.at;
      if ((e.keys !== undefined && age >= e.options.cacheMs) || (e.keys === undefined && age >= this.retryMs)) this.load(e);
    }
    return e.keys ?? (e.failed ? 'failed' : 'pending');
  }

  unknownKid(uri: string): void {
    const e = this.entries.get(uri);
    if (e === undefined || e.inFlight !== undefined || this.now() - e.at < this.minRefetchMs) return;
    this.load(e);
  }

  /** Starts fetching every URI not yet known (a snapshot naming them is being applied). */
  prefetch(list: ReadonlyArray<{ uri: string; options: RemoteJwksOptions }>): void {
    for (const { uri, options } of list) {
      const e = this.entries.get(uri);
      if (e === undefined) this.start(uri, options);
      else e.options = options;
    }
  }

  /** Resolves when the fetches of `uris` in flight have ended (each is bounded by its timeout); never rejects. */
  async ready(uris: readonly string[]): Promise<void> {
    await Promise.all(uris.map((u) => this.entries.get(u)?.inFlight));
  }

  /** What the cache holds for a URI (config dumps, tests). */
  status(uri: string): { keys: number; failed: boolean; fetches: number; error: string | undefined } | undefined {
    const e = this.entries.get(uri);
    return e && { keys: e.keys?.length ?? 0, failed: e.failed, fetches: e.fetches, error: e.lastError };
  }

  /** Aborts fetches in flight; later lookups answer from memory only. Idempotent. */
  close(): void {
    this.closed = true;
    for (const c of this.controllers) c.abort();
    this.controllers.clear();
  }

  private start(uri: string, options: RemoteJwksOptions): Entry {
    const e: Entry = { uri, options, keys: undefined, failed: false, at: this.now(), inFlight: undefined, fetches: 0, lastError: undefined };
    this.entries.set(uri, e);
    this.load(e);
    return e;
  }

  private load(e: Entry): void {
    if (this.closed) return;
    e.fetches++;
    const controller = new AbortController();
    this.controllers.add(controller);
    const timer = setTimeout(() => controller.abort(), e.options.timeoutMs);
    timer.unref();
    e.inFlight = this.fetchKeys(e.uri, controller.signal).then(
      (keys) => { e.keys = keys; e.failed = false; e.lastError = undefined; },
      (err: unknown) => {
        // A failed refresh keeps the last good keys; a failed first load fails closed.
        if (e.keys === undefined) e.failed = true;
        e.lastError = err instanceof Error ? err.message : String(err);
      },
    ).finally(() => {
      clearTimeout(timer);
      this.controllers.delete(controller);
      e.at = this.now();
      e.inFlight = undefined;
    });
  }

  private async fetchKeys(uri: string, signal: AbortSignal): Promise<JwtKey[]> {
    let doc = await this.get(uri, signal);
    // An OpenID discovery document (a RequestAuthentication without jwks/jwksUri) names the JWKS: one hop.
    const discovered = (doc as { jwks_uri?: unknown }).jwks_uri;
    if ((doc as { keys?: unknown }).keys === undefined && typeof discovered === 'string' && /^https?:\/\//.test(discovered)) doc = await this.get(discovered, signal);
    const keys = importJwks(JSON.stringify(doc));
    if (typeof keys === 'string') throw new Error(`${uri}: ${keys}`);
    return keys;
  }

  private async get(uri: string, signal: AbortSignal): Promise<object> {
    const res = await fetch(uri, { signal, redirect: 'follow', headers: { accept: 'application/json' } });
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`${uri}: HTTP ${res.status}`);
    }
    const declared = Number(res.headers.get('content-length'));
    if (Number.isFinite(declared) && declared > this.maxBytes) {
      await res.body?.cancel();
      throw new Error(`${uri}: ${declared} bytes is more than ${this.maxBytes}`);
    }
    const text = await res.text();
    if (text.length > this.maxBytes) throw new Error(`${uri}: more than ${this.maxBytes} bytes`);
    const doc: unknown = JSON.parse(text);
    if (typeof doc !== 'object' || doc === null) throw new Error(`${uri}: not a JSON object`);
    return doc;
  }
}
