/**
 * google.protobuf.Struct in its protobuf object form (what protobufjs encodes
 * and decodes with keepCase), to and from plain JSON values. Envoy metadata
 * and node metadata travel in this form.
 */
export interface ProtoValue {
  null_value?: 'NULL_VALUE' | 0;
  number_value?: number;
  string_value?: string;
  bool_value?: boolean;
  struct_value?: ProtoStruct;
  list_value?: { values?: ProtoValue[] };
}

export interface ProtoStruct {
  fields?: Record<string, ProtoValue>;
}

/** Plain JSON → Struct. */
export function toStruct(value: Record<string, unknown>): ProtoStruct {
  const fields: Record<string, ProtoValue> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) fields[k] = toValue(v);
  return { fields };
}

function toValue(v: unknown): ProtoValue {
  if (v === null) return { null_value: 'NULL_VALUE' };
  if (typeof v === 'number') return { number_value: v };
  if (typeof v === 'string') return { string_value: v };
  if (typeof v === 'boolean') return { bool_value: v };
  if (Array.isArray(v)) return { list_value: { values: v.map(toValue) } };
  return { struct_value: toStruct(v as Record<string, unknown>) };
}

/** Struct → plain JSON. */
export function fromStruct(struct: ProtoStruct | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(struct?.fields ?? {})) out[k] = fromValue(v);
  return out;
}

function fromValue(v: ProtoValue): unknown {
  if (v.string_value !== undefined) return v.string_value;
  if (v.number_value !== undefined) return v.number_value;
  if (v.bool_value !== undefined) return v.bool_value;
  if (v.struct_value !== undefined) return fromStruct(v.struct_value);
  if (v.list_value !== undefined) return (v.list_value.values ?? []).map(fromValue);
  return null;
}
