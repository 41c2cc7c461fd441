/**
 * Workload auto-registration, like Istio's WorkloadGroup: a node that
 * connects with NAME, NAMESPACE, LABELS, INSTANCE_IPS and MESHLET_PORTS in its
 * metadata becomes a WorkloadEntry, selected by any ServiceEntry whose
 * workloadSelector matches its labels. When no ServiceEntry defines
 * `<app>.<namespace>.svc.cluster.local`, one is synthesised so the workload is
 * reachable by its app name out of the box. An entry outlives its stream by a
 * grace period so a reconnect does not flap the endpoints.
 */
import type { IstioResource } from '../config/istio-types.js';
import { expandHost } from '../config/registry.js';
import { MESHLET_PORTS_KEY, fromStruct, parsePorts } from '../xds/node.js';

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
  };
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

interface Entry {
  info: NodeInfo;
  streams: number;
  removal: NodeJS.Timeout | undefined;
}

/** Registered workloads, keyed by node id. */
export class WorkloadRegistry {
  private readonly entries = new Map<string, Entry>();
  private cached: IstioResource[] | undefined;
  private cachedFor: readonly IstioResource[] | undefined;

  /** @param onChange called when the set of registered workloads changes. */
  constructor(private readonly graceMs: number, private readonly onChange: () => void) {}

  /** Whether a node carries enough metadata to be registered. */
  static registrable(info: NodeInfo): boolean {
    return info.address !== undefined && Object.keys(info.ports).length > 0;
  }

  /** A stream of this node opened; returns false when the node is not registrable. */
  connect(info: NodeInfo): boolean {
    if (!WorkloadRegistry.registrable(info)) return false;
    const entry = this.entries.get(info.id);
    if (entry) {
      entry.streams++;
      clearTimeout(entry.removal);
      entry.removal = undefined;
      return true;
    }
    this.entries.set(info.id, { info, streams: 1, removal: undefined });
    this.changed();
    return true;
  }

  /** A stream of this node ended; the entry goes after the grace period unless it reconnects. */
  disconnect(id: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    entry.streams--;
    if (entry.streams > 0) return;
    entry.removal = setTimeout(() => {
      this.entries.delete(id);
      this.changed();
    }, this.graceMs);
    entry.removal.unref();
  }

  /** The registered workloads. */
  list(): NodeInfo[] {
    return [...this.entries.values()].map((e) => e.info);
  }

  /**
   * WorkloadEntries for the registered nodes, plus ServiceEntries for apps no
   * configured ServiceEntry defines.
   */
  resources(configured: readonly IstioResource[]): IstioResource[] {
    if (this.cached && this.cachedFor === configured) return this.cached;
    const out: IstioResource[] = [];
    const hosts = new Set<string>();
    for (const r of configured) {
      if (r.kind === 'ServiceEntry') for (const h of r.spec.hosts) hosts.add(expandHost(h, r.metadata.namespace));
    }
    const synthesized = new Map<string, { namespace: string; app: string; ports: Map<number, string> }>();
    for (const { info } of this.entries.values()) {
      out.push({
        apiVersion: 'networking.istio.io/v1',
        kind: 'WorkloadEntry',
        metadata: { name: `auto-${info.name}`, namespace: info.namespace, labels: info.labels },
        spec: {
          address: info.address!,
          ports: info.ports,
          labels: info.labels,
          ...(info.serviceAccount && { serviceAccount: info.serviceAccount }),
        },
      });
      // the synthesised ServiceEntry selects by `app`, so only labelled workloads get one
      const app = info.labels.app;
      if (!app) continue;
      const host = expandHost(app, info.namespace);
      if (hosts.has(host)) continue;
      const key = `${info.namespace}/${app}`;
      const s = synthesized.get(key) ?? { namespace: info.namespace, app, ports: new Map() };
      for (const [name, port] of Object.entries(info.ports)) if (!s.ports.has(port)) s.ports.set(port, name);
      synthesized.set(key, s);
    }
    for (const s of synthesized.values()) {
      out.push({
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

  /** Clears every removal timer. */
  close(): void {
    for (const e of this.entries.values()) clearTimeout(e.removal);
    this.entries.clear();
  }

  private changed(): void {
    this.cached = undefined;
    this.onChange();
  }
}
