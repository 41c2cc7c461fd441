/**
 * What a gRPC call puts on the wire, as Istio's metrics count it: messages
 * (each a frame with a 5-byte length prefix) and metadata, and the
 * metadata-exchange entries taken off the metadata the app sees.
 */
import type { Metadata } from '@grpc/grpc-js';
import { PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER } from '../telemetry/peer-metadata.js';

/** gRPC's length-prefixed message framing: 1 byte compressed flag, 4 bytes length. */
export const GRPC_FRAME_PREFIX = 5;

/**
 * The metadata's size as header bytes: `name: value\r\n` per entry, the
 * HTTP/1.1 form of the headers. Envoy counts HPACK-compressed HTTP/2 frames,
 * which a grpc-js interceptor cannot see; this is their uncompressed size.
 */
export function metadataBytes(metadata: Metadata): number {
  let n = 0;
  const map = metadata.toHttp2Headers();
  for (const name of Object.keys(map)) {
    const v = map[name];
    const values = Array.isArray(v) ? v : [v];
    for (const value of values) n += name.length + String(value).length + 4;
  }
  return n;
}

/** Removes the metadata-exchange entries and returns the peer's `x-envoy-peer-metadata` value. */
export function takeGrpcPeerMetadata(metadata: Metadata): string | undefined {
  const values = metadata.get(PEER_METADATA_HEADER);
  if (values.length === 0 && metadata.get(PEER_METADATA_ID_HEADER).length === 0) return undefined;
  metadata.remove(PEER_METADATA_HEADER);
  metadata.remove(PEER_METADATA_ID_HEADER);
  const v = values[0];
  return typeof v === 'string' ? v : undefined;
}
