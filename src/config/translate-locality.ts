/**
 * Endpoint locality and `localityLbSetting`, as istiod computes them for one
 * proxy (pilot/pkg/networking/core/loadbalancer/loadbalancer.go,
 * pilot/pkg/xds/endpoints/endpoint_builder.go): endpoints grouped into
 * LocalityLbEndpoints by `region/zone/subzone`, then, relative to the proxy's
 * own locality, `distribute` rewrites locality weights, or — only when the
 * destination has outlier detection, as Envoy could not notice failed hosts
 * otherwise — `failover` / `failoverPriority` assign priorities (0 = same
 * subzone, 1 = same zone, 2 = same region, 3 = the failover region, 4 =
 * elsewhere; failoverPriority by matching labels). The mesh default is
 * istiod's `localityLbSetting: { enabled: true }`.
 */
import { MeshConfigError } from '../errors.js';
import type { Cluster, ClusterLoadAssignment, LbEndpoint } from './envoy.js';
import type { LocalityLoadBalancerSetting, TrafficPolicy } from './istio-types.js';
import type { ProxyInfo } from './translate.js';
import type { ServiceEndpoint } from './registry.js';
import type { ConfigLocation } from './translate-resilience.js';

/** Envoy's Locality. */
export interface Locality {
  region: string;
  zone: string;
  sub_zone: string;
}

/** One LocalityLbEndpoints, in proto-loader object form. */
export interface LocalityGroup {
  locality: Locality;
  lb_endpoints: LbEndpoint[];
  load_balancing_weight: { value: number };
  priority?: number;
}

export const REGION_LABEL = 'topology.kubernetes.io/region';
export const ZONE_LABEL = 'topology.kubernetes.io/zone';
export const SUBZONE_LABEL = 'topology.istio.io/subzone';
const LOCALITY_LABEL = 'topology.istio.io/locality';
const LEGACY_LOCALITY_LABEL = 'istio-locality';
const NETWORK_LABEL = 'topology.istio.io/network';

/** `region/zone/subzone` → Locality (label.SplitLocalityLabel). */
export function parseLocality(s: string | undefined): Locality {
  const [region = '', zone = '', sub_zone = ''] = (s ?? '').split('/');
  return { region, zone, sub_zone };
}

/** Locality → `region/zone/subzone`, trailing empty parts dropped (util.LocalityToString). */
export function localityString(l: Locality): string {
  if (!l.zone) return l.region;
  return l.sub_zone ? `${l.region}/${l.zone}/${l.sub_zone}` : `${l.region}/${l.zone}`;
}

/**
 * A workload's locality, as Istio reads it: an explicit `locality` (WorkloadEntry),
 * else the `topology.istio.io/locality` or legacy `istio-locality` label (`.`
 * for `/`, as Kubernetes labels cannot hold `/`), else the Kubernetes topology
 * labels `topology.kubernetes.io/region`, `…/zone`, `topology.istio.io/subzone`.
 */
export function workloadLocality(locality: string | undefined, labels: Readonly<Record<string, string>> | undefined): string {
  if (locality) return locality;
  const label = labels?.[LOCALITY_LABEL] ?? labels?.[LEGACY_LOCALITY_LABEL];
  if (label) return label.includes('/') ? label : label.replaceAll('.', '/');
  const region = labels?.[REGION_LABEL];
  if (!region) return '';
  return localityString({ region, zone: labels?.[ZONE_LABEL] ?? '', sub_zone: labels?.[SUBZONE_LABEL] ?? '' });
}

/** Labels with the topology labels of `locality` added (Istio's AugmentLabels), for failoverPriority. */
export function augmentLabels(labels: Readonly<Record<string, string>>, locality: string): Readonly<Record<string, string>> {
  if (!locality) return labels;
  const l = parseLocality(locality);
  const out: Record<string, string> = { ...labels };
  if (l.region) out[REGION_LABEL] = l.region;
  if (l.zone) out[ZONE_LABEL] = l.zone;
  if (l.sub_zone) out[SUBZONE_LABEL] = l.sub_zone;
  return out;
}

/** The proxy a translation is for, as locality LB sees it. */
export interface LocalityProxy {
  locality: Locality;
  labels: Readonly<Record<string, string>>;
}

/**
 * istiod's GetEffectiveLbSetting for locality: the DestinationRule's setting
 * unless it says `enabled: false`, else the mesh's (default `{ enabled: true }`).
 */
export function effectiveLocalitySetting(rule: LocalityLoadBalancerSetting | undefined, mesh: LocalityLoadBalancerSetting | undefined = { enabled: true }): LocalityLoadBalancerSetting | undefined {
  const s = rule ?? mesh;
  return s && s.enabled === false ? undefined : s;
}

/** Whether the cluster balances by locality weight (Envoy's locality_weighted_lb_config), as istiod's ApplyToCluster. */
export function localityWeighted(setting: LocalityLoadBalancerSetting | undefined, outlierDetection: boolean): boolean {
  if (!setting) return false;
  return !!setting.distribute || (outlierDetection && (!!setting.failover || !!setting.failoverPriority));
}

/**
 * istiod's ValidateLocalityLbSetting (pkg/config/validation/agent): not both
 * distribute and failover; not failover with a topology label in
 * failoverPriority; weights in [1, 100] summing to 100 per `from`; failover
 * between two different plain regions.
 */
export function checkLocalitySetting(s: LocalityLoadBalancerSetting | undefined, at: ConfigLocation): void {
  if (!s) return;
  const fail = (field: string, reason: string): never => {
    throw new MeshConfigError(at.kind, at.resource, `${at.path}.${field}`, reason);
  };
  if (s.distribute?.length && s.failover?.length) fail('failover', 'can not simultaneously specify \'distribute\' and \'failover\'');
  if (s.failover?.length) {
    for (const l of s.failoverPriority ?? []) {
      if (l === REGION_LABEL || l === ZONE_LABEL || l === SUBZONE_LABEL) fail('failoverPriority', `can not simultaneously set 'failover' and topology label '${l}' in 'failover_priority'`);
    }
  }
  (s.distribute ?? []).forEach((d, i) => {
    let total = 0;
    for (const [loc, w] of Object.entries(d?.to ?? {})) {
      const weight = Number(w);
      if (!(weight >= 1 && weight <= 100)) fail(`distribute[${i}].to.${loc}`, 'locality weight must be in range [1, 100]');
      total += weight;
    }
    if (total !== 100) fail(`distribute[${i}].to`, `total locality weight ${total} != 100`);
  });
  (s.failover ?? []).forEach((f, i) => {
    if (f?.from === f?.to) fail(`failover[${i}]`, 'locality lb failover settings must specify different regions');
    if (`${f?.from}${f?.to}`.includes('/')) fail(`failover[${i}]`, 'locality lb failover only specify region');
    if (`${f?.from}${f?.to}`.includes('*')) fail(`failover[${i}]`, 'locality lb failover region should not contain \'*\' wildcard');
  });
}

/** util.LocalityMatch: a `region/zone/subzone` pattern (`*` or absent parts match anything). */
export function localityMatch(l: Locality | undefined, pattern: string): boolean {
  const p = parseLocality(pattern);
  const region = l?.region ?? '';
  const zone = l?.zone ?? '';
  const sub = l?.sub_zone ?? '';
  return (p.region === '*' || p.region === region) && (p.zone === '*' || p.zone === '' || p.zone === zone) && (p.sub_zone === '*' || p.sub_zone === '' || p.sub_zone === sub);
}

/** util.LbPriority. */
function lbPriority(proxy: Locality, ep: Locality): number {
  if (proxy.region !== ep.region) return 3;
  if (proxy.zone !== ep.zone) return 2;
  return proxy.sub_zone === ep.sub_zone ? 0 : 1;
}

/**
 * Groups a cluster's endpoints by locality (sorted by locality, as istiod's
 * endpoint builder), each group weighted by the sum of its endpoint weights.
 */
export function groupByLocality(endpoints: readonly ServiceEndpoint[], toLb: (e: ServiceEndpoint) => LbEndpoint): { groups: LocalityGroup[]; members: ServiceEndpoint[][] } {
  const byKey = new Map<string, { group: LocalityGroup; members: ServiceEndpoint[] }>();
  for (const e of endpoints) {
    const key = e.locality ?? '';
    let entry = byKey.get(key);
    if (!entry) byKey.set(key, (entry = { group: { locality: parseLocality(key), lb_endpoints: [], load_balancing_weight: { value: 0 } }, members: [] }));
    entry.group.lb_endpoints.push(toLb(e));
    entry.group.load_balancing_weight.value += e.weight || 1;
    entry.members.push(e);
  }
  const keys = [...byKey.keys()].sort();
  return { groups: keys.map((k) => byKey.get(k)!.group), members: keys.map((k) => byKey.get(k)!.members) };
}

/**
 * istiod's ApplyLocalityLoadBalancer on the grouped endpoints of one cluster:
 * `distribute`, else (only with `enableFailover`) failoverPriority and/or
 * failover. Returns the groups to publish (failoverPriority splits groups).
 */
export function applyLocalitySetting(groups: LocalityGroup[], members: ServiceEndpoint[][], proxy: LocalityProxy, setting: LocalityLoadBalancerSetting, enableFailover: boolean): LocalityGroup[] {
  if (setting.distribute) {
    applyLocalityWeights(proxy.locality, groups, setting.distribute);
    return groups;
  }
  if (!enableFailover) return groups;
  let out = groups;
  if (setting.failoverPriority && setting.failoverPriority.length > 0) {
    out = applyFailoverPriorities(groups, members, proxy.labels, setting.failoverPriority);
    if (setting.failover && setting.failover.length > 0) applyLocalityFailover(proxy.locality, out, setting.failover);
  } else {
    applyLocalityFailover(proxy.locality, out, setting.failover ?? []);
  }
  return out;
}

function applyLocalityWeights(proxy: Locality, groups: LocalityGroup[], distribute: NonNullable<LocalityLoadBalancerSetting['distribute']>): void {
  const rule = distribute.find((d) => d && localityMatch(proxy, d.from ?? ''));
  if (!rule) return;
  const unmatched = new Set(groups.map((_, i) => i));
  for (const [pattern, weight] of Object.entries(rule.to ?? {})) {
    const matched: Array<[number, number]> = [];
    let total = 0;
    for (const i of unmatched) {
      if (!localityMatch(groups[i]!.locality, pattern)) continue;
      unmatched.delete(i);
      const w = groups[i]!.load_balancing_weight.value || 1;
      matched.push([i, w]);
      total += w;
    }
    for (const [i, w] of matched) {
      const dest = (w * Number(weight)) / total;
      if (dest > 0) groups[i]!.load_balancing_weight = { value: Math.ceil(dest) };
    }
  }
  // Localities the rule does not name get no traffic.
  for (const i of unmatched) groups[i]!.lb_endpoints = [];
}

/** Renumbers priorities 0, 1, 2… keeping their order (istiod compacts the same way). */
function compact(groups: LocalityGroup[]): void {
  const levels = [...new Set(groups.map((g) => g.priority ?? 0))].sort((a, b) => a - b);
  const rank = new Map(levels.map((p, i) => [p, i]));
  for (const g of groups) g.priority = rank.get(g.priority ?? 0)!;
}

function applyLocalityFailover(proxy: Locality, groups: LocalityGroup[], failover: NonNullable<LocalityLoadBalancerSetting['failover']>): void {
  for (const g of groups) {
    let priority = lbPriority(proxy, g.locality);
    if (priority === 3) {
      const rule = failover.find((f) => f.from === proxy.region);
      if (rule && g.locality.region !== rule.to) priority = 4;
    }
    g.priority = (g.priority ?? 0) * 5 + priority;
  }
  compact(groups);
}

function applyFailoverPriorities(groups: LocalityGroup[], members: ServiceEndpoint[][], proxyLabels: Readonly<Record<string, string>>, failoverPriority: readonly string[]): LocalityGroup[] {
  if (Object.keys(proxyLabels).length === 0) return groups;
  const names: string[] = [];
  const overrides = new Map<string, string>();
  for (const entry of failoverPriority) {
    const [name, value] = entry.split('=');
    names.push(name!);
    if (value !== undefined && entry.split('=').length === 2) overrides.set(name!, value);
  }
  const lowest = failoverPriority.length;
  const includesNetwork = names[0] === NETWORK_LABEL;
  const out: LocalityGroup[] = [];
  groups.forEach((group, gi) => {
    const byPriority = new Map<number, number[]>();
    members[gi]!.forEach((e, i) => {
      const labels = augmentLabels(e.labels, e.locality ?? '');
      let priority = 0;
      let adjust = 0;
      for (let j = 0; j < names.length; j++) {
        const want = overrides.get(names[j]!) ?? proxyLabels[names[j]!];
        if (want !== labels[names[j]!]) {
          if (j === 0 && includesNetwork) {
            adjust = lowest;
            continue;
          }
          priority = lowest - j;
          break;
        }
      }
      priority += adjust;
      const list = byPriority.get(priority) ?? [];
      list.push(i);
      byPriority.set(priority, list);
    });
    for (const p of [...byPriority.keys()].sort((a, b) => a - b)) {
      const lbes = byPriority.get(p)!.map((i) => group.lb_endpoints[i]!);
      out.push({ locality: group.locality, lb_endpoints: lbes, load_balancing_weight: { value: lbes.reduce((a, l) => a + (l.load_balancing_weight?.value ?? 1), 0) }, priority: p });
    }
  });
  compact(out);
  return out;
}

/**
 * A cluster's endpoints as LocalityLbEndpoints: one group per locality, with
 * the destination's localityLbSetting (or the mesh default) applied relative
 * to the proxy's locality when it is known (translate-locality.ts); the
 * cluster balances by locality weight when istiod would say so.
 */
export function localityEndpoints(cluster: Cluster, endpoints: readonly ServiceEndpoint[], toLb: (e: ServiceEndpoint) => LbEndpoint, policy: TrafficPolicy, proxy: ProxyInfo): ClusterLoadAssignment['endpoints'] {
  if (endpoints.length === 0) return [];
  const at = { kind: 'DestinationRule', resource: cluster.name, path: 'trafficPolicy.loadBalancer.localityLbSetting' };
  checkLocalitySetting(policy.loadBalancer?.localityLbSetting, at);
  const { groups, members } = groupByLocality(endpoints, toLb);
  const setting = effectiveLocalitySetting(policy.loadBalancer?.localityLbSetting);
  if (setting && localityWeighted(setting, !!policy.outlierDetection)) cluster.common_lb_config = { ...cluster.common_lb_config, locality_weighted_lb_config: {} };
  // Without localities (no endpoint names one) the assignment is one group, as before locality LB.
  if (groups.length === 1 && !groups[0]!.locality.region) return [{ locality: {}, load_balancing_weight: { value: 1 }, lb_endpoints: groups[0]!.lb_endpoints }];
  if (!setting || proxy.locality === undefined) return groups;
  const self = { locality: parseLocality(proxy.locality), labels: augmentLabels(proxy.labels, proxy.locality) };
  return applyLocalitySetting(groups, members, self, setting, !!policy.outlierDetection);
}
