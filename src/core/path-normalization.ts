/**
 * Request path normalization as an Istio sidecar applies it before
 * authorization, routing and forwarding: Envoy's HttpConnectionManager
 * `normalize_path` (RFC 3986 dot segments, `\` → `/`, one decoding of
 * percent-encoded unreserved characters, `%00` refused), `merge_slashes` and
 * `path_with_escaped_slashes_action`, in the order of Envoy's
 * ConnectionManagerUtility::maybeNormalizePath. Istio's
 * `meshConfig.pathNormalization.normalization` options map onto those three
 * fields as istiod's listener builder does (pilot/pkg/networking/core/listener_builder.go).
 *
 * The canonicalization itself is core/canonical-path.ts (Chromium's, as in
 * Envoy). An already-normal path costs one scan of its characters and no
 * allocation besides the result object.
 */
import { PASS, SPECIAL, TABLE, UNESCAPE, canonicalizePath, decodeEscaped } from './canonical-path.js';

/** Istio's `MeshConfig.ProxyPathNormalization.NormalizationType` (DEFAULT means BASE). */
export type PathNormalizationType = 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES' | 'DEFAULT';

/** The Istio option names, for validation messages. */
export const PATH_NORMALIZATION_TYPES: readonly PathNormalizationType[] = ['DEFAULT', 'NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'];

/** Envoy's `HttpConnectionManager.PathWithEscapedSlashesAction` (IMPLEMENTATION_SPECIFIC_DEFAULT is KEEP_UNCHANGED). */
export type EscapedSlashesAction = 'KEEP_UNCHANGED' | 'REJECT_REQUEST' | 'UNESCAPE_AND_REDIRECT' | 'UNESCAPE_AND_FORWARD';

/** The three HCM fields that decide what happens to a path. */
export interface PathNormalizationSettings {
  /** `normalize_path`: RFC 3986 canonicalization (Chromium's). */
  readonly normalizePath: boolean;
  /** `merge_slashes`: `//` → `/`, after canonicalization. */
  readonly mergeSlashes: boolean;
  /** `path_with_escaped_slashes_action`: what `%2F` / `%5C` do, before canonicalization. */
  readonly escapedSlashes: EscapedSlashesAction;
}

/** Istio's mapping of the mesh option onto the HCM (listener_builder.go, buildHTTPConnectionManager). */
export function pathNormalizationSettings(type: PathNormalizationType = 'BASE'): PathNormalizationSettings {
  return SETTINGS[type];
}

const SETTINGS: Readonly<Record<PathNormalizationType, PathNormalizationSettings>> = {
  NONE: Object.freeze({ normalizePath: false, mergeSlashes: false, escapedSlashes: 'KEEP_UNCHANGED' }),
  BASE: Object.freeze({ normalizePath: true, mergeSlashes: false, escapedSlashes: 'KEEP_UNCHANGED' }),
  DEFAULT: Object.freeze({ normalizePath: true, mergeSlashes: false, escapedSlashes: 'KEEP_UNCHANGED' }),
  MERGE_SLASHES: Object.freeze({ normalizePath: true, mergeSlashes: true, escapedSlashes: 'KEEP_UNCHANGED' }),
  // Istio uses UNESCAPE_AND_FORWARD, not Envoy's redirect: the app sees the decoded path.
  DECODE_AND_MERGE_SLASHES: Object.freeze({ normalizePath: true, mergeSlashes: true, escapedSlashes: 'UNESCAPE_AND_FORWARD' }),
};

/** The request goes on with this path (normalized or not) and its query (`?…` or empty). */
export interface NormalizedPath {
  readonly path: string;
  /** The query string with its `?`, or '' — `path + query` is {@link url}. */
  readonly query: string;
  /** The URL to forward: the normalized path and the original query. */
  readonly url: string;
  /** False when the raw URL needed no change (the app's URL can stay as it is). */
  readonly changed: boolean;
}

/** A {@link NormalizedPath} that slices path and query only when asked: adapters of an unchanged URL never ask. */
class Normalized implements NormalizedPath {
  constructor(readonly url: string, private readonly queryAt: number, readonly changed: boolean) {}

  get path(): string {
    return this.queryAt === this.url.length ? this.url : this.url.slice(0, this.queryAt);
  }

  get query(): string {
    return this.queryAt === this.url.length ? '' : this.url.slice(this.queryAt);
  }

  toJSON(): { path: string; query: string; changed: boolean } {
    return { path: this.path, query: this.query, changed: this.changed };
  }
}

/** Envoy answers the request itself: 400 (bad path), 404 (not an origin-form path) or 307 (redirect action). */
export interface PathLocalReply {
  readonly reject: 400 | 404 | 307;
  /** Envoy's response code details. */
  readonly details: string;
  /** The normalized URL, for a 307. */
  readonly location?: string;
}

/** What {@link normalizePath} decides. */
export type PathNormalizationResult = NormalizedPath | PathLocalReply;

/** Envoy's response code details (StreamInfo::ResponseCodeDetails). */
export const PATH_NORMALIZATION_FAILED = 'path_normalization_failed';
export const ABSOLUTE_PATH = 'absolute_path';

/** Characters no option ever rewrites or looks at twice (not `/ . % ? # \\`, nothing canonicalization escapes). */
const PLAIN = (() => {
  const t = new Uint8Array(128);
  for (let c = 0; c < 128; c++) t[c] = (TABLE[c] === PASS || TABLE[c] === UNESCAPE) && c !== 0x2f ? 1 : 0;
  return t;
})();

const SLASH = 0x2f;
const BACKSLASH = 0x5c;
const DOT = 0x2e;
const PERCENT = 0x25;
const QUESTION = 0x3f;
const HASH = 0x23;

/**
 * Normalizes a request target (`req.url`, `:path`) as the HCM does.
 * Always, whatever the settings: a `#fragment` is dropped (Istio's bootstrap
 * sets `http_reject_path_with_fragment: false`), an absolute-form target
 * (`http://host/p`) keeps only its path as Envoy's HTTP/1 codec does, and a
 * target that does not start with `/` is refused with 404 `absolute_path`.
 * The query string is never touched.
 */
export function normalizePath(raw: string, settings: PathNormalizationSettings): PathNormalizationResult {
  let url = raw;
  let changed = false;
  if (url.charCodeAt(0) !== SLASH) {
    const origin = absoluteFormPath(url);
    if (origin === undefined) return NOT_ORIGIN_FORM;
    url = origin;
    changed = true;
  }
  const q = needsWork(url, settings);
  if (q < 0) return slowPath(url, settings);
  return new Normalized(url, q, changed);
}

/**
 * The fast scan: the index where the query starts (or the length) when the
 * path is already normal under `settings`, -1 when it needs the full pipeline.
 */
function needsWork(url: string, settings: PathNormalizationSettings): number {
  const end = url.length;
  const { normalizePath: canonical, mergeSlashes: merge } = settings;
  const unescapeSlashes = settings.escapedSlashes !== 'KEEP_UNCHANGED';
  let prev = 0;
  for (let i = 0; i < end; i++) {
    const c = url.charCodeAt(i);
    // Letters, digits and the punctuation no option rewrites: one table load, the common case.
    if (c < 0x80 && PLAIN[c] === 1) { prev = c; continue; }
    if (c === QUESTION) return url.indexOf('#', i) === -1 ? i : -1;
    if (c === HASH) return -1;
    if (c === SLASH) {
      if (merge && prev === SLASH) return -1;
    } else if (c === PERCENT) {
      if (unescapeSlashes && isEscapedSlash(url, i)) return -1;
      if (canonical) {
        // An escape that canonicalization keeps as written (`%20`, `%2F`) is normal; a decodable or bad one is not.
        const v = decodeEscaped(url, i);
        if (v <= 0 || TABLE[v] === UNESCAPE || v === DOT) return -1;
        i += 2;
        prev = 0x30; // any non-slash
        continue;
      }
    } else if (canonical) {
      if (c === DOT) {
        if (prev === SLASH && !plainAfterDot(url.charCodeAt(i + 1))) return -1;
      } else if (c > 0xff || (TABLE[c]! & SPECIAL) !== 0) {
        return -1; // `\`, controls, high bytes and others canonicalization rewrites
      }
    }
    prev = c;
  }
  return end;
}

/** After `/.`, a character that makes the dot part of a name (`/.well-known`), not a dot segment. */
function plainAfterDot(c: number): boolean {
  return !(Number.isNaN(c) || c === SLASH || c === BACKSLASH || c === DOT || c === PERCENT || c === QUESTION || c === HASH);
}

const NOT_ORIGIN_FORM: PathLocalReply = Object.freeze({ reject: 404, details: ABSOLUTE_PATH });
const BAD_PATH: PathLocalReply = Object.freeze({ reject: 400, details: PATH_NORMALIZATION_FAILED });

function queryStart(url: string): number {
  const q = url.indexOf('?');
  return q === -1 ? url.length : q;
}

/** The path of `scheme://authority/path` (Envoy's codec takes it from an absolute URL); undefined otherwise. */
function absoluteFormPath(url: string): string | undefined {
  const sep = url.indexOf('://');
  if (sep <= 0) return undefined;
  const scheme = url.slice(0, sep).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return undefined;
  const rest = url.slice(sep + 3);
  const slash = rest.search(/[/?#]/);
  if (slash === -1) return '/';
  return rest.charCodeAt(slash) === SLASH ? rest.slice(slash) : `/${rest.slice(slash)}`;
}

function isEscapedSlash(s: string, i: number): boolean {
  if (s.charCodeAt(i + 1) === 0x32 /* 2 */) return (s.charCodeAt(i + 2) | 0x20) === 0x66; /* f */
  if (s.charCodeAt(i + 1) === 0x35 /* 5 */) return (s.charCodeAt(i + 2) | 0x20) === 0x63; /* c */
  return false;
}

/** The full pipeline, for a path the fast scan could not pass. */
function slowPath(url: string, settings: PathNormalizationSettings): PathNormalizationResult {
  // Fragment first, from the whole target (query included), as Envoy does.
  const hash = url.indexOf('#');
  if (hash !== -1) url = url.slice(0, hash);
  const q = queryStart(url);
  let path = url.slice(0, q);
  const query = url.slice(q);
  let redirect = false;
  if (settings.escapedSlashes !== 'KEEP_UNCHANGED') {
    const unescaped = path.replace(/%2f|%5c/gi, (m) => (m.charCodeAt(2) === 0x66 || m.charCodeAt(2) === 0x46 ? '/' : '\\'));
    if (unescaped.length !== path.length) {
      if (settings.escapedSlashes === 'REJECT_REQUEST') return BAD_PATH;
      redirect = settings.escapedSlashes === 'UNESCAPE_AND_REDIRECT';
      path = unescaped;
    }
  }
  if (settings.normalizePath) {
    const canonical = canonicalizePath(path);
    if (canonical === undefined) return BAD_PATH;
    path = canonical;
  }
  if (settings.mergeSlashes) path = mergeSlashes(path);
  if (redirect) return { reject: 307, details: PATH_NORMALIZATION_FAILED, location: path + query };
  return new Normalized(path + query, path.length, true);
}

/** Envoy's PathUtil::mergeSlashes: keeps a leading and a trailing slash, joins the non-empty segments. */
export function mergeSlashes(path: string): string {
  if (!path.includes('//')) return path;
  const prefix = path.charCodeAt(0) === SLASH ? '/' : '';
  const suffix = path.charCodeAt(path.length - 1) === SLASH ? '/' : '';
  return prefix + path.split('/').filter((s) => s.length > 0).join('/') + suffix;
}

/**
 * Istio's method rule for authorization: a method with a lower-case letter
 * is refused with 400 (Envoy's HTTP/1 parser only knows upper-case methods).
 */
export function isUpperCaseMethod(method: string): boolean {
  for (let i = 0; i < method.length; i++) {
    const c = method.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a) return false;
  }
  return true;
}
