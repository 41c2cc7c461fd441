/**
 * Decoding large resources without blocking the event loop. A
 * ClusterLoadAssignment of 100,000 endpoints is one protobuf message; decoded
 * at once it holds the loop for hundreds of milliseconds. Here its wire form
 * is walked (protobufjs' Reader): each LbEndpoint is decoded on its own, a
 * slice at a time, and the few remaining fields of the assignment and its
 * localities are decoded from what is left. The result is the object
 * `decodeAny` gives (config/envoy.ts shapes).
 *
 * Every resource type keeps its name in field 1 (Listener.name,
 * RouteConfiguration.name, Cluster.name, ClusterLoadAssignment.cluster_name),
 * which {@link peekName} reads without decoding the rest: the ADS client uses
 * it to keep an unchanged resource's object, so the compile reuses what was
 * compiled from it.
 */
import protobuf from 'protobufjs';
import { envoyRoot, protoObjectOptions } from './protos.js';
import { runNow, type SliceBudget, type Sliced } from '../core/slices.js';

const LENGTH_DELIMITED = 2;
/** ClusterLoadAssignment.endpoints and LocalityLbEndpoints.lb_endpoints */
const ENDPOINTS_FIELD = 2;
/** LbEndpoint.metadata */
const METADATA_FIELD = 3;

/** Field 1 as a string, when it is one (the name of every xDS resource type). */
export function peekName(bytes: Uint8Array): string | undefined {
  const r = protobuf.Reader.create(bytes);
  try {
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag >>> 3 === 1 && (tag & 7) === LENGTH_DELIMITED) return r.string();
      r.skipType(tag & 7);
    }
  } catch {
    // Not well-formed: the full decode reports it.
  }
  return undefined;
}

interface Types {
  assignment: protobuf.Type;
  locality: protobuf.Type;
  lbEndpoint: protobuf.Type;
  metadata: protobuf.Type;
}

let types: Types | undefined;

function endpointTypes(): Types {
  if (types) return types;
  const root = envoyRoot();
  types = {
    assignment: root.lookupType('envoy.config.endpoint.v3.ClusterLoadAssignment'),
    locality: root.lookupType('envoy.config.endpoint.v3.LocalityLbEndpoints'),
    lbEndpoint: root.lookupType('envoy.config.endpoint.v3.LbEndpoint'),
    metadata: root.lookupType('envoy.config.core.v3.Metadata'),
  };
  return types;
}

/**
 * Decodes an encoded ClusterLoadAssignment, yielding after every
 * `budget.size` endpoints. Throws as protobufjs does on malformed input.
 */
export function* decodeAssignmentSliced(bytes: Uint8Array, budget: SliceBudget): Sliced<Record<string, unknown>> {
  const t = endpointTypes();
  const localities: Array<Record<string, unknown>> = [];
  const shared: SharedMetadata = new Map();
  const rest = yield* splitField(bytes, ENDPOINTS_FIELD, function* (sub) {
    localities.push(yield* decodeLocality(sub, t, budget, shared));
  });
  const assignment = t.assignment.toObject(t.assignment.decode(rest), protoObjectOptions);
  // As toObject with defaults off: an empty repeated field is absent.
  if (localities.length > 0) assignment.endpoints = localities;
  return assignment;
}

/**
 * Endpoint metadata by its bytes: a deployment's endpoints mostly carry the
 * same labels, so they share one decoded (read-only) object, as translation
 * shares them (config/translate-endpoints.ts) — less garbage, and the
 * compile's labels cache (keyed by that object) converts each once.
 */
type SharedMetadata = Map<string, Record<string, unknown>>;

function* decodeLocality(bytes: Uint8Array, t: Types, budget: SliceBudget, shared: SharedMetadata): Sliced<Record<string, unknown>> {
  const lbEndpoints: Array<Record<string, unknown>> = [];
  const rest = yield* splitField(bytes, ENDPOINTS_FIELD, function* (sub) {
    lbEndpoints.push(decodeLbEndpoint(sub, t, shared));
    if (budget.spend()) yield;
  });
  const locality = t.locality.toObject(t.locality.decode(rest), protoObjectOptions);
  if (lbEndpoints.length > 0) locality.lb_endpoints = lbEndpoints;
  return locality;
}

function decodeLbEndpoint(bytes: Uint8Array, t: Types, shared: SharedMetadata): Record<string, unknown> {
  const metadata: Uint8Array[] = [];
  const rest = runNow(splitField(bytes, METADATA_FIELD, function* (sub) { metadata.push(sub); }));
  // Metadata repeated on the wire merges (protobuf rules): rare, decoded whole.
  if (metadata.length !== 1) return t.lbEndpoint.toObject(t.lbEndpoint.decode(bytes), protoObjectOptions);
  const lbEndpoint = t.lbEndpoint.toObject(t.lbEndpoint.decode(rest), protoObjectOptions);
  const key = Buffer.from(metadata[0]!.buffer, metadata[0]!.byteOffset, metadata[0]!.byteLength).toString('latin1');
  let decoded = shared.get(key);
  if (!decoded) shared.set(key, (decoded = t.metadata.toObject(t.metadata.decode(metadata[0]!), protoObjectOptions)));
  lbEndpoint.metadata = decoded;
  return lbEndpoint;
}

/**
 * Hands every occurrence of length-delimited field `field` to `each`, in
 * order, and returns the message's other fields, re-assembled in their order.
 */
function* splitField(bytes: Uint8Array, field: number, each: (sub: Uint8Array) => Sliced<void>): Sliced<Uint8Array> {
  const r = protobuf.Reader.create(bytes);
  const others: Uint8Array[] = [];
  let othersLength = 0;
  while (r.pos < r.len) {
    const start = r.pos;
    const tag = r.uint32();
    if (tag >>> 3 === field && (tag & 7) === LENGTH_DELIMITED) {
      const length = r.uint32();
      if (r.pos + length > r.len) throw new RangeError(`index out of range: ${r.pos} + ${length} > ${r.len}`);
      const sub = bytes.subarray(r.pos, r.pos + length);
      r.pos += length;
      yield* each(sub);
    } else {
      r.skipType(tag & 7);
      const part = bytes.subarray(start, r.pos);
      others.push(part);
      othersLength += part.length;
    }
  }
  if (others.length === 1) return others[0]!;
  const out = new Uint8Array(othersLength);
  let at = 0;
  for (const part of others) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
