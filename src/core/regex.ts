/**
 * Regular expressions from config and xDS, with RE2's syntax and linear-time
 * matching (re2js, a port of RE2), as Envoy's `safe_regex` and Istio's
 * validation use RE2: `(?i)` works, lookaround and backreferences are
 * refused, and no pattern can make a request backtrack for seconds.
 * Everything here runs when a snapshot is compiled; the request path only
 * calls the returned functions.
 */
import { RE2JS } from 're2js';

/** Istio refuses longer regexes (pkg/config/validation validateStringRegexp). */
export const MAX_REGEX_LENGTH = 1024;

/** A compiled full-match test. */
export type RegexTest = (value: string) => boolean;

/** Why RE2 refuses `pattern`, or undefined when it compiles. */
export function re2Problem(pattern: string): string | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (err) {
    return reasonOf(err, pattern);
  }
}

/**
 * Compiles `pattern` into a test of the WHOLE value, as Envoy's safe_regex
 * matches (RE2::FullMatch). Throws an Error whose message is RE2's reason.
 */
export function compileFullMatch(pattern: string): RegexTest {
  const re = compile(pattern);
  // Literal patterns need no engine; the test is the same as RE2's on any string.
  const literal = literalOf(pattern);
  if (literal !== undefined) return (value) => value === literal;
  if (pattern.endsWith('.*')) {
    const prefix = literalOf(pattern.slice(0, -2));
    // `.` is every character but \n (RE2 without the s flag).
    if (prefix !== undefined) return (value) => value.startsWith(prefix) && value.indexOf('\n', prefix.length) < 0;
  }
  return (value) => re.testExact(value);
}

/**
 * Envoy's regex_rewrite: every match of `pattern` replaced by `substitution`,
 * where `\0`…`\9` name capture groups and `\\` is a backslash
 * (RE2::GlobalReplace and RE2::Rewrite). Throws when either is refused.
 */
export function compileRegexRewrite(pattern: string, substitution: string): (value: string) => string {
  const re = compile(pattern);
  let parts: Array<string | number>;
  try {
    parts = rewriteParts(substitution, re.groupCount());
  } catch (err) {
    throw Object.assign(err as Error, { field: 'substitution' });
  }
  return (value) => globalReplace(re, parts, value);
}

/** The field of a regex_rewrite an error from {@link compileRegexRewrite} is about. */
export function rewriteErrorField(err: unknown): 'pattern.regex' | 'substitution' {
  return (err as { field?: string }).field === 'substitution' ? 'substitution' : 'pattern.regex';
}

function compile(pattern: string): RE2JS {
  try {
    return RE2JS.compile(pattern);
  } catch (err) {
    throw new Error(reasonOf(err, pattern));
  }
}

function reasonOf(err: unknown, pattern: string): string {
  const message = (err as Error).message;
  const hint = /\(\?<?[=!]/.test(pattern) ? ' (lookahead and lookbehind are not RE2 syntax)'
    : /\\[1-9]/.test(pattern) ? ' (backreferences are not RE2 syntax)'
    : '';
  return `invalid RE2 regex ${JSON.stringify(pattern)}: ${message}${hint}; Envoy and Istio use RE2 (https://github.com/google/re2/wiki/Syntax)`;
}

/**
 * The string a pattern matches when it is a plain literal: no operators, and
 * escapes only of ASCII punctuation (which RE2 reads as the character itself).
 */
function literalOf(pattern: string): string | undefined {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern.charCodeAt(i);
    if (c === 92 /* \ */) {
      const n = pattern.charCodeAt(i + 1);
      if (!(n >= 33 && n <= 47) && !(n >= 58 && n <= 64) && !(n >= 91 && n <= 96) && !(n >= 123 && n <= 126)) return undefined;
      out += pattern[++i];
      continue;
    }
    if (OPERATORS.includes(pattern[i]!)) return undefined;
    out += pattern[i];
  }
  return out;
}

const OPERATORS = '.+*?()|[]{}^$';

/** A substitution split into literal text and group numbers, checked against the pattern's groups. */
function rewriteParts(substitution: string, groups: number): Array<string | number> {
  const parts: Array<string | number> = [];
  let text = '';
  for (let i = 0; i < substitution.length; i++) {
    const c = substitution[i]!;
    if (c !== '\\') {
      text += c;
      continue;
    }
    const n = substitution[++i];
    if (n === '\\') {
      text += '\\';
    } else if (n !== undefined && n >= '0' && n <= '9') {
      const group = Number(n);
      if (group > groups) throw new Error(`substitution ${JSON.stringify(substitution)} names group \\${group}, but the pattern has ${groups}`);
      if (text) parts.push(text);
      text = '';
      parts.push(group);
    } else {
      throw new Error(`substitution ${JSON.stringify(substitution)}: invalid rewrite pattern (a backslash must be followed by a digit or a backslash)`);
    }
  }
  if (text) parts.push(text);
  return parts;
}

/** RE2::GlobalReplace: an empty match right after the previous match is skipped. */
function globalReplace(re: RE2JS, parts: ReadonlyArray<string | number>, value: string): string {
  const m = re.matcher(value);
  let out = '';
  let p = 0;
  let lastEnd = -1;
  let count = 0;
  while (p <= value.length && m.find(p)) {
    const start = m.start();
    const end = m.end();
    if (p < start) out += value.slice(p, start);
    if (start === lastEnd && start === end) {
      if (p >= value.length) break;
      const width = (value.codePointAt(p) ?? 0) > 0xffff ? 2 : 1;
      out += value.slice(p, p + width);
      p += width;
      continue;
    }
    for (const part of parts) out += typeof part === 'string' ? part : (m.group(part) ?? '');
    p = end;
    lastEnd = end;
    count++;
  }
  if (count === 0) return value;
  return p < value.length ? out + value.slice(p) : out;
}
