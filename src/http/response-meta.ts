/**
 * Reads and strips the mesh's own response headers (Istio metadata exchange)
 * from undici's raw header list, without decoding every header name.
 */
import { PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER } from '../telemetry/peer-metadata.js';

const metaLength = PEER_METADATA_HEADER.length;
const idLength = PEER_METADATA_ID_HEADER.length;

/**
 * Returns the upstream's `x-envoy-peer-metadata` value and the header list
 * without the metadata-exchange pair (the app never sees them, as behind a sidecar).
 */
export function takePeerMetadata(raw: Buffer[]): { value: string | undefined; headers: Buffer[] } {
  let value: string | undefined;
  let found = false;
  for (let i = 0; i < raw.length; i += 2) {
    const len = raw[i]!.length;
    if (len !== metaLength && len !== idLength) continue;
    const name = raw[i]!.toString('latin1').toLowerCase();
    if (name === PEER_METADATA_HEADER) value = raw[i + 1]!.toString('latin1');
    else if (name !== PEER_METADATA_ID_HEADER) continue;
    found = true;
  }
  if (!found) return { value, headers: raw };
  const kept: Buffer[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.length === metaLength || raw[i]!.length === idLength ? raw[i]!.toString('latin1').toLowerCase() : '';
    if (name !== PEER_METADATA_HEADER && name !== PEER_METADATA_ID_HEADER) kept.push(raw[i]!, raw[i + 1]!);
  }
  return { value, headers: kept };
}
