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
 * The canonicalization follows the Chromium URL path canonicalizer Envoy
 * uses (url_canon_path.cc): its character table, its `%2e` dots and its
 * nested-escape guard. An already-normal path costs one scan of its
 * characters and no allocation besides the result object.
 */

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

// Chromium's kPathCharLookup flags.
const PASS = 0;
const SPECIAL = 1;
const ESCAPE = 2 | SPECIAL;
const UNESCAPE = 4;
const INVALID = 8 | SPECIAL;

/** Chromium's path character table (url_canon_path.cc): what canonicalization does with each byte. */
const TABLE = (() => {
  const t = new Uint8Array(256).fill(ESCAPE); // controls and every high-bit byte are escaped
  t[0] = INVALID;
  const set = (chars: string, flag: number) => { for (const c of chars) t[c.charCodeAt(0)] = flag; };
  set("!$&'()*+,/:;=@[]", PASS);
  set(' "#%<>?\\^`{|}', ESCAPE);
  set('-_~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', UNESCAPE);
  t[0x2e] = SPECIAL; // '.': dot segments
  t[0x7f] = ESCAPE;
  return t;
})();

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

const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

/** Chromium's DecodeEscaped: the byte of `%XX` at `i`, or -1. */
function decodeEscaped(s: string, i: number): number {
  if (i + 3 > s.length) return -1;
  const hi = hexValue(s.charCodeAt(i + 1));
  const lo = hexValue(s.charCodeAt(i + 2));
  return hi < 0 || lo < 0 ? -1 : (hi << 4) | lo;
}

/** Chromium's IsDot: 1 for `.`, 3 for `%2e` / `%2E`, else 0. */
function dotLength(s: string, i: number, end: number): number {
  const c = s.charCodeAt(i);
  if (c === DOT) return 1;
  if (c === PERCENT && i + 3 <= end && s.charCodeAt(i + 1) === 0x32 && (s.charCodeAt(i + 2) | 0x20) === 0x65) return 3;
  return 0;
}

function isUrlSlash(c: number): boolean {
  return c === SLASH || c === BACKSLASH;
}

/** Escapes one character as Chromium's AppendEscapedChar (upper-case hex; UTF-8 above 0xFF). */
function escaped(s: string, i: number): { text: string; length: number } | undefined {
  const c = s.charCodeAt(i);
  if (c <= 0xff) return { text: `%${HEX[c >> 4]}${HEX[c & 15]}`, length: 1 };
  const cp = s.codePointAt(i)!;
  const ch = String.fromCodePoint(cp);
  try {
    return { text: encodeURIComponent(ch), length: ch.length };
  } catch {
    return undefined; // a lone surrogate has no UTF-8 form
  }
}

/**
 * Chromium's CanonicalizePath (DoPath + DoPartialPath), which Envoy's
 * `normalize_path` runs: dot segments (`.`, `..`, `%2e`), `\` as `/`,
 * unreserved escapes decoded once, other escapes kept as written, bytes
 * that must be escaped escaped. Undefined when the path is invalid (`%00`).
 */
export function canonicalizePath(path: string): string | undefined {
  const end = path.length;
  if (end === 0) return '/';
  let out = isUrlSlash(path.charCodeAt(0)) ? '' : '/';
  let lastInvalidPercent = -10;
  let ok = true;
  for (let i = 0; i < end; i++) {
    const c = path.charCodeAt(i);
    const flags = c <= 0xff ? TABLE[c]! : ESCAPE;
    if ((flags & SPECIAL) === 0) {
      out += path[i];
      continue;
    }
    const dot = dotLength(path, i, end);
    if (dot > 0) {
      if (out.charCodeAt(out.length - 1) === SLASH) {
        const after = i + dot;
        let consumed = 0;
        let kind: 'file' | 'current' | 'up' = 'file';
        if (after === end) kind = 'current';
        else if (isUrlSlash(path.charCodeAt(after))) { kind = 'current'; consumed = 1; } else {
          const second = dotLength(path, after, end);
          if (second > 0) {
            const next = after + second;
            if (next === end) { kind = 'up'; consumed = second; } else if (isUrlSlash(path.charCodeAt(next))) { kind = 'up'; consumed = second + 1; }
          }
        }
        if (kind === 'file') {
          out += '.';
          i += dot - 1;
        } else {
          if (kind === 'up') out = backUpToPreviousSlash(out);
          i += dot + consumed - 1;
        }
      } else {
        out += '.';
        i += dot - 1;
      }
    } else if (c === BACKSLASH) {
      out += '/';
    } else if (c === PERCENT) {
      const value = decodeEscaped(path, i);
      if (value >= 0) {
        i += 2;
        if ((TABLE[value]! & UNESCAPE) !== 0) {
          out += String.fromCharCode(value);
          if (lastInvalidPercent >= out.length - 3) out = checkForNestedEscapes(path, i + 1, end, lastInvalidPercent, out);
        } else {
          // Kept as written: the server may care about the case of its hex digits.
          out += `%${path[i - 1]}${path[i]}`;
          if (TABLE[value] === INVALID) ok = false;
        }
      } else {
        lastInvalidPercent = out.length;
        out += '%';
      }
    } else {
      const e = escaped(path, i);
      if (e === undefined) return undefined;
      out += e.text;
      i += e.length - 1;
      if (flags === INVALID) ok = false;
    }
  }
  return ok ? out : undefined;
}

/** Drops the last segment of `out` (which ends in `/`), never above the first slash. */
function backUpToPreviousSlash(out: string): string {
  let i = out.length - 1;
  if (i === 0) return out;
  i--;
  while (i > 0 && out.charCodeAt(i) !== SLASH) i--;
  return out.slice(0, i + 1);
}

/**
 * Chromium's CheckForNestedEscapes: after decoding next to an earlier stray
 * `%`, make sure the output does not now read as a valid escape (`%%30` + `0`
 * would be `%00` to the next decoder); if it would, that `%` becomes `%25`.
 */
function checkForNestedEscapes(path: string, next: number, end: number, percent: number, out: string): string {
  const length = out.length;
  const lastUnescaped = out[length - 1]!;
  const appendNext = percent === length - 2;
  let o = out;
  if (appendNext) {
    if (next === end || path.charCodeAt(next) >= 0x80) return out;
    o += path[next];
  }
  if (decodeEscaped(o, percent) >= 0) {
    if (!appendNext) o += o[percent + 1];
    o = `${o.slice(0, percent + 1)}25${o.slice(percent + 3)}${lastUnescaped}`;
    return o;
  }
  return out;
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
