/**
 * Turns raw documents into validated Istio resources. Validation is Istio's
 * own (schema, then semantic checks); the first problem of a document throws a
 * MeshConfigError naming kind, namespace/name, field path and reason, so a
 * broken document never half-applies.
 */
import { type ConfigSourceRef, MeshConfigError } from '../errors.js';
import { documentSource } from './load.js';
import { kinds } from './istio-schemas.js';
import type { DestinationRuleSpec, HTTPRoute, IstioResource, ObjectMeta, ServiceEntrySpec, StringMatch, TrafficPolicy, WorkloadGroupSpec } from './istio-types.js';
import { checkExportTo } from './export-to.js';
import { isIP } from 'node:net';
import { translateCorsPolicy } from './translate-cors.js';
import { translateConsistentHash } from './translate-lb.js';
import { checkLocalitySetting } from './translate-locality.js';
import { checkEgressHost, type SidecarSpec } from './sidecar.js';
import { checkSliced, isPlainObject, type ConfigIssue } from './schema.js';
import { runNow, SliceBudget, type Sliced } from '../core/slices.js';
import { validateRetryOn } from '../core/retry.js';
import { MAX_REGEX_LENGTH, compileRegexRewrite, re2Problem } from '../core/regex.js';
import { MAX_TOTAL_WEIGHT } from '../core/route.js';
import { checkGrpcRoute, checkHttpRoute as checkGatewayHttpRoute, checkKubernetesGateway } from './gateway-api/validate.js';

/** Istio's API groups, meshlet's and the Kubernetes Gateway API's: their kinds are validated (or refused as unsupported); other groups (Deployments, Services…) are skipped. */
const ownGroups = ['networking.istio.io/', 'security.istio.io/', 'telemetry.istio.io/', 'extensions.istio.io/', 'meshlet.dev/', 'gateway.networking.k8s.io/'];

/** Validates documents and returns them as typed resources; throws on the first bad one. */
export function parseResources(docs: readonly object[]): IstioResource[] {
  const out: IstioResource[] = [];
  for (const result of validateDocuments(docs)) {
    if (result.error) throw result.error;
    if (result.resource) out.push(result.resource);
  }
  return out;
}

/** One document's validation: the resource, or the error that refused it (neither for other API groups). */
export interface DocumentResult {
  readonly doc: object;
  readonly resource?: IstioResource;
  readonly error?: MeshConfigError;
  /** The error is a duplicate kind/namespace/name (the first one stands). */
  readonly duplicate?: boolean;
}

/**
 * Validates every document on its own, as Kubernetes admission does: a bad
 * document is refused alone, its neighbours are still validated. Errors that
 * are not MeshConfigErrors (bugs) still throw.
 */
export function validateDocuments(docs: readonly object[]): DocumentResult[] {
  return runNow(validateDocumentsSliced(docs));
}

/** {@link validateDocuments} in slices (a document, or a slice of a long list in one), for a mesh's apply. */
export function* validateDocumentsSliced(docs: readonly object[], budget: SliceBudget = new SliceBudget()): Sliced<DocumentResult[]> {
  const out: DocumentResult[] = [];
  const seen = new Set<string>();
  for (let index = 0; index < docs.length; index++) {
    const doc = docs[index]!;
    let resource: IstioResource | undefined;
    try {
      resource = yield* parseResource(doc, index, budget);
    } catch (err) {
      if (!(err instanceof MeshConfigError)) throw err;
      out.push({ doc, error: err });
      continue;
    }
    if (budget.spend()) yield;
    if (!resource) continue;
    const key = `${resource.kind}/${resource.metadata.namespace}/${resource.metadata.name}`;
    if (seen.has(key)) {
      const error = new MeshConfigError(resource.kind, `${resource.metadata.namespace}/${resource.metadata.name}`, 'metadata.name', 'duplicate resource: the same kind, namespace and name appear twice', documentSource(doc));
      out.push({ doc, error, duplicate: true });
      continue;
    }
    seen.add(key);
    const source = documentSource(doc);
    if (source) resourceSources.set(resource, source);
    out.push({ doc, resource });
  }
  return out;
}

const resourceSources = new WeakMap<IstioResource, ConfigSourceRef>();

/** The file and document a validated resource was read from (undefined for objects passed in). */
export function resourceSource(resource: IstioResource): ConfigSourceRef | undefined {
  return resourceSources.get(resource);
}

/** True for documents of the API groups meshlet reads (Istio's and its own). */
export function isIstioDocument(doc: unknown): boolean {
  const apiVersion = isPlainObject(doc) ? doc.apiVersion : undefined;
  return typeof apiVersion === 'string' && ownGroups.some((g) => apiVersion.startsWith(g));
}

/** Validates one document; undefined for documents of other API groups. @throws MeshConfigError */
function* parseResource(doc: object, index: number, budget: SliceBudget): Sliced<IstioResource | undefined> {
  const source = isPlainObject(doc) ? documentSource(doc) : undefined;
  const where = { name: source ? `document ${source.document}` : `document ${index}`, namespace: '', source };
  if (!isPlainObject(doc)) throw new MeshConfigError('Config', where.name, '', 'must be an object with apiVersion, kind, metadata and spec');
  const { apiVersion, kind } = doc as Record<string, unknown>;
  const kindName = typeof kind === 'string' && kind !== '' ? kind : 'Config';
  if (typeof apiVersion !== 'string') fail(kindName, where, 'apiVersion', 'is required');
  // A Namespace is cluster-scoped; meshlet reads it for its labels (Gateway listeners' namespace selectors).
  if (apiVersion === 'v1' && kind === 'Namespace') return namespaceResource(yield* parseAs('Namespace', doc as Record<string, unknown>, apiVersion, where, source, budget));
  if (!ownGroups.some((g) => apiVersion.startsWith(g))) return undefined;
  if (typeof kind !== 'string' || kind === '') fail('Config', where, 'kind', `must be a kind name, got ${JSON.stringify(kind ?? null)}`);
  // The Gateway API's Gateway is not Istio's: it is read as istiod's KubernetesGateway kind.
  if (kind === 'Gateway' && apiVersion.startsWith(GATEWAY_API_GROUP)) return yield* parseAs('KubernetesGateway', doc as Record<string, unknown>, apiVersion, where, source, budget);
  if (!kinds[kind]) fail(kind, where, 'kind', `unsupported kind "${kind}" for ${apiVersion}`);
  return yield* parseAs(kind, doc as Record<string, unknown>, apiVersion, where, source, budget);
}

const GATEWAY_API_GROUP = 'gateway.networking.k8s.io/';

function* parseAs(kind: string, doc: Record<string, unknown>, apiVersion: string, where: Where, source: ConfigSourceRef | undefined, budget: SliceBudget): Sliced<IstioResource> {
  const { metadata, spec } = doc;
  const def = kinds[kind]!;
  if (!def.groups.includes(apiVersion)) fail(kind, where, 'apiVersion', `must be one of ${def.groups.join(', ')}, got "${apiVersion}"`);
  const meta = parseMetadata(kind, metadata, where);
  const issues: ConfigIssue[] = [];
  yield* checkSliced(def.spec, spec ?? {}, 'spec', issues, budget);
  if (issues.length === 0) semanticChecks[kind]?.((spec ?? {}) as never, issues, meta.namespace);
  if (issues.length > 0) fail(kind, { ...meta, source }, issues[0]!.path, issues[0]!.reason);
  return { apiVersion, kind, metadata: meta, spec: (spec ?? {}) } as IstioResource;
}

function parseMetadata(kind: string, metadata: unknown, where: Where): ObjectMeta {
  if (!isPlainObject(metadata)) fail(kind, where, 'metadata', 'is required');
  const { name, namespace } = metadata;
  if (typeof name !== 'string' || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name)) {
    fail(kind, where, 'metadata.name', `must be a DNS-1123 name, got ${JSON.stringify(name)}`);
  }
  if (namespace !== undefined && (typeof namespace !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace))) {
    fail(kind, { name, namespace: '', source: where.source }, 'metadata.namespace', `must be a DNS-1123 label, got ${JSON.stringify(namespace)}`);
  }
  return { ...(metadata as Partial<ObjectMeta>), name, namespace: (namespace as string | undefined) ?? 'default' };
}

/** A Namespace has no namespace of its own. */
function namespaceResource(r: IstioResource): IstioResource {
  return { ...r, metadata: { ...r.metadata, namespace: '' } };
}

/** A resource's name for an error, and where it was read from. */
interface Where {
  name: string;
  namespace: string;
  source?: ConfigSourceRef | undefined;
}

function fail(kind: string, meta: Where, path: string, reason: string): never {
  throw new MeshConfigError(kind, meta.namespace ? `${meta.namespace}/${meta.name}` : meta.name, path, reason, meta.source);
}

type Checker = (spec: never, issues: ConfigIssue[], namespace: string) => void;

const semanticChecks: Record<string, Checker> = {
  VirtualService(spec: { hosts?: string[]; http?: HTTPRoute[]; gateways?: string[]; exportTo?: string[] }, issues, namespace) {
    checkExportTo(spec.exportTo, namespace, false, issues);
    // A VirtualService without hosts is a delegate (istiod's validateVirtualService): no gateways, no nested delegation.
    const delegate = !spec.hosts || spec.hosts.length === 0;
    if (delegate && spec.gateways?.length) issues.push({ path: 'spec.gateways', reason: 'delegate virtual service must have no gateways specified' });
    spec.http?.forEach((route, i) => {
      checkHttpRoute(route, `spec.http[${i}]`, issues);
      if (delegate && (route as { delegate?: unknown }).delegate) issues.push({ path: `spec.http[${i}].delegate`, reason: 'delegate virtual service cannot have delegate' });
    });
  },
  DestinationRule(spec: DestinationRuleSpec, issues, namespace) {
    checkExportTo(spec.exportTo, namespace, false, issues);
    checkLoadBalancers(spec, issues);
    const names = new Set<string>();
    spec.subsets?.forEach((s, i) => {
      if (names.has(s.name)) issues.push({ path: `spec.subsets[${i}].name`, reason: `duplicate subset name "${s.name}"` });
      names.add(s.name);
    });
  },
  ServiceEntry(spec: ServiceEntrySpec, issues, namespace) {
    // Istio's ValidateServiceEntry (pkg/config/validation/validation.go): ports are optional (an entry
    // without them routes nothing, see support-check.ts); addresses are IPs or CIDRs, ranges only for NONE/STATIC.
    if (spec.hosts.length === 0) issues.push({ path: 'spec.hosts', reason: 'at least one host is required' });
    spec.hosts.forEach((h, i) => { if (h === '*') issues.push({ path: `spec.hosts[${i}]`, reason: 'invalid host *' }); });
    spec.addresses?.forEach((a, i) => { if (!validSubnet(a)) issues.push({ path: `spec.addresses[${i}]`, reason: `${JSON.stringify(a)} is not a valid IP address or CIDR range` }); });
    if (spec.addresses?.some((a) => a.includes('/')) && (spec.resolution ?? 'NONE') !== 'NONE' && spec.resolution !== 'STATIC') {
      issues.push({ path: 'spec.addresses', reason: 'CIDR addresses are allowed only for NONE/STATIC resolution types' });
    }
    const names = new Set<string>();
    const numbers = new Set<number>();
    spec.ports?.forEach((p, i) => {
      if (p.name !== undefined && names.has(p.name)) issues.push({ path: `spec.ports[${i}].name`, reason: `service entry port name "${p.name}" already defined` });
      if (numbers.has(p.number)) issues.push({ path: `spec.ports[${i}].number`, reason: `service entry port ${p.number} already defined` });
      if (p.name !== undefined) names.add(p.name);
      numbers.add(p.number);
    });
    if (spec.resolution === 'DNS_ROUND_ROBIN' && (spec.endpoints?.length ?? 0) > 1) issues.push({ path: 'spec.endpoints', reason: 'there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN' });
    checkExportTo(spec.exportTo, namespace, true, issues);
    if (spec.endpoints && spec.workloadSelector) issues.push({ path: 'spec.workloadSelector', reason: 'only one of endpoints or workloadSelector may be set' });
    spec.endpoints?.forEach((e, i) => {
      if (!e.address && spec.resolution !== 'DNS' && spec.resolution !== 'DNS_ROUND_ROBIN') issues.push({ path: `spec.endpoints[${i}].address`, reason: 'is required' });
    });
  },
  Sidecar(spec: SidecarSpec, issues) {
    spec.egress?.forEach((e, i) => e.hosts?.forEach((h, j) => {
      const bad = checkEgressHost(h);
      if (bad) issues.push({ path: `spec.egress[${i}].hosts[${j}]`, reason: bad });
    }));
  },
  WorkloadEntry(spec: { address?: string }, issues) {
    if (!spec.address) issues.push({ path: 'spec.address', reason: 'is required' });
  },
  WorkloadGroup(spec: WorkloadGroupSpec, issues) {
    // Istio's ValidateWorkloadGroup: valid metadata labels, and a probe names its health check method.
    checkLabels(spec.metadata?.labels, 'spec.metadata.labels', issues);
    checkLabels(spec.template?.labels, 'spec.template.labels', issues);
    const probe = spec.probe;
    if (!probe) return;
    if (!probe.httpGet && !probe.tcpSocket && !probe.exec && !probe.grpc) {
      issues.push({ path: 'spec.probe', reason: 'one of httpGet, tcpSocket, exec or grpc is required' });
    }
    probe.httpGet?.httpHeaders?.forEach((h, i) => {
      if (!/^[-_A-Za-z0-9]+$/.test(h.name ?? '')) issues.push({ path: `spec.probe.httpGet.httpHeaders[${i}].name`, reason: `must match ^[-_A-Za-z0-9]+$, got ${JSON.stringify(h.name ?? '')}` });
    });
    if (probe.exec && (probe.exec.command.length === 0 || probe.exec.command.some((c) => c.length === 0))) {
      issues.push({ path: 'spec.probe.exec.command', reason: 'a non-empty command is required' });
    }
  },
  Telemetry(spec: { selector?: unknown; targetRef?: unknown; targetRefs?: unknown }, issues) {
    // Istio's webhook: a Telemetry binds by selector or by targetRef(s), not both.
    if (spec.selector && (spec.targetRef || spec.targetRefs)) issues.push({ path: 'spec.selector', reason: 'only one of selector or targetRefs may be set' });
  },
  HTTPRoute: checkGatewayHttpRoute,
  GRPCRoute: checkGrpcRoute,
  KubernetesGateway: checkKubernetesGateway,
  RateLimit(spec: { host?: string; workloadSelector?: unknown; local?: unknown; global?: unknown }, issues) {
    if (!spec.host === !spec.workloadSelector) issues.push({ path: 'spec', reason: 'exactly one of host (outbound) or workloadSelector (inbound) must be set' });
    if (!spec.local && !spec.global) issues.push({ path: 'spec', reason: 'at least one of local or global must be set' });
  },
};

/** agent.ValidateIPSubnet: an IP, or an IP and a prefix length that fits its family. */
function validSubnet(address: string): boolean {
  const slash = address.indexOf('/');
  if (slash === -1) return isIP(address) !== 0;
  const family = isIP(address.slice(0, slash));
  const bits = address.slice(slash + 1);
  return family !== 0 && /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

const labelName = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Kubernetes label syntax (Istio's labels.Instance.Validate): `[prefix/]name` keys, values of 63 characters at most. */
function checkLabels(labels: Record<string, string> | undefined, path: string, issues: ConfigIssue[]): void {
  if (!labels) return;
  for (const [key, value] of Object.entries(labels)) {
    const slash = key.lastIndexOf('/');
    const prefix = slash === -1 ? undefined : key.slice(0, slash);
    const name = slash === -1 ? key : key.slice(slash + 1);
    if ((prefix !== undefined && (prefix.length > 253 || !dnsSubdomain.test(prefix))) || name.length > 63 || !labelName.test(name)) {
      issues.push({ path: `${path}.${key}`, reason: `invalid label key ${JSON.stringify(key)}` });
    } else if (value.length > 63 || (value !== '' && !labelName.test(value))) {
      issues.push({ path: `${path}.${key}`, reason: `invalid label value ${JSON.stringify(value)}` });
    }
  }
}

function checkHttpRoute(route: HTTPRoute, path: string, issues: ConfigIssue[]): void {
  const actions = ['route', 'redirect', 'directResponse', 'delegate'].filter((k) => (route as Record<string, unknown>)[k] !== undefined);
  if (actions.length === 0) issues.push({ path, reason: 'one of route, redirect, directResponse or delegate is required' });
  if (actions.length > 1) issues.push({ path, reason: `only one of route, redirect, directResponse, delegate may be set, got ${actions.join(' and ')}` });
  if (route.route) {
    if (route.route.length === 0) issues.push({ path: `${path}.route`, reason: 'at least one destination is required' });
    checkWeights(route.route, `${path}.route`, issues);
  }
  route.match?.forEach((m, j) => {
    const mpath = `${path}.match[${j}]`;
    for (const field of ['uri', 'scheme', 'method', 'authority'] as const) {
      const regex = m[field]?.regex;
      if (regex !== undefined) checkRegex(regex, `${mpath}.${field}.regex`, issues);
    }
    if (m.headers) checkRegexes(m.headers, `${mpath}.headers`, issues);
    if (m.withoutHeaders) checkRegexes(m.withoutHeaders, `${mpath}.withoutHeaders`, issues);
    if (m.queryParams) checkRegexes(m.queryParams, `${mpath}.queryParams`, issues);
  });
  if (route.rewrite?.uriRegexRewrite) checkRegexRewrite(route.rewrite.uriRegexRewrite, `${path}.rewrite.uriRegexRewrite`, issues);
  if (route.rewrite?.uri !== undefined && route.rewrite.uriRegexRewrite) issues.push({ path: `${path}.rewrite`, reason: 'only one of uri or uriRegexRewrite may be set' });
  const retryOn = route.retries?.retryOn;
  if (retryOn) {
    const bad = validateRetryOn(retryOn);
    if (bad) issues.push({ path: `${path}.retries.retryOn`, reason: bad });
  }
  if (route.corsPolicy) asIssues(issues, () => translateCorsPolicy(route.corsPolicy, { kind: 'VirtualService', resource: '', path }));
  const abort = route.fault?.abort;
  if (abort && abort.httpStatus === undefined && abort.grpcStatus === undefined) issues.push({ path: `${path}.fault.abort`, reason: 'httpStatus or grpcStatus is required' });
  const delay = route.fault?.delay;
  if (delay && !delay.fixedDelay) issues.push({ path: `${path}.fault.delay.fixedDelay`, reason: 'is required' });
}

/** Runs a translator's own checks, turning its MeshConfigError into an issue at its path. */
function asIssues(issues: ConfigIssue[], check: () => unknown): void {
  try {
    check();
  } catch (err) {
    if (!(err instanceof MeshConfigError)) throw err;
    issues.push({ path: err.path, reason: err.reason });
  }
}

/** consistentHash and localityLbSetting of every policy of a DestinationRule, as istiod's validateLoadBalancer. */
function checkLoadBalancers(spec: DestinationRuleSpec, issues: ConfigIssue[]): void {
  const policies: Array<[TrafficPolicy | undefined, string]> = [[spec.trafficPolicy, 'spec.trafficPolicy']];
  spec.subsets?.forEach((s, i) => policies.push([s?.trafficPolicy, `spec.subsets[${i}].trafficPolicy`]));
  for (const [policy, path] of [...policies]) policy?.portLevelSettings?.forEach((p, j) => policies.push([p, `${path}.portLevelSettings[${j}]`]));
  for (const [policy, path] of policies) {
    const at = { kind: 'DestinationRule', resource: '', path: `${path}.loadBalancer` };
    asIssues(issues, () => translateConsistentHash(policy?.loadBalancer, at));
    asIssues(issues, () => checkLocalitySetting(policy?.loadBalancer?.localityLbSetting, { ...at, path: `${at.path}.localityLbSetting` }));
  }
}

/** The regexes of a header or query-parameter map; paths are built only for those present. */
function checkRegexes(matches: Record<string, StringMatch>, path: string, issues: ConfigIssue[]): void {
  const names = Object.keys(matches);
  for (let i = 0; i < names.length; i++) {
    const regex = matches[names[i]!]!.regex;
    if (regex !== undefined) checkRegex(regex, `${path}.${names[i]}.regex`, issues);
  }
}

/**
 * Istio's weight rules (pkg/config/validation validateHTTPRouteDestinations):
 * weights are proportions, so any total above 0 is accepted; a lone
 * destination takes all traffic whatever its weight. Envoy also refuses a
 * total past a uint32, which Istio's int32 sum does not catch.
 */
function checkWeights(route: NonNullable<HTTPRoute['route']>, path: string, issues: ConfigIssue[]): void {
  let total = 0;
  for (const d of route) total += d.weight ?? 0;
  if (route.length > 1 && total === 0) issues.push({ path, reason: 'total destination weight = 0: at least one destination needs a weight above 0' });
  if (route.length > 1 && total > MAX_TOTAL_WEIGHT) issues.push({ path, reason: `weights total ${total}, more than Envoy's limit ${MAX_TOTAL_WEIGHT}` });
}

/** Istio's regex checks (validateStringRegexp): not empty, at most 1024 characters, RE2 syntax. */
function checkRegex(pattern: string, path: string, issues: ConfigIssue[]): void {
  if (pattern === '') issues.push({ path, reason: 'regex string match should not be empty' });
  else if (pattern.length > MAX_REGEX_LENGTH) issues.push({ path, reason: `regex is too large, max length allowed is ${MAX_REGEX_LENGTH}` });
  else {
    const problem = re2Problem(pattern);
    if (problem) issues.push({ path, reason: problem });
  }
}

/** Istio's validateURIRegexRewrite, plus the substitution RE2 would refuse at request time. */
function checkRegexRewrite(rewrite: { match: string; rewrite?: string }, path: string, issues: ConfigIssue[]): void {
  if (!rewrite.match || !rewrite.rewrite) {
    issues.push({ path, reason: 'UriRegexRewrite requires both rewrite and match fields to be specified' });
    return;
  }
  const before = issues.length;
  checkRegex(rewrite.match, `${path}.match`, issues);
  if (issues.length > before) return;
  try {
    compileRegexRewrite(rewrite.match, rewrite.rewrite);
  } catch (err) {
    issues.push({ path: `${path}.rewrite`, reason: (err as Error).message });
  }
}
