/**
 * Envoy-style local replies: the mesh answers the caller itself (timeout,
 * fault abort, no healthy upstream, …) with a status, a short text body and
 * the `x-meshlet-flags` response flag — or, with `localReplies: 'throw'`, a
 * typed MeshError.
 */
import { STATUS_CODES } from 'node:http';
import { localReplyErrorFor, MeshError, type ResponseFlag } from '../errors.js';
import type { LegacyHandler } from './handler.js';

export type LocalReplyMode = 'response' | 'throw';

const flagName = Buffer.from('x-meshlet-flags', 'latin1');
const contentType = Buffer.from('content-type', 'latin1');
const textPlain = Buffer.from('text/plain', 'latin1');
const contentLength = Buffer.from('content-length', 'latin1');
const flagValues = new Map<string, Buffer>();

/** A header record as undici's raw `[name, value, …]` buffers, for a local reply's extra headers. */
export function rawHeaders(headers: Record<string, string>): Buffer[] {
  const out: Buffer[] = [];
  for (const key in headers) out.push(Buffer.from(key, 'latin1'), Buffer.from(headers[key]!, 'latin1'));
  return out;
}

/** The header pair `x-meshlet-flags: <flag>` as raw Buffers (cached per flag). */
export function flagHeader(flag: string): [Buffer, Buffer] {
  let value = flagValues.get(flag);
  if (!value) flagValues.set(flag, (value = Buffer.from(flag, 'latin1')));
  return [flagName, value];
}

/** Sends a local reply to a handler whose onConnect was already called. */
export function sendLocalReply(handler: LegacyHandler, mode: LocalReplyMode, flag: ResponseFlag, status: number, message: string, extraHeaders?: Buffer[]): void {
  if (mode === 'throw') {
    const cls = localReplyErrorFor(flag);
    handler.onError(cls ? new cls(message, status) : new MeshError('MESH_LOCAL_REPLY', message, flag, status));
    return;
  }
  sendResponse(handler, status, message, [...flagHeader(flag), ...(extraHeaders ?? [])]);
}

/** Sends a complete small text response (local replies, direct responses). */
export function sendResponse(handler: LegacyHandler, status: number, text: string, extraHeaders: Buffer[] | undefined): void {
  const body = Buffer.from(text, 'utf8');
  const raw = [contentType, textPlain, contentLength, Buffer.from(String(body.length), 'latin1'), ...(extraHeaders ?? [])];
  // Back-pressure is irrelevant for a body this small: deliver it whatever onHeaders returns.
  handler.onHeaders?.(status, raw, noop, STATUS_CODES[status] ?? '');
  if (body.length > 0) handler.onData?.(body);
  handler.onComplete?.([]);
}

function noop(): void {}
