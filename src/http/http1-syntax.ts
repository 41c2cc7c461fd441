/**
 * HTTP/1.1 syntax checks shared by the agent's request reader and response
 * writer (RFC 9110 §5.6.2 tokens, §5.5 field values; RFC 9112 chunk sizes):
 * lookup tables and loops over the characters of each header.
 */

/**
 * RFC 9110 token characters (method, header name): `!#$%&'*+-.^_`|~`, digits, letters.
 * A table, so validating a name is one lookup per character.
 */
export const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TOKEN[c.charCodeAt(0)] = 1;

/** Hex digit values, -1 for anything else. */
export const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX['0123456789abcdef'.charCodeAt(i)] = i;
  HEX['0123456789ABCDEF'.charCodeAt(i)] = i;
}

/** An authority as a Host header or absolute-form target may carry it (RFC 3986 reg-name, IP literal, port). */
export const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?$/;

export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 256 || TOKEN[c] !== 1) return false;
  }
  return true;
}

/** What node's client allows in a path (`[\u0021-\u00ff]`), minus DEL. */
export function isTarget(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 32 || c === 127) return false;
  }
  return true;
}

/** RFC 9110 field-value: VCHAR, obs-text, SP and HTAB; no CR, LF, NUL or other controls. */
export function isFieldValue(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if ((c < 32 && c !== 9) || c === 127) return false;
  }
  return true;
}

export function isWhitespace(c: number): boolean {
  return c === 32 || c === 9;
}

/** `token` is one of the comma-separated list elements of `list` (lower-case both). */
export function hasToken(list: string, token: string): boolean {
  if (list === token) return true;
  for (const part of list.split(',')) if (part.trim() === token) return true;
  return false;
}

export function validName(name: Buffer): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) if (TOKEN[name[i]!] !== 1) return false;
  return true;
}

/** No CR, LF, NUL or other controls but HTAB: a value cannot end its line early. */
export function validValue(value: Buffer): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if ((c < 32 && c !== 9) || c === 127) return false;
  }
  return true;
}

export function validText(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 32 && c !== 9) || c === 127 || c > 255) return false;
  }
  return true;
}
