/**
 * Chromium's URL path canonicalizer (url/url_canon_path.cc), which Envoy's
 * HttpConnectionManager `normalize_path` runs (Envoy's snapshot of it lives
 * in source/common/chromium_url): its character table, `%2e` as a dot,
 * backslash as a slash, unreserved escapes decoded once, the nested-escape
 * guard, and `%00` as the one invalid escape. Our own code, written from
 * reading theirs.
 */

const SLASH = 0x2f;
const BACKSLASH = 0x5c;
const DOT = 0x2e;
const PERCENT = 0x25;

// Chromium's kPathCharLookup flags.
export const PASS = 0;
export const SPECIAL = 1;
const ESCAPE = 2 | SPECIAL;
export const UNESCAPE = 4;
const INVALID = 8 | SPECIAL;

/** Chromium's path character table (url_canon_path.cc): what canonicalization does with each byte. */
export const TABLE = (() => {
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


const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

/** Chromium's DecodeEscaped: the byte of `%XX` at `i`, or -1. */
export function decodeEscaped(s: string, i: number): number {
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
