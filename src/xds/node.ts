/**
 * The xDS Node a meshlet workload sends, shaped like an Istio sidecar's so
 * istiod (and our control plane) know who is asking: id
 * `sidecar~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`, cluster `<app>.<ns>`, and a
 * metadata Struct with NAME, NAMESPACE, LABELS, SERVICE_ACCOUNT, WORKLOAD_NAME,
 * ISTIO_VERSION, CLUSTER_ID, MESH_ID, INSTANCE_IPS and GENERATOR=grpc (istiod's
 * proxyless output), and AUTO_REGISTER_GROUP / MESHLET_PORTS for auto-registration.
 * CLUSTER_ID, MESH_ID and ISTIO_VERSION are resolved once per mesh
 * ({@link resolveNodeIdentity}) so node metadata and telemetry agree.
 */
import { networkInterfaces } from 'node:os';
import { fromStruct, toStruct, type ProtoStruct } from '../config/struct.js';
import { resolveBootstrap, type XdsBootstrapOptions } from './bootstrap.js';

export { fromStruct, toStruct };

/** Who the workload is; the same fields as createMesh's `workload` option. */
export interface WorkloadInfo {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  serviceAccount?: string;
  /** The instance's address for auto-registration (default: first non-internal IPv4). */
  address?: string;
  /** Ports the instance serves, by name (`{ http: 8080, grpc: 9000 }`), for auto-registration. */
  ports?: Record<string, number>;
  /** Pod-style instance name (default `<name>-<pid>`). */
  instanceName?: string;
  /**
   * The WorkloadGroup (in `namespace`) to auto-register into, sent as node
   * metadata AUTO_REGISTER_GROUP as istio-agent sends it. The control plane
   * registers the instance only over an authenticated stream whose identity
   * is the group's service account.
   */
  autoRegisterGroup?: string;
  /** CLUSTER_ID (default `Kubernetes`, istiod's default); the same value labels the workload's metrics. */
  clusterId?: string;
  /** MESH_ID (default: none sent; istiod then uses its meshConfig.meshId). */
  meshId?: string;
  /** ISTIO_VERSION (default {@link ISTIO_VERSION}). */
  istioVersion?: string;
  /** `region/zone/subzone`: the Node's locality, which istiod computes locality priorities against. */
  locality?: string;
}

/** The identity values node metadata and telemetry share. */
export interface NodeIdentity {
  /** CLUSTER_ID: node metadata, metadata exchange and the `*_cluster` metric labels. */
  clusterId: string;
  /** MESH_ID: node metadata and metadata exchange. */
  meshId: string;
  /** ISTIO_VERSION: node metadata, metadata exchange and `istio_build`'s tag. */
  istioVersion: string;
}

/** Where {@link resolveNodeIdentity} looks, most specific first. */
export interface NodeIdentitySources {
  /** createMesh options (`clusterId`, `meshId`, `istioVersion`). */
  options?: Partial<NodeIdentity>;
  /** The bootstrap file's `node.metadata` (plain JSON, as grpc-agent writes it). */
  bootstrapMetadata?: Record<string, unknown>;
  /** Environment (default process.env): ISTIO_META_CLUSTER_ID, ISTIO_META_MESH_ID, ISTIO_META_ISTIO_VERSION (or ISTIO_VERSION). */
  env?: NodeJS.ProcessEnv;
  /** MESH_ID when nothing names one: istiod's meshConfig.meshId defaults to the trust domain. */
  trustDomain?: string;
}

/** istiod's default CLUSTER_ID (its `--clusterID` flag). */
export const DEFAULT_CLUSTER_ID = 'Kubernetes';

/**
 * Resolves CLUSTER_ID, MESH_ID and ISTIO_VERSION: options, then the
 * bootstrap's node metadata, then the env istio-agent turns into node
 * metadata (`ISTIO_META_<KEY>`, pkg/bootstrap/config.go extractMetadata;
 * ISTIO_VERSION as SetIstioVersion falls back to), then istiod's defaults.
 */
export function resolveNodeIdentity(sources: NodeIdentitySources = {}): NodeIdentity {
  const env = sources.env ?? process.env;
  const boot = sources.bootstrapMetadata ?? {};
  const pick = (option: string | undefined, key: string, ...envNames: string[]): string | undefined => {
    if (option) return option;
    const fromBoot = boot[key];
    if (typeof fromBoot === 'string' && fromBoot) return fromBoot;
    for (const name of envNames) if (env[name]) return env[name];
    return undefined;
  };
  return {
    clusterId: pick(sources.options?.clusterId, 'CLUSTER_ID', 'ISTIO_META_CLUSTER_ID') ?? DEFAULT_CLUSTER_ID,
    meshId: pick(sources.options?.meshId, 'MESH_ID', 'ISTIO_META_MESH_ID') ?? sources.trustDomain ?? 'cluster.local',
    istioVersion: pick(sources.options?.istioVersion, 'ISTIO_VERSION', 'ISTIO_META_ISTIO_VERSION', 'ISTIO_VERSION') ?? ISTIO_VERSION,
  };
}

/**
 * google.protobuf.Value in the object form protobufjs uses. Note the camelCase
 * field names: protobufjs serves google/protobuf/struct.proto from its bundled
 * definitions, so `keepCase` does not apply to it (snake_case keys are dropped
 * silently on encode).
 */
/** envoy.config.core.v3.Node in proto-loader object form. */
export interface XdsNode {
  id: string;
  cluster: string;
  metadata?: ProtoStruct;
  locality?: Record<string, string>;
  user_agent_name?: string;
  user_agent_version?: string;
  client_features?: string[];
}

/** Metadata key meshlet adds for the ports an instance serves: `http:8080,grpc:9000`. */
export const MESHLET_PORTS_KEY = 'MESHLET_PORTS';
/** Node metadata key naming the WorkloadGroup to auto-register into (istio-agent's, from ISTIO_META_AUTO_REGISTER_GROUP). */
export const AUTO_REGISTER_GROUP_KEY = 'AUTO_REGISTER_GROUP';
/** The Istio version string we claim (istiod gates some features on it). */
export const ISTIO_VERSION = '1.24.0';

/** The first non-internal IPv4 address of this host, or 127.0.0.1. */
export function defaultInstanceIp(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/** `region/zone/subzone` → the Node's Locality (empty parts left out). */
function nodeLocality(locality: string | undefined): Record<string, string> {
  const [region, zone, subZone] = (locality ?? '').split('/');
  const out: Record<string, string> = {};
  if (region) out.region = region;
  if (zone) out.zone = zone;
  if (subZone) out.sub_zone = subZone;
  return out;
}

/** Builds the Istio-style Node for a workload. */
export function buildNode(workload: WorkloadInfo): XdsNode {
  const ns = workload.namespace;
  const ip = workload.address ?? defaultInstanceIp();
  const labels = workload.labels ?? {};
  const pod = workload.instanceName ?? `${workload.name}-${process.pid}`;
  const app = labels.app ?? workload.name;
  const metadata: Record<string, unknown> = {
    NAME: pod,
    NAMESPACE: ns,
    LABELS: labels,
    SERVICE_ACCOUNT: workload.serviceAccount ?? 'default',
    WORKLOAD_NAME: workload.name,
    ISTIO_VERSION: workload.istioVersion ?? ISTIO_VERSION,
    INSTANCE_IPS: ip,
    CLUSTER_ID: workload.clusterId ?? DEFAULT_CLUSTER_ID,
    ...(workload.meshId !== undefined && { MESH_ID: workload.meshId }),
    GENERATOR: 'grpc',
    // istiod's SDS-less proxyless mode; harmless for our control plane
    INTERCEPTION_MODE: 'NONE',
  };
  if (workload.autoRegisterGroup) metadata[AUTO_REGISTER_GROUP_KEY] = workload.autoRegisterGroup;
  if (workload.ports && Object.keys(workload.ports).length > 0) {
    metadata[MESHLET_PORTS_KEY] = formatPorts(workload.ports);
  }
  return {
    id: `sidecar~${ip}~${pod}.${ns}~${ns}.svc.cluster.local`,
    cluster: `${app}.${ns}`,
    metadata: toStruct(metadata),
    locality: nodeLocality(workload.locality),
    user_agent_name: 'meshlet',
    user_agent_version: '0.1.0',
    client_features: ['envoy.lb.does_not_support_overprovisioning'],
  };
}

/** `{ http: 8080 }` → `http:8080`. */
export function formatPorts(ports: Record<string, number>): string {
  return Object.entries(ports).map(([name, port]) => `${name}:${port}`).join(',');
}

/** `http:8080,grpc:9000` (or a bare `8080`, named `http`) → `{ http: 8080, grpc: 9000 }`. */
export function parsePorts(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text.split(',')) {
    const item = part.trim();
    if (!item) continue;
    const i = item.lastIndexOf(':');
    const name = i < 0 ? 'http' : item.slice(0, i);
    const port = Number(i < 0 ? item : item.slice(i + 1));
    if (Number.isInteger(port) && port > 0 && port < 65536) out[name] = port;
  }
  return out;
}

/** Keys the mesh resolved itself ({@link resolveNodeIdentity}), already taking the bootstrap into account. */
const RESOLVED_KEYS = ['CLUSTER_ID', 'MESH_ID', 'ISTIO_VERSION'] as const;

/**
 * The node sent: the bootstrap's node fields over the workload's own, its
 * metadata merged key by key (the bootstrap holds plain JSON, or a Struct).
 * The resolved identity keys stay the workload's, which already weighed the bootstrap.
 */
export function mergeNode(own: XdsNode, fromBootstrap: Partial<XdsNode> | undefined): XdsNode {
  if (!fromBootstrap) return own;
  const meta = fromBootstrap.metadata as unknown;
  const bootMeta = meta && typeof meta === 'object' && !('fields' in meta) ? toStruct(meta as Record<string, unknown>) : (meta as XdsNode['metadata']);
  const fields = { ...own.metadata?.fields, ...bootMeta?.fields };
  for (const key of RESOLVED_KEYS) if (own.metadata?.fields?.[key]) fields[key] = own.metadata.fields[key]!;
  return { ...own, ...fromBootstrap, metadata: { fields } };
}

/** The bootstrap node's metadata as plain JSON (it may arrive as a Struct). */
export function bootstrapMetadata(node: Partial<XdsNode> | undefined): Record<string, unknown> | undefined {
  const meta = node?.metadata as unknown;
  if (!meta || typeof meta !== 'object') return undefined;
  return 'fields' in meta ? fromStruct(meta as ProtoStruct) : (meta as Record<string, unknown>);
}

/**
 * The bootstrap's node metadata, for CLUSTER_ID / MESH_ID / ISTIO_VERSION, in
 * control-plane mode (`xds` options; undefined in embedded mode). A broken
 * bootstrap is reported when the mesh connects, with the file named, not here.
 */
export function bootstrapIdentitySource(xds: XdsBootstrapOptions | undefined): Pick<NodeIdentitySources, 'bootstrapMetadata'> {
  if (xds === undefined) return {};
  try {
    const meta = bootstrapMetadata(resolveBootstrap(xds)?.node);
    return meta ? { bootstrapMetadata: meta } : {};
  } catch {
    return {};
  }
}
