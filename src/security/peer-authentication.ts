/**
 * PeerAuthentication (security.istio.io/v1) resolved for one workload, as
 * istiod does: a workload policy (selector matching its labels) beats the
 * namespace policy (no selector) which beats the mesh policy (root
 * namespace, no selector); `UNSET` inherits from the next level; port-level
 * modes come from the most specific policy only. Nothing set: PERMISSIVE.
 */

/** The mTLS mode a server applies to a connection. */
export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

/** The Istio resource shape this module reads (other kinds are ignored). */
export interface PeerAuthenticationResource {
  kind?: string;
  metadata: { name: string; namespace?: string };
  spec?: {
    selector?: { matchLabels?: Record<string, string> };
    mtls?: { mode?: string };
    portLevelMtls?: Record<string, { mode?: string }>;
  };
}

/** The modes in force for one workload. */
export interface PeerAuthenticationPolicy {
  /** Mode for connections to `port` (the port the workload listens on). */
  modeFor(port: number | undefined): MtlsMode;
  /** Mode for the workload as a whole (ports without a port-level setting). */
  readonly mode: MtlsMode;
  /** Port-level modes (portLevelMtls of the workload policy). */
  readonly ports: ReadonlyMap<number, MtlsMode>;
}

const DEFAULT_MODE: MtlsMode = 'PERMISSIVE';

function modeOf(value: { mode?: string } | undefined): MtlsMode | undefined {
  const m = value?.mode;
  return m === 'STRICT' || m === 'PERMISSIVE' || m === 'DISABLE' ? m : undefined;
}

function selects(selector: Record<string, string> | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector) return true;
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}

/** Oldest first wins among equals, as Istio; without timestamps, the first listed. */
function first<T>(list: readonly T[], pred: (t: T) => boolean): T | undefined {
  for (const t of list) if (pred(t)) return t;
  return undefined;
}

/**
 * Resolves the PeerAuthentication policy of a workload from a whole config
 * (other kinds in `resources` are skipped).
 */
export function peerAuthenticationFor(
  resources: readonly unknown[],
  workload: { namespace: string; labels?: Readonly<Record<string, string>> },
  options: { rootNamespace?: string } = {},
): PeerAuthenticationPolicy {
  const root = options.rootNamespace ?? 'istio-system';
  const labels = workload.labels ?? {};
  const pas = (resources as PeerAuthenticationResource[]).filter((r) => r?.kind === 'PeerAuthentication');
  const hasSelector = (p: PeerAuthenticationResource): boolean => Object.keys(p.spec?.selector?.matchLabels ?? {}).length > 0;
  const workloadPolicy = first(pas, (p) => (p.metadata.namespace ?? 'default') === workload.namespace && hasSelector(p) && selects(p.spec?.selector?.matchLabels, labels));
  const namespacePolicy = first(pas, (p) => (p.metadata.namespace ?? 'default') === workload.namespace && !hasSelector(p));
  const meshPolicy = first(pas, (p) => p.metadata.namespace === root && !hasSelector(p));
  const mode = modeOf(workloadPolicy?.spec?.mtls) ?? modeOf(namespacePolicy?.spec?.mtls) ?? modeOf(meshPolicy?.spec?.mtls) ?? DEFAULT_MODE;
  const ports = new Map<number, MtlsMode>();
  // Istio honours portLevelMtls only on workload-selector policies.
  for (const [port, value] of Object.entries(workloadPolicy?.spec?.portLevelMtls ?? {})) {
    const m = modeOf(value);
    if (m !== undefined && /^\d+$/.test(port)) ports.set(Number(port), m);
  }
  return {
    mode,
    ports,
    modeFor: ports.size === 0 ? () => mode : (port) => (port !== undefined ? ports.get(port) : undefined) ?? mode,
  };
}
