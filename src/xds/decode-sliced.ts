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
import type { SliceBudget, Sliced } from '../core/slices.js';

const LENGTH_DELIMITED = 2;
/** ClusterLoadAssignment.endpoints and LocalityLbEndpoints.lb_endpoints */
const ENDPOINTS_FIELD = 2;

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
  endpoint: protobuf.Type;
  metadata: protobuf.Type;
  uint32: protobuf.Type;
  healthStatus: Record<number, string>;
}

let types: Types | undefined;

function endpointTypes(): Types {
  if (types) return types;
  const root = envoyRoot();
  const lbEndpoint = root.lookupType('envoy.config.endpoint.v3.LbEndpoint');
  types = {
    assignment: root.lookupType('envoy.config.endpoint.v3.ClusterLoadAssignment'),
    locality: root.lookupType('envoy.config.endpoint.v3.LocalityLbEndpoints'),
    endpoint: root.lookupType('envoy.config.endpoint.v3.Endpoint'),
    metadata: root.lookupType('envoy.config.core.v3.Metadata'),
    uint32: root.lookupType('google.protobuf.UInt32Value'),
    healthStatus: (lbEndpoint.fields.health_status!.resolvedType as protobuf.Enum).valuesById,
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
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const rest = yield* splitField(bytes, ENDPOINTS_FIELD, function* (sub) {
    localities.push(yield* decodeLocality(sub, t, budget, shared, buffer, sub.byteOffset - bytes.byteOffset));
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

function* decodeLocality(bytes: Uint8Array, t: Types, budget: SliceBudget, shared: SharedMetadata, buffer: Buffer, offset: number): Sliced<Record<string, unknown>> {
  const lbEndpoints: Array<Record<string, unknown>> = [];
  const rest = yield* splitField(bytes, ENDPOINTS_FIELD, function* (sub) {
    lbEndpoints.push(decodeLbEndpoint(sub, t, shared, buffer, offset + (sub.byteOffset - bytes.byteOffset)));
    if (budget.spend()) yield;
  });
  const locality = t.locality.toObject(t.locality.decode(rest), protoObjectOptions);
  if (lbEndpoints.length > 0) locality.lb_endpoints = lbEndpoints;
  return locality;
}

/**
 * One LbEndpoint, field by field (endpoint = 1, health_status = 2,
 * metadata = 3, load_balancing_weight = 4, endpoint_name = 5), as toObject
 * renders it: the `host_identifier` oneof named, the enum as its name.
 * `offset` is where `bytes` starts in `buffer` (the metadata's cache key).
 */
function decodeLbEndpoint(bytes: Uint8Array, t: Types, shared: SharedMetadata, buffer: Buffer, offset: number): Record<string, unknown> {
  const r = protobuf.Reader.create(bytes);
  const out: Record<string, unknown> = {};
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | LENGTH_DELIMITED:
        if (out.endpoint !== undefined) return wholeLbEndpoint(bytes);
        out.endpoint = decodeEndpoint(r, r.uint32(), t);
        out.host_identifier = 'endpoint';
        break;
      case (2 << 3) | 0: {
        const value = r.int32();
        out.health_status = t.healthStatus[value] ?? value;
        break;
      }
      case (3 << 3) | LENGTH_DELIMITED: {
        const length = r.uint32();
        const start = r.pos;
        if (start + length > r.len) throw new RangeError(`index out of range: ${start} + ${length} > ${r.len}`);
        const key = buffer.toString('latin1', offset + start, offset + start + length);
        // A message field repeated on the wire merges (protobuf rules): rare, decoded whole.
        if (out.metadata !== undefined) return wholeLbEndpoint(bytes);
        let metadata = shared.get(key);
        if (!metadata) shared.set(key, (metadata = t.metadata.toObject(t.metadata.decode(r, length), protoObjectOptions)));
        r.pos = start + length;
        out.metadata = metadata;
        break;
      }
      case (4 << 3) | LENGTH_DELIMITED:
        if (out.load_balancing_weight !== undefined) return wholeLbEndpoint(bytes);
        out.load_balancing_weight = t.uint32.toObject(t.uint32.decode(r, r.uint32()), protoObjectOptions);
        break;
      case (5 << 3) | LENGTH_DELIMITED:
        out.endpoint_name = r.string();
        out.host_identifier = 'endpoint_name';
        break;
      default:
        // Anything else (a repeated sub-message that must merge, a field added later): the whole decode.
        return wholeLbEndpoint(bytes);
    }
  }
  return out;
}

/**
 * The usual Endpoint — `address.socket_address { protocol?, address,
 * port_value | named_port }` and nothing else — read directly (the objects
 * toObject would give, a third of the allocations); any other shape goes
 * through protobufjs.
 */
function decodeEndpoint(r: protobuf.Reader, length: number, t: Types): Record<string, unknown> {
  const start = r.pos;
  const end = start + length;
  if (end > r.len) throw new RangeError(`index out of range: ${start} + ${length} > ${r.len}`);
  const socket = simpleEndpoint(r, end);
  if (socket) return { address: { socket_address: socket, address: 'socket_address' } };
  r.pos = start;
  return t.endpoint.toObject(t.endpoint.decode(r, length), protoObjectOptions);
}

/** Endpoint { address = 1: Address { socket_address = 1 } } only, else undefined. */
function simpleEndpoint(r: protobuf.Reader, end: number): Record<string, unknown> | undefined {
  if (r.pos >= end || r.uint32() !== ((1 << 3) | LENGTH_DELIMITED)) return undefined;
  const addressEnd = r.uint32() + r.pos;
  if (addressEnd !== end || r.pos >= addressEnd || r.uint32() !== ((1 << 3) | LENGTH_DELIMITED)) return undefined;
  const socketEnd = r.uint32() + r.pos;
  if (socketEnd !== end) return undefined;
  const socket: Record<string, unknown> = {};
  while (r.pos < socketEnd) {
    const tag = r.uint32();
    if (tag === ((2 << 3) | LENGTH_DELIMITED) && socket.address === undefined) socket.address = r.string();
    else if (tag === ((3 << 3) | 0) && socket.port_specifier === undefined) {
      socket.port_value = r.uint32();
      socket.port_specifier = 'port_value';
    } else if (tag === ((4 << 3) | LENGTH_DELIMITED) && socket.port_specifier === undefined) {
      socket.named_port = r.string();
      socket.port_specifier = 'named_port';
    } else return undefined; // protocol, resolver_name, ipv4_compat, repeats: protobufjs decides
  }
  return socket;
}

function wholeLbEndpoint(bytes: Uint8Array): Record<string, unknown> {
  const type = envoyRoot().lookupType('envoy.config.endpoint.v3.LbEndpoint');
  return type.toObject(type.decode(bytes), protoObjectOptions);
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
