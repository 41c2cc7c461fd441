/**
 * The bytes of State-of-the-World and Delta DiscoveryResponses, written by
 * hand: a push writes one response per client, and protobufjs re-encoded
 * every resource's Any wrapper and copied the body once more to add the
 * client's nonce. Here a body is one allocation filled in field order, each
 * Any written around the resource's shared value bytes — the bytes protobufjs
 * writes — with the nonce appended last in a single copy (protobuf accepts
 * fields in any order; test/control-plane/xds-wire.test.ts compares both).
 *
 * DiscoveryResponse: version_info = 1, resources = 2 (Any: type_url = 1,
 * value = 2), type_url = 4, nonce = 5, control_plane = 6 (identifier = 1).
 * DeltaDiscoveryResponse: system_version_info = 1, resources = 2 (Resource:
 * version = 1, resource = 2, name = 3), type_url = 4, nonce = 5,
 * removed_resources = 6, control_plane = 7.
 */
import type { EncodedResource } from './encoding-cache.js';

/** control_plane { identifier: "meshlet" }: field 6 of a DiscoveryResponse, 7 of a DeltaDiscoveryResponse. */
const CONTROL_PLANE = Buffer.from([0x32, 9, 0x0a, 7, ...Buffer.from('meshlet', 'latin1')]);
const DELTA_CONTROL_PLANE = Buffer.from([0x3a, 9, 0x0a, 7, ...Buffer.from('meshlet', 'latin1')]);

/** The body of a response without its nonce: version_info, resources, type_url, control_plane. */
export function encodeSotwBody(version: string, resources: readonly EncodedResource[], typeUrl: string): Buffer {
  const v = Buffer.from(version, 'utf8');
  const t = Buffer.from(typeUrl, 'utf8');
  // Each resource is an Any written around its shared value bytes (no per-resource copy is kept).
  let size = fieldSize(v.length) + fieldSize(t.length) + CONTROL_PLANE.length;
  for (const r of resources) size += fieldSize(anySize(r, typeUrl, t));
  const out = Buffer.allocUnsafe(size);
  let at = writeField(out, 0, 0x0a, v);
  for (const r of resources) {
    const any = r.any.type_url === typeUrl ? t : Buffer.from(r.any.type_url, 'utf8');
    at = writeHead(out, at, 0x12, fieldSize(any.length) + fieldSize(r.any.value.length));
    at = writeField(out, at, 0x0a, any);
    at = writeField(out, at, 0x12, r.any.value);
  }
  at = writeField(out, at, 0x22, t);
  CONTROL_PLANE.copy(out, at);
  return out;
}

/** The body of a DeltaDiscoveryResponse without its nonce: each resource as a Resource around its shared Any bytes. */
export function encodeDeltaBody(version: string, resources: ReadonlyArray<readonly [string, EncodedResource]>, typeUrl: string, removed: readonly string[]): Buffer {
  const v = Buffer.from(version, 'utf8');
  const t = Buffer.from(typeUrl, 'utf8');
  let size = fieldSize(v.length) + fieldSize(t.length) + DELTA_CONTROL_PLANE.length;
  for (const [name, r] of resources) size += fieldSize(resourceSize(name, r, typeUrl, t));
  for (const n of removed) size += fieldSize(Buffer.byteLength(n, 'utf8'));
  const out = Buffer.allocUnsafe(size);
  let at = writeField(out, 0, 0x0a, v);
  for (const [name, r] of resources) {
    const any = r.any.type_url === typeUrl ? t : Buffer.from(r.any.type_url, 'utf8');
    at = writeHead(out, at, 0x12, resourceSize(name, r, typeUrl, t));
    at = writeText(out, at, 0x0a, r.hash);
    at = writeHead(out, at, 0x12, fieldSize(any.length) + fieldSize(r.any.value.length));
    at = writeField(out, at, 0x0a, any);
    at = writeField(out, at, 0x12, r.any.value);
    at = writeText(out, at, 0x1a, name);
  }
  at = writeField(out, at, 0x22, t);
  for (const n of removed) at = writeText(out, at, 0x32, n);
  DELTA_CONTROL_PLANE.copy(out, at);
  return out;
}

/** A Resource message's size: version (the hash), the Any, the name. */
function resourceSize(name: string, r: EncodedResource, typeUrl: string, typeUrlBytes: Buffer): number {
  return fieldSize(Buffer.byteLength(r.hash, 'utf8')) + fieldSize(anySize(r, typeUrl, typeUrlBytes)) + fieldSize(Buffer.byteLength(name, 'utf8'));
}

/** The Any message's size: type_url and value fields. */
function anySize(r: EncodedResource, typeUrl: string, typeUrlBytes: Buffer): number {
  const url = r.any.type_url === typeUrl ? typeUrlBytes.length : Buffer.byteLength(r.any.type_url, 'utf8');
  return fieldSize(url) + fieldSize(r.any.value.length);
}

/** Appends the nonce field (nonce = 5 in both responses) to a prepared body, in one copy. */
export function withNonce(body: Buffer, nonce: string): Buffer {
  const n = Buffer.from(nonce, 'utf8');
  const out = Buffer.allocUnsafe(body.length + fieldSize(n.length));
  body.copy(out, 0);
  writeField(out, body.length, 0x2a, n);
  return out;
}

/** Bytes of a length-delimited field with a one-byte tag. */
function fieldSize(length: number): number {
  return 1 + varintSize(length) + length;
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) { n = Math.floor(n / 128); size++; }
  return size;
}

/** A one-byte tag and a varint length. */
function writeHead(out: Buffer, at: number, tag: number, length: number): number {
  out[at++] = tag;
  let n = length;
  while (n >= 0x80) { out[at++] = (n & 0x7f) | 0x80; n = Math.floor(n / 128); }
  out[at++] = n;
  return at;
}

function writeField(out: Buffer, at: number, tag: number, bytes: Buffer): number {
  at = writeHead(out, at, tag, bytes.length);
  return at + bytes.copy(out, at);
}

function writeText(out: Buffer, at: number, tag: number, text: string): number {
  at = writeHead(out, at, tag, Buffer.byteLength(text, 'utf8'));
  return at + out.write(text, at, 'utf8');
}
