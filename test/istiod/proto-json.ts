/**
 * Reads Envoy config-dump JSON (proto3 canonical JSON: `"0s"` durations,
 * bare wrapper values, Struct as plain JSON) into the object form meshlet's
 * resources use (what decodeAny returns), walking the message types of the
 * Envoy protos. Test-only: for replaying istioctl's config-dump testdata.
 */
import protobuf from 'protobufjs';
import { toStruct } from '../../src/config/struct.js';
import { envoyRoot } from '../../src/xds/protos.js';

const WRAPPERS = new Set(['DoubleValue', 'FloatValue', 'Int64Value', 'UInt64Value', 'Int32Value', 'UInt32Value', 'BoolValue', 'StringValue', 'BytesValue']);

/** Converts `json` of message type `typeName` (e.g. `envoy.config.route.v3.RouteConfiguration`). */
export function fromProtoJson(typeName: string, json: unknown): Record<string, unknown> {
  return convert(envoyRoot().lookupType(typeName), json) as Record<string, unknown>;
}

function convert(type: protobuf.Type, json: unknown): unknown {
  const full = type.fullName.replace(/^\./, '');
  if (full === 'google.protobuf.Duration') return duration(json as string);
  if (full === 'google.protobuf.Struct') return toStruct(json as Record<string, unknown>);
  if (full.startsWith('google.protobuf.') && WRAPPERS.has(type.name)) return { value: json };
  if (full === 'google.protobuf.Any') {
    const { '@type': url, ...rest } = json as Record<string, unknown> & { '@type': string };
    const inner = envoyRoot().lookupType(url.slice(url.lastIndexOf('/') + 1));
    return { '@type': url, ...(convert(inner, rest) as object) };
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    const field = type.fields[key];
    if (!field) continue; // a field of a newer Envoy than the protos we ship
    field.resolve();
    const map = field instanceof protobuf.MapField;
    const element = (v: unknown) => (field.resolvedType instanceof protobuf.Type ? convert(field.resolvedType, v) : v);
    if (map) out[key] = Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, element(v)]));
    else if (field.repeated) out[key] = (value as unknown[]).map(element);
    else out[key] = element(value);
  }
  return out;
}

function duration(text: string): { seconds: number; nanos: number } {
  const s = Number(text.replace(/s$/, ''));
  const seconds = Math.trunc(s);
  return { seconds, nanos: Math.round((s - seconds) * 1e9) };
}
