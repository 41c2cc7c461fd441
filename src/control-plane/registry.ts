/**
 * Workload auto-registration, as Istio's (pilot/pkg/autoregistration): a
 * node becomes a WorkloadEntry only when it names a WorkloadGroup of its
 * namespace (node metadata AUTO_REGISTER_GROUP) and the stream proved the
 * group's identity — the SPIFFE id of a verified client certificate or of a
 * bootstrap token must carry the template's namespace and service account
 * (Istio's ensureProxyCanControlEntry). The entry is the group's template:
 * labels and service account from the group, the address from the node.
 * Unlike Istio, node labels only add keys the group does not set, and never
 * the keys that decide service membership (`app` and every key a ServiceEntry
 * workloadSelector reads), so a workload cannot label itself into another
 * service. Any other node stays a client: it gets config, never traffic.
 *
 * Decisions are made against the current config on every generation, so a
 * WorkloadGroup added after its workloads connected registers them, and one
 * removed unregisters them. An entry outlives its stream by a grace period so
 * a reconnect does not flap the endpoints. When no ServiceEntry defines
 * `<app>.<namespace>.svc.cluster.local`, one is synthesised for the group's
 * `app` label so a registered workload is reachable by its app name.
 */
import type { IstioResource, ResourceOf, WorkloadEntrySpec } from '../config/istio-types.js';
import { expandHost } from '../config/registry.js';
import type { SpiffeId } from '../security/identity.js';
import { AUTO_REGISTER_GROUP_KEY, MESHLET_PORTS_KEY, fromStruct, parsePorts } from '../xds/node.js';

/** What the control plane learns about a connected node. */
export interface NodeInfo {
  id: string;
  /** Pod-like instance name (metadata NAME), else from the node id. */
  name: string;
  namespace: string;
  labels: Record<string, string>;
  serviceAccount: string | undefined;
  workloadName: string | undefined;
  /** First INSTANCE_IPS address, when given. */
  address: string | undefined;
  /** Ports from MESHLET_PORTS. */
  ports: Record<string, number>;
  /** The WorkloadGroup the node asks to join (metadata AUTO_REGISTER_GROUP, as istio-agent sends it). */
  autoRegisterGroup: string | undefined;
}

/** Reads an Istio-style node (id + metadata Struct, or plain JSON metadata). */
export function nodeInfoOf(node: { id?: string; metadata?: unknown } | undefined): NodeInfo {
  const meta = node?.metadata && typeof node.metadata === 'object' && 'fields' in (node.metadata as object)
    ? fromStruct(node.metadata)
    : ((node?.metadata ?? {}) as Record<string, unknown>);
  const id = node?.id ?? '';
  // sidecar~<ip>~<pod>.<ns>~<ns>.svc.cluster.local
  const parts = id.split('~');
  const podDotNs = parts[2] ?? '';
  const namespace = str(meta.NAMESPACE) ?? (podDotNs.includes('.') ? podDotNs.slice(podDotNs.lastIndexOf('.') + 1) : 'default');
  const labels: Record<string, string> = {};
  if (meta.LABELS && typeof meta.LABELS === 'object') {
    for (const [k, v] of Object.entries(meta.LABELS as Record<string, unknown>)) if (typeof v === 'string') labels[k] = v;
  }
  const ips = str(meta.INSTANCE_IPS) ?? (parts[1] || undefined);
  return {
    id,
    name: str(meta.NAME) ?? (podDotNs.split('.')[0] || id),
    namespace,
    labels,
    serviceAccount: str(meta.SERVICE_ACCOUNT),
    workloadName: str(meta.WORKLOAD_NAME),
    address: ips?.split(',')[0]?.trim() || undefined,
    ports: parsePorts(str(meta[MESHLET_PORTS_KEY]) ?? ''),
    autoRegisterGroup: str(meta[AUTO_REGISTER_GROUP_KEY]),
  };
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** A node that is an endpoint, as status() shows it. */
export interface RegisteredWorkload {
  id: string;
  name: string;
  namespace: string;
  /** The WorkloadGroup it registered into. */
  group: string;
  /** The proven identity (equal to the group template's service account). */
  identity: string;
  labels: Record<string, string>;
  serviceAccount: string;
  address: string;
  ports: Record<string, number>;
  /** Node metadata that was not used, and why (labels the group fixes, a probe meshlet does not run). */
  warnings: string[];
}

/** A node that asked to be registered (AUTO_REGISTER_GROUP or MESHLET_PORTS) and is not an endpoint. */
export interface RefusedRegistration {
  id: string;
  name: string;
  namespace: string;
  group: string | undefined;
  /** The proven identity, when there is one. */
  identity: string | undefined;
  reason: string;
}

interface Entry {
  info: NodeInfo;
  identity: SpiffeId | undefined;
  /** Why the stream has no identity (a bad token, a foreign certificate), when it tried. */
  identityProblem: string | undefined;
  streams: number;
  removal: NodeJS.Timeout | undefined;
}

interface Evaluation {
  resources: IstioResource[];
  registered: RegisteredWorkload[];
  refused: RefusedRegistration[];
}

/** Whether a node asks to be an endpoint at all; other nodes are plain clients. */
export function asksToRegister(info: NodeInfo): boolean {
  return info.autoRegisterGroup !== undefined || Object.keys(info.ports).length > 0;
}

/**
 * Entries are per node id and proven identity: a stream of another identity
 * reusing a registered node's id neither keeps that entry alive nor blocks it.
 */
function keyOf(id: string, identity: SpiffeId | undefined): string {
  return `${id}\u0000${identity?.uri ?? ''}`;
}

/** Connected nodes that asked to be registered, and the decision for each under a config. */
export class WorkloadRegistry {
  private readonly entries = new Map<string, Entry>();
  private cached: Evaluation | undefined;
  private cachedFor: readonly IstioResource[] | undefined;

  /** @param onChange called when the set of connected registration candidates changes. */
  constructor(private readonly graceMs: number, private readonly onChange: () => void) {}

  /**
   * A stream of this node opened, authenticated as `identity` (undefined:
   * anonymous, with `identityProblem` saying why when it tried). Returns
   * false when the node does not ask to be registered.
   */
  connect(info: NodeInfo, identity: SpiffeId | undefined, identityProblem?: string): boolean {
    if (!asksToRegister(info)) return false;
    const key = keyOf(info.id, identity);
    const entry = this.entries.get(key);
    if (entry) {
      entry.streams++;
      clearTimeout(entry.removal);
      entry.removal = undefined;
      // the newest stream speaks for the node (a restarted instance may have a new address or ports)
      if (JSON.stringify(entry.info) !== JSON.stringify(info)) {
        entry.info = info;
        this.changed();
      }
      return true;
    }
    this.entries.set(key, { info, identity, identityProblem, streams: 1, removal: undefined });
    this.changed();
    return true;
  }

  /** A stream of this node (as `identity`) ended; the entry goes after the grace period unless it reconnects. */
  disconnect(id: string, identity: SpiffeId | undefined): void {
    const key = keyOf(id, identity);
    const entry = this.entries.get(key);
    if (!entry) return;
    entry.streams--;
    if (entry.streams > 0) return;
    entry.removal = setTimeout(() => {
      this.entries.delete(key);
      this.changed();
    }, this.graceMs);
    entry.removal.unref();
  }

  /** The registered workloads under `configured`. */
  registered(configured: readonly IstioResource[]): RegisteredWorkload[] {
    return this.evaluate(configured).registered;
  }

  /** The nodes that asked to be registered and are not, with the reason. */
  refused(configured: readonly IstioResource[]): RefusedRegistration[] {
    return this.evaluate(configured).refused;
  }

  /**
   * WorkloadEntries for the registered nodes, plus ServiceEntries for apps no
   * configured ServiceEntry defines.
   */
  resources(configured: readonly IstioResource[]): IstioResource[] {
    return this.evaluate(configured).resources;
  }

  /** Clears every removal timer. */
  close(): void {
    for (const e of this.entries.values()) clearTimeout(e.removal);
    this.entries.clear();
  }

  private changed(): void {
    this.cached = undefined;
    this.onChange();
  }

  private evaluate(configured: readonly IstioResource[]): Evaluation {
    if (this.cached && this.cachedFor === configured) return this.cached;
    // No node asked to be registered (most control planes, most of the time): nothing to scan the config for.
    if (this.entries.size === 0) {
      this.cachedFor = configured;
      return (this.cached = { resources: [], registered: [], refused: [] });
    }
    const groups = new Map<string, ResourceOf<'WorkloadGroup'>>();
    const hosts = new Set<string>();
    // Keys that decide which service selects a workload: only the group may set them.
    const membershipKeys = new Set<string>(['app']);
    for (const r of configured) {
      if (r.kind === 'WorkloadGroup') groups.set(`${r.metadata.namespace}/${r.metadata.name}`, r);
      if (r.kind === 'ServiceEntry') {
        for (const h of r.spec.hosts) hosts.add(expandHost(h, r.metadata.namespace));
        for (const k of Object.keys(r.spec.workloadSelector?.labels ?? {})) membershipKeys.add(k);
      }
    }
    const out: Evaluation = { resources: [], registered: [], refused: [] };
    const synthesized = new Map<string, { namespace: string; app: string; ports: Map<number, string> }>();
    for (const entry of this.entries.values()) {
      const decision = admit(entry, groups, membershipKeys);
      const { info } = entry;
      if ('reason' in decision) {
        out.refused.push({ id: info.id, name: info.name, namespace: info.namespace, group: info.autoRegisterGroup, identity: entry.identity?.uri, reason: decision.reason });
        continue;
      }
      const { spec, group, warnings } = decision;
      out.resources.push({
        apiVersion: 'networking.istio.io/v1',
        kind: 'WorkloadEntry',
        metadata: { name: `${group.metadata.name}-${info.address!.replaceAll(':', '-')}-${info.name}`, namespace: info.namespace, labels: spec.labels ?? {} },
        spec,
      });
      out.registered.push({
        id: info.id, name: info.name, namespace: info.namespace, group: group.metadata.name, identity: entry.identity!.uri,
        labels: spec.labels ?? {}, serviceAccount: spec.serviceAccount!, address: spec.address!, ports: spec.ports ?? {}, warnings,
      });
      // the synthesised ServiceEntry selects by the group's `app`, so only groups that set one get it
      const app = spec.labels?.app;
      if (!app) continue;
      const host = expandHost(app, info.namespace);
      if (hosts.has(host)) continue;
      const key = `${info.namespace}/${app}`;
      const s = synthesized.get(key) ?? { namespace: info.namespace, app, ports: new Map() };
      for (const [name, port] of Object.entries(spec.ports ?? {})) if (!s.ports.has(port)) s.ports.set(port, name);
      synthesized.set(key, s);
    }
    for (const s of synthesized.values()) {
      if (s.ports.size === 0) continue; // a ServiceEntry needs a port
      out.resources.push({
        apiVersion: 'networking.istio.io/v1',
        kind: 'ServiceEntry',
        metadata: { name: `auto-${s.app}`, namespace: s.namespace },
        spec: {
          hosts: [expandHost(s.app, s.namespace)],
          location: 'MESH_INTERNAL',
          resolution: 'STATIC',
          ports: [...s.ports].map(([number, name]) => ({ number, name, protocol: name.startsWith('grpc') ? 'GRPC' : 'HTTP' })),
          workloadSelector: { labels: { app: s.app } },
        },
      });
    }
    this.cached = out;
    this.cachedFor = configured;
    return out;
  }
}

type Admission = { spec: WorkloadEntrySpec; group: ResourceOf<'WorkloadGroup'>; warnings: string[] } | { reason: string };

/**
 * Decides whether one node may be an endpoint, and with which WorkloadEntry:
 * Istio's workloadEntryFromGroup + ensureProxyCanControlEntry, with node
 * labels demoted from overriding to adding.
 */
function admit(entry: Entry, groups: ReadonlyMap<string, ResourceOf<'WorkloadGroup'>>, membershipKeys: ReadonlySet<string>): Admission {
  const { info, identity } = entry;
  if (!info.autoRegisterGroup) return { reason: 'no WorkloadGroup named: registration needs node metadata AUTO_REGISTER_GROUP' };
  if (!identity) {
    return { reason: `not authenticated (${entry.identityProblem ?? 'plaintext stream, or TLS without a client certificate or bearer token'}): registration needs a verified identity` };
  }
  const group = groups.get(`${info.namespace}/${info.autoRegisterGroup}`);
  if (!group) return { reason: `WorkloadGroup ${info.namespace}/${info.autoRegisterGroup} not found` };
  const template = group.spec.template;
  // A template without a service account stands for the namespace's `default` one, as a pod without one runs as it.
  const serviceAccount = template.serviceAccount ?? 'default';
  if (identity.namespace !== group.metadata.namespace || identity.serviceAccount !== serviceAccount) {
    return { reason: `identity ${identity.uri} is not the service account ${group.metadata.namespace}/${serviceAccount} of WorkloadGroup ${group.metadata.namespace}/${group.metadata.name}` };
  }
  if (!info.address) return { reason: 'no address: node metadata INSTANCE_IPS is empty' };
  const warnings: string[] = [];
  // Istio: node metadata > group metadata > template. Here the group wins, and membership keys are the group's alone.
  const labels: Record<string, string> = { ...template.labels, ...group.spec.metadata?.labels };
  for (const [k, v] of Object.entries(info.labels)) {
    if (labels[k] !== undefined) {
      if (labels[k] !== v) warnings.push(`node label ${k}=${v} ignored: WorkloadGroup sets ${k}=${labels[k]}`);
    } else if (membershipKeys.has(k)) {
      warnings.push(`node label ${k}=${v} ignored: a ServiceEntry selects on ${k}, so only the WorkloadGroup may set it`);
    } else {
      labels[k] = v;
    }
  }
  const ports: Record<string, number> = { ...template.ports };
  for (const [name, port] of Object.entries(info.ports)) {
    if (ports[name] === undefined) ports[name] = port;
    else if (ports[name] !== port) warnings.push(`node port ${name}:${port} ignored: WorkloadGroup sets ${name}:${ports[name]}`);
  }
  if (group.spec.probe) warnings.push('WorkloadGroup probe is not run: the workload is an endpoint while its ADS stream is connected');
  const { address: _templateAddress, ...fromTemplate } = template;
  return {
    group,
    warnings,
    spec: { ...fromTemplate, address: info.address, labels, serviceAccount, ...(Object.keys(ports).length > 0 && { ports }) },
  };
}
