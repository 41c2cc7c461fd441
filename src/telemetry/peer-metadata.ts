/**
 * Istio's HTTP metadata exchange: each side of a call sends
 * `x-envoy-peer-metadata-id` and `x-envoy-peer-metadata` (base64 of a
 * serialized google.protobuf.Struct describing the workload: NAME,
 * NAMESPACE, LABELS, WORKLOAD_NAME, CLUSTER_ID, MESH_ID, SERVICE_ACCOUNT …).
 * The receiving side turns it into the source_* (inbound) or destination_*
 * (outbound, from the response) labels of the istio_* metrics, which is how
 * Kiali draws an edge between two workloads.
 *
 * Encoding is done once per workload; decoding is cached by header value
 * (a caller sends the same bytes on every request), bounded in size.
 */
import protobuf from 'protobufjs';
import { principalNamespace, type IstioLabels } from './metrics.js';

/** Header carrying the peer's node id. */
export const PEER_METADATA_ID_HEADER = 'x-envoy-peer-metadata-id';
/** Header carrying the base64 Struct. */
export const PEER_METADATA_HEADER = 'x-envoy-peer-metadata';

/** A workload as metadata exchange describes it (ours when encoding, the peer's when decoded). */
export interface PeerMetadata {
  /** Instance (pod) name: NAME. */
  name: string;
  /** NAMESPACE. */
  namespace: string;
  /** WORKLOAD_NAME (the Deployment's name); defaults to `name` when encoding. */
  workloadName?: string;
  /** LABELS: app, version, service.istio.io/canonical-name … */
  labels?: Readonly<Record<string, string>>;
  /** SERVICE_ACCOUNT. */
  serviceAccount?: string;
  /** CLUSTER_ID. */
  clusterId?: string;
  /** MESH_ID. */
  meshId?: string;
  /** APP_CONTAINERS, comma-separated. */
  appContainers?: string;
  /** INSTANCE_IPS, comma-separated. */
  instanceIps?: string;
  /** OWNER, e.g. `kubernetes://apis/apps/v1/namespaces/default/deployments/client`. */
  owner?: string;
  /** ISTIO_VERSION (we send `meshlet`'s version here). */
  istioVersion?: string;
}

/** The two header values to send, computed once per workload. */
export interface PeerMetadataHeaders {
  /** Value of `x-envoy-peer-metadata-id`. */
  readonly id: string;
  /** Value of `x-envoy-peer-metadata`. */
  readonly value: string;
}

let structType: protobuf.Type | undefined;

/** google.protobuf.Struct from protobufjs' bundled well-known types (wire-identical to Envoy's; no Envoy protos to load). */
function struct(): protobuf.Type {
  if (structType === undefined) {
    structType = protobuf.Root.fromJSON(protobuf.common.get('google/protobuf/struct.proto')!).lookupType('google.protobuf.Struct');
  }
  return structType;
}

const FIELD_KEYS: ReadonlyArray<readonly [keyof PeerMetadata, string]> = [
  ['name', 'NAME'], ['namespace', 'NAMESPACE'], ['workloadName', 'WORKLOAD_NAME'], ['serviceAccount', 'SERVICE_ACCOUNT'],
  ['clusterId', 'CLUSTER_ID'], ['meshId', 'MESH_ID'], ['appContainers', 'APP_CONTAINERS'], ['instanceIps', 'INSTANCE_IPS'],
  ['owner', 'OWNER'], ['istioVersion', 'ISTIO_VERSION'],
];

/**
 * Encodes a workload's metadata into the two header values. Call once per
 * workload and keep the result: it is the same for every request.
 */
export function encodePeerMetadata(meta: PeerMetadata): PeerMetadataHeaders {
  const fields: Record<string, unknown> = {};
  const withDefaults: PeerMetadata = { ...meta, workloadName: meta.workloadName ?? meta.name };
  for (const [prop, key] of FIELD_KEYS) {
    const v = withDefaults[prop];
    if (typeof v === 'string' && v !== '') fields[key] = { stringValue: v };
  }
  if (meta.labels !== undefined) {
    const labelFields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(meta.labels)) labelFields[k] = { stringValue: v };
    fields.LABELS = { structValue: { fields: labelFields } };
  }
  const type = struct();
  const bytes = type.encode(type.fromObject({ fields })).finish();
  const ip = meta.instanceIps?.split(',')[0] || '0.0.0.0';
  // Envoy's node id form: sidecar~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local
  const id = `sidecar~${ip}~${meta.name}.${meta.namespace}~${meta.namespace}.svc.cluster.local`;
  return Object.freeze({ id, value: Buffer.from(bytes).toString('base64') });
}

/** Largest header value we try to decode; anything bigger is not metadata exchange. */
const MAX_VALUE_LENGTH = 16 * 1024;

/**
 * Longest field value kept (253, a Kubernetes object name's limit; label
 * values are 63): a longer one names no workload, and every value becomes a
 * label repeated on ~67 exposition lines, so it is dropped (`unknown`).
 */
export const MAX_FIELD_LENGTH = 253;

/** Decodes `x-envoy-peer-metadata`; undefined when absent or malformed (never throws: it is peer input). */
export function decodePeerMetadata(value: string): PeerMetadata | undefined {
  if (value.length === 0 || value.length > MAX_VALUE_LENGTH) return undefined;
  let obj: { fields?: Record<string, ProtoValue> };
  try {
    const type = struct();
    obj = type.toObject(type.decode(Buffer.from(value, 'base64'))) as typeof obj;
  } catch {
    return undefined;
  }
  const fields = obj.fields ?? {};
  const meta: Record<string, unknown> = {};
  for (const [prop, key] of FIELD_KEYS) {
    const v = fields[key];
    if (v !== undefined) {
      const s = valueToString(v);
      if (s !== undefined) meta[prop] = s;
    }
  }
  const labels = fields.LABELS?.structValue?.fields;
  if (labels !== undefined) {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(labels)) {
      const s = valueToString(v);
      if (s !== undefined) out[k] = s;
    }
    meta.labels = Object.freeze(out);
  }
  if (typeof meta.name !== 'string' && typeof meta.workloadName !== 'string') return undefined;
  meta.name ??= meta.workloadName;
  meta.namespace ??= '';
  return Object.freeze(meta as unknown as PeerMetadata);
}

interface ProtoValue {
  stringValue?: string;
  numberValue?: number;
  boolValue?: boolean;
  structValue?: { fields?: Record<string, ProtoValue> };
  listValue?: { values?: ProtoValue[] };
}

function valueToString(v: ProtoValue): string | undefined {
  const s = rawString(v);
  return s === undefined || s.length > MAX_FIELD_LENGTH ? undefined : s;
}

function rawString(v: ProtoValue): string | undefined {
  if (typeof v.stringValue === 'string') return v.stringValue;
  if (typeof v.numberValue === 'number') return String(v.numberValue);
  if (typeof v.boolValue === 'boolean') return String(v.boolValue);
  // Older Istio sent APP_CONTAINERS as a list.
  if (v.listValue !== undefined) return (v.listValue.values ?? []).map(rawString).filter((s) => s !== undefined).join(',');
  return undefined;
}

/**
 * A bounded cache of decoded peer metadata, keyed by header value. A
 * malformed value is cached as "no metadata" so it is not re-decoded either.
 */
export class PeerMetadataCache {
  private readonly entries = new Map<string, PeerMetadata | null>();

  /** @param maxEntries distinct header values kept (oldest evicted first). */
  constructor(private readonly maxEntries = 256) {}

  /** The decoded metadata of a header value (decoded once per distinct value). */
  get(value: string | string[] | undefined): PeerMetadata | undefined {
    if (value === undefined) return undefined;
    const v = Array.isArray(value) ? value[0] : value;
    if (v === undefined) return undefined;
    let meta = this.entries.get(v);
    if (meta === undefined) {
      meta = decodePeerMetadata(v) ?? null;
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(v, meta);
    }
    return meta ?? undefined;
  }

  /** Number of cached values. */
  get size(): number {
    return this.entries.size;
  }
}

/**
 * Removes the metadata-exchange headers from a Node-style header record and
 * returns the metadata value: the app behind a mesh never sees them, as
 * behind a sidecar.
 */
export function takePeerMetadataHeaders(headers: Record<string, string | string[] | undefined>): string | undefined {
  const value = headers[PEER_METADATA_HEADER];
  if (value === undefined && headers[PEER_METADATA_ID_HEADER] === undefined) return undefined;
  delete headers[PEER_METADATA_HEADER];
  delete headers[PEER_METADATA_ID_HEADER];
  return Array.isArray(value) ? value[0] : value;
}

/** Istio's canonical-name label, set on every pod by the sidecar injector. */
export const CANONICAL_NAME_LABEL = 'service.istio.io/canonical-name';
/** Istio's canonical-revision label. */
export const CANONICAL_REVISION_LABEL = 'service.istio.io/canonical-revision';

/**
 * A workload's canonical service and revision, derived from its labels as
 * istiod does (pkg/kube/labels CanonicalService): the first of
 * `service.istio.io/canonical-name`, `app.kubernetes.io/name`, `app`, else
 * the workload name; the first of `service.istio.io/canonical-revision`,
 * `app.kubernetes.io/version`, `version`, else `latest`.
 */
export function canonicalService(labels: Readonly<Record<string, string>>, workloadName: string): { name: string; revision: string } {
  return {
    name: labels[CANONICAL_NAME_LABEL] ?? labels['app.kubernetes.io/name'] ?? labels.app ?? workloadName,
    revision: labels[CANONICAL_REVISION_LABEL] ?? labels['app.kubernetes.io/version'] ?? labels.version ?? 'latest',
  };
}

/**
 * The labels a workload sends in metadata exchange: its own, plus the
 * canonical labels the sidecar injector would have put on its pod, so an
 * Envoy peer (which reads only the labels) finds them.
 */
export function exchangedLabels(labels: Readonly<Record<string, string>>, workloadName: string): Readonly<Record<string, string>> {
  const canonical = canonicalService(labels, workloadName);
  return Object.freeze({ ...labels, [CANONICAL_NAME_LABEL]: canonical.name, [CANONICAL_REVISION_LABEL]: canonical.revision });
}

/**
 * The source_* or destination_* labels for a workload, mapped as Istio's
 * stats filter does: workload from WORKLOAD_NAME, app/version from the
 * `app`/`version` labels (or their app.kubernetes.io forms), cluster from
 * CLUSTER_ID, canonical service/revision from Istio's canonical labels (or
 * derived from the others as istiod derives them, for peers that did not
 * send them; `latest` when nothing is known, as the stats filter says).
 * `principal` is the peer's mTLS identity when the connection had one,
 * `spiffe://` scheme included as in Istio's label; metadata alone never sets
 * it (it is not authenticated). With a principal, the namespace is the one it
 * names, whatever the metadata claims (Istio's stats filter: the SAN's
 * namespace first, metadata second).
 */
export function peerLabels(meta: PeerMetadata | undefined, side: 'source' | 'destination', principal?: string): IstioLabels {
  const p = side === 'source' ? 'source' : 'destination';
  const labels: Record<string, string> = {};
  const authenticated = principal !== undefined && principal !== '' ? principal : undefined;
  const namespace = authenticated === undefined ? undefined : principalNamespace(authenticated);
  if (authenticated !== undefined) labels[`${p}_principal`] = authenticated;
  if (namespace !== undefined) labels[`${p}_workload_namespace`] = namespace;
  labels[`${p}_canonical_revision`] = 'latest';
  if (meta === undefined) return labels as IstioLabels;
  const l = meta.labels ?? {};
  const workload = meta.workloadName ?? meta.name;
  const app = l.app ?? l['app.kubernetes.io/name'];
  const version = l.version ?? l['app.kubernetes.io/version'];
  labels[`${p}_workload`] = workload;
  if (namespace === undefined && meta.namespace !== '') labels[`${p}_workload_namespace`] = meta.namespace;
  if (app !== undefined) labels[`${p}_app`] = app;
  if (version !== undefined) labels[`${p}_version`] = version;
  if (meta.clusterId !== undefined) labels[`${p}_cluster`] = meta.clusterId;
  const canonical = canonicalService(l, workload);
  labels[`${p}_canonical_service`] = canonical.name;
  labels[`${p}_canonical_revision`] = canonical.revision;
  return labels as IstioLabels;
}
