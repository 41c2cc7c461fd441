/**
 * Reading and rewriting the request headers undici hands a dispatcher: a
 * plain object (any case), a flat [name, value, …] array, or nothing.
 */
import type { HeaderMutation } from '../core/route.js';

export type RawHeaders = Record<string, string | string[] | undefined> | string[] | null | undefined;

/** Looks a header up case-insensitively; `name` must be lower-case. */
export function getHeader(headers: RawHeaders, name: string): string | undefined {
  if (!headers) return undefined;
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() === name) return headers[i + 1];
    return undefined;
  }
  const direct = headers[name];
  if (direct !== undefined) return Array.isArray(direct) ? direct.join(',') : direct;
  for (const key in headers) {
    if (key.length === name.length && key.toLowerCase() === name) {
      const v = headers[key];
      return Array.isArray(v) ? v.join(',') : v;
    }
  }
  return undefined;
}

/**
 * Builds the outbound header object: a lower-cased copy of the caller's
 * headers with the route's mutations and the authority preserved as `host`
 * (the attempt connects to an endpoint address, but the upstream must see the
 * service's name, as behind a sidecar).
 */
export function outboundHeaders(headers: RawHeaders, host: string, mutations: readonly HeaderMutation[], extra: Record<string, string> | undefined): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) appendHeader(out, headers[i]!.toLowerCase(), headers[i + 1]!);
  } else if (headers) {
    for (const key in headers) {
      const v = headers[key];
      if (v !== undefined) out[key.toLowerCase()] = v;
    }
  }
  out.host = host;
  for (const m of mutations) {
    for (const name of m.remove) delete out[name];
    for (const [name, value, overwrite] of m.add) {
      if (overwrite || out[name] === undefined) out[name] = value;
      else appendHeader(out, name, value);
    }
  }
  if (extra) for (const key in extra) out[key] = extra[key]!;
  return out;
}

function appendHeader(out: Record<string, string | string[]>, name: string, value: string): void {
  const prev = out[name];
  if (prev === undefined) out[name] = value;
  else if (Array.isArray(prev)) prev.push(value);
  else out[name] = [prev, value];
}

/** Applies response header mutations to undici's raw header list (alternating Buffers). */
export function mutateRawHeaders(raw: Buffer[], mutations: readonly HeaderMutation[], extra: readonly Buffer[] | undefined): Buffer[] {
  let out = raw;
  for (const m of mutations) {
    if (m.remove.length === 0 && m.add.length === 0) continue;
    if (out === raw) out = raw.slice();
    if (m.remove.length > 0 || m.add.some((a) => a[2])) {
      const drop = new Set([...m.remove, ...m.add.filter((a) => a[2]).map((a) => a[0])]);
      const kept: Buffer[] = [];
      for (let i = 0; i < out.length; i += 2) if (!drop.has(out[i]!.toString('latin1').toLowerCase())) kept.push(out[i]!, out[i + 1]!);
      out = kept;
    }
    for (const [name, value] of m.add) out.push(Buffer.from(name, 'latin1'), Buffer.from(value, 'latin1'));
  }
  if (extra && extra.length > 0) {
    if (out === raw) out = raw.slice();
    out.push(...extra);
  }
  return out;
}

/**
 * A request header as Envoy's matchers see it: every occurrence, joined with
 * `,` (HeaderUtility::getAllOfHeaderAsString). node keeps only the first of
 * some repeated headers (user-agent, authorization…) and joins others with
 * `, `, so the raw header list is read when the name appears more than once.
 * `name` must be lower-case.
 */
export function joinedHeader(req: { headers: Record<string, string | string[] | undefined>; rawHeaders?: readonly string[] }, name: string): string | undefined {
  const v = req.headers[name];
  if (v === undefined) return undefined;
  const raw = req.rawHeaders;
  if (raw === undefined) return Array.isArray(v) ? v.join(',') : v;
  let first: string | undefined;
  let joined: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i]!;
    if (key.length !== name.length || key.toLowerCase() !== name) continue;
    if (first === undefined) first = raw[i + 1]!;
    else joined = `${joined ?? first},${raw[i + 1]!}`;
  }
  return joined ?? first ?? (Array.isArray(v) ? v.join(',') : v);
}
