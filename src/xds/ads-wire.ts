/**
 * The two ADS wire protocols the client speaks, as requests built from one
 * per-type subscription state and responses read into one update shape:
 * State-of-the-World (`StreamAggregatedResources`: every request names the
 * whole subscription and echoes the accepted version) and Delta
 * (`DeltaAggregatedResources`: a request carries only the names subscribed
 * and unsubscribed since the last one, the first request of a stream the
 * versions the client already has in `initial_resource_versions`, and a
 * response only the changed resources plus `removed_resources`).
 */
import * as grpc from '@grpc/grpc-js';
import type { WireAny, XdsType } from './resources.js';

/** Which ADS protocol: Envoy's ApiConfigSource api_type names, `GRPC` (SotW, the default) or `DELTA_GRPC`. */
export type AdsApiType = 'GRPC' | 'DELTA_GRPC';

/** The per-type subscription state a request is built from. */
export interface WireState {
  type: XdsType;
  wildcard: boolean;
  names: Set<string>;
  /** accepted version (SotW version_info) */
  version: string;
  /** nonce of the last response */
  nonce: string;
  /** whether that response still needs its ACK or NACK (Delta sends the nonce only then) */
  ackPending: boolean;
  /** the accepted resources, name → per-resource version (Delta) */
  versions: Map<string, string>;
  /** the subscription last sent (`*` or names joined by NUL), undefined on a new stream */
  sentNames: string | undefined;
}

/** A response of either protocol. */
export interface AdsUpdate {
  typeUrl: string;
  /** version_info (SotW) or system_version_info (Delta, the nonce when empty) */
  version: string;
  nonce: string;
  resources: Array<{ any: WireAny; version?: string }>;
  /** names the server removed (Delta) */
  removed: string[];
}

/** Whether a SotW response replaces the whole set of its type (LDS, CDS); a Delta response never does. */
export function replacesAll(api: AdsApiType, type: XdsType): boolean {
  return api === 'GRPC' && type.fullState;
}

/** The names a state subscribes to, as sent: `*` for wildcard, else the sorted names joined by NUL. */
function subscriptionKey(state: WireState): string {
  return state.wildcard ? '*' : [...state.names].sort().join('\0');
}

/**
 * The next request for `state` (and records it as sent). A Delta request
 * carries the nonce only when answering a response, so a subscription change
 * sent afterwards is a spontaneous request, as Envoy and istiod expect.
 */
export function buildRequest(api: AdsApiType, state: WireState, node: object | undefined, errorDetail: string | undefined): Record<string, unknown> {
  const previous = state.sentNames;
  state.sentNames = subscriptionKey(state);
  const req: Record<string, unknown> = { type_url: state.type.typeUrl };
  // Envoy sends the node on the first request of a stream only.
  if (node) req.node = node;
  if (errorDetail !== undefined) req.error_detail = { code: grpc.status.INVALID_ARGUMENT, message: errorDetail };
  if (api === 'GRPC') {
    req.version_info = state.version;
    req.resource_names = state.wildcard ? [] : [...state.names].sort();
    req.response_nonce = state.nonce;
    return req;
  }
  if (state.ackPending) req.response_nonce = state.nonce;
  state.ackPending = false;
  const before = previous === undefined ? new Set<string>() : new Set(previous === '*' ? ['*'] : previous.split('\0').filter(Boolean));
  const now = new Set(state.wildcard ? ['*'] : state.names);
  req.resource_names_subscribe = [...now].filter((n) => !before.has(n)).sort();
  req.resource_names_unsubscribe = [...before].filter((n) => !now.has(n)).sort();
  if (previous === undefined && state.versions.size > 0) req.initial_resource_versions = Object.fromEntries(state.versions);
  return req;
}

interface SotwResponse {
  version_info?: string;
  resources?: WireAny[];
  type_url?: string;
  nonce?: string;
}

interface DeltaResponse {
  system_version_info?: string;
  resources?: Array<{ name?: string; version?: string; resource?: WireAny }>;
  type_url?: string;
  removed_resources?: string[];
  nonce?: string;
}

/** Reads a DiscoveryResponse or DeltaDiscoveryResponse (as proto-loader decodes it). */
export function readResponse(api: AdsApiType, raw: unknown): AdsUpdate {
  if (api === 'GRPC') {
    const res = raw as SotwResponse;
    return { typeUrl: res.type_url ?? '', version: res.version_info ?? '', nonce: res.nonce ?? '', resources: (res.resources ?? []).map((any) => ({ any })), removed: [] };
  }
  const res = raw as DeltaResponse;
  const nonce = res.nonce ?? '';
  return {
    typeUrl: res.type_url ?? '',
    version: res.system_version_info || nonce,
    nonce,
    // a wrapper without a resource reads as an Any of no type, which decoding rejects (a NACK naming it)
    resources: (res.resources ?? []).map((r) => ({ any: r.resource ?? { type_url: '', value: new Uint8Array() }, ...(r.version !== undefined && { version: r.version }) })),
    removed: res.removed_resources ?? [],
  };
}
