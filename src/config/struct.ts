/**
 * google.protobuf.Struct in its protobuf object form, to and from plain JSON
 * values. Envoy metadata and node metadata travel in this form. protobufjs
 * loads struct.proto from its own bundled copy, where keepCase does not apply,
 * so the value fields are camelCase (`stringValue`, `structValue`…); reading
 * accepts snake_case too.
 */
export interface ProtoValue {
  nullValue?: 'NULL_VALUE' | 0;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: ProtoStruct;
  listValue?: { values?: ProtoValue[] };
}

export interface ProtoStruct {
  fields?: Record<string, ProtoValue>;
}

// Indexed loops over Object.keys rather than Object.entries: endpoint metadata is converted once per
// endpoint on every translation and compile, mostly in cold code, where entries is several times slower.

/** Plain JSON → Struct. */
export function toStruct(value: Record<string, unknown>): ProtoStruct {
  const fields: Record<string, ProtoValue> = {};
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    const v = value[keys[i]!];
    if (v !== undefined) fields[keys[i]!] = toValue(v);
  }
  return { fields };
}

function toValue(v: unknown): ProtoValue {
  if (v === null) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  return { structValue: toStruct(v as Record<string, unknown>) };
}

/** Struct → plain JSON. */
export function fromStruct(struct: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const fields = (struct as ProtoStruct | undefined)?.fields;
  if (!fields) return out;
  const keys = Object.keys(fields);
  for (let i = 0; i < keys.length; i++) out[keys[i]!] = fromValue(fields[keys[i]!] as ProtoValue & Record<string, unknown>);
  return out;
}

function fromValue(v: ProtoValue & Record<string, unknown>): unknown {
  const s = v.stringValue ?? v.string_value;
  if (s !== undefined) return s;
  const n = v.numberValue ?? v.number_value;
  if (n !== undefined) return n;
  const b = v.boolValue ?? v.bool_value;
  if (b !== undefined) return b;
  const st = (v.structValue ?? v.struct_value) as ProtoStruct | undefined;
  if (st !== undefined) return fromStruct(st);
  const l = (v.listValue ?? v.list_value) as { values?: ProtoValue[] } | undefined;
  if (l !== undefined) return (l.values ?? []).map((x) => fromValue(x as ProtoValue & Record<string, unknown>));
  return null;
}
