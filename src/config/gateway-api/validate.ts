/**
 * Checks across fields of Gateway API routes, as the CRDs' CEL rules and
 * istiod's conversion refuse them: a filter names exactly its own field,
 * paths start with `/`, regexes are RE2, a Service backend has a port and a
 * name (not a hostname), redirect and backends are not mixed with rewrite.
 * Filters meshlet does not implement (ExtensionRef, CORS) are refused here
 * rather than ignored.
 */
import { MAX_REGEX_LENGTH, re2Problem } from '../../core/regex.js';
import { parseDuration } from '../../core/duration.js';
import type { ConfigIssue } from '../schema.js';
import type { GRPCRouteSpec, HTTPBackendRef, HTTPRouteFilter, HTTPRouteSpec, KubernetesGatewaySpec, ParentReference } from './types.js';

const filterField: Readonly<Record<HTTPRouteFilter['type'], keyof HTTPRouteFilter>> = {
  RequestHeaderModifier: 'requestHeaderModifier', ResponseHeaderModifier: 'responseHeaderModifier', RequestMirror: 'requestMirror',
  RequestRedirect: 'requestRedirect', URLRewrite: 'urlRewrite', ExtensionRef: 'extensionRef', CORS: 'cors',
};

/** HTTPRoute semantic checks. */
export function checkHttpRoute(spec: HTTPRouteSpec, issues: ConfigIssue[]): void {
  checkParents(spec.parentRefs, issues);
  spec.rules?.forEach((rule, i) => {
    const p = `spec.rules[${i}]`;
    rule.matches?.forEach((m, j) => {
      const mp = `${p}.matches[${j}]`;
      const type = m.path?.type ?? 'PathPrefix';
      const value = m.path?.value ?? '/';
      if (type === 'RegularExpression') checkRegex(value, `${mp}.path.value`, issues);
      else if (!value.startsWith('/')) issues.push({ path: `${mp}.path.value`, reason: 'must be an absolute path (start with "/")' });
      else if (/\/\/|\/\.\.?(\/|$)|[#?]/.test(value)) issues.push({ path: `${mp}.path.value`, reason: 'must not contain "//", "/./", "/../", "#" or "?"' });
      m.headers?.forEach((h, k) => { if (h.type === 'RegularExpression') checkRegex(h.value, `${mp}.headers[${k}].value`, issues); });
      m.queryParams?.forEach((h, k) => { if (h.type === 'RegularExpression') checkRegex(h.value, `${mp}.queryParams[${k}].value`, issues); });
    });
    checkFilters(rule.filters, `${p}.filters`, issues, true);
    const types = new Set((rule.filters ?? []).map((f) => f.type));
    if (types.has('RequestRedirect') && types.has('URLRewrite')) issues.push({ path: `${p}.filters`, reason: 'may not contain both RequestRedirect and URLRewrite' });
    if (types.has('RequestRedirect') && rule.backendRefs?.length) issues.push({ path: `${p}.backendRefs`, reason: 'a rule with a RequestRedirect filter may not have backendRefs' });
    checkBackends(rule.backendRefs, `${p}.backendRefs`, issues);
    for (const f of ['request', 'backendRequest'] as const) {
      const d = rule.timeouts?.[f];
      if (d !== undefined) checkDuration(d, `${p}.timeouts.${f}`, issues);
    }
    const request = rule.timeouts?.request ? parseDuration(rule.timeouts.request) : undefined;
    const backend = rule.timeouts?.backendRequest ? parseDuration(rule.timeouts.backendRequest) : undefined;
    if (typeof request === 'number' && typeof backend === 'number' && request > 0 && backend > request) {
      issues.push({ path: `${p}.timeouts.backendRequest`, reason: 'must be no greater than timeouts.request' });
    }
    if (rule.retry?.backoff !== undefined) checkDuration(rule.retry.backoff, `${p}.retry.backoff`, issues);
  });
}

/** GRPCRoute semantic checks. */
export function checkGrpcRoute(spec: GRPCRouteSpec, issues: ConfigIssue[]): void {
  checkParents(spec.parentRefs, issues);
  spec.rules?.forEach((rule, i) => {
    const p = `spec.rules[${i}]`;
    rule.matches?.forEach((m, j) => {
      const mp = `${p}.matches[${j}].method`;
      if (m.method && m.method.service === undefined && m.method.method === undefined) issues.push({ path: mp, reason: 'one or both of service or method must be specified' });
      if (m.method?.type === 'RegularExpression') {
        if (m.method.service !== undefined) checkRegex(m.method.service, `${mp}.service`, issues);
        if (m.method.method !== undefined) checkRegex(m.method.method, `${mp}.method`, issues);
      }
      m.headers?.forEach((h, k) => { if (h.type === 'RegularExpression') checkRegex(h.value, `${p}.matches[${j}].headers[${k}].value`, issues); });
    });
    checkFilters(rule.filters, `${p}.filters`, issues, false);
    checkBackends(rule.backendRefs, `${p}.backendRefs`, issues);
  });
}

function checkParents(parents: ParentReference[] | undefined, issues: ConfigIssue[]): void {
  parents?.forEach((ref, i) => {
    const group = ref.group ?? 'gateway.networking.k8s.io';
    const kind = ref.kind ?? 'Gateway';
    const service = (group === '' || group === 'core') && kind === 'Service';
    const gateway = group === 'gateway.networking.k8s.io' && kind === 'Gateway';
    if (!service && !gateway) issues.push({ path: `spec.parentRefs[${i}]`, reason: `parentRef group "${group}" kind "${kind}" is not supported: a Service (group "", kind Service) or a Gateway` });
    if (service && ref.sectionName !== undefined) issues.push({ path: `spec.parentRefs[${i}].sectionName`, reason: 'a Service parentRef selects its port with port, not sectionName' });
  });
}

function checkFilters(filters: HTTPRouteFilter[] | undefined, path: string, issues: ConfigIssue[], http: boolean): void {
  const seen = new Set<string>();
  filters?.forEach((f, i) => {
    const p = `${path}[${i}]`;
    const field = filterField[f.type];
    for (const other of Object.values(filterField)) {
      if (other !== field && f[other] !== undefined) issues.push({ path: `${p}.${other}`, reason: `must not be set for filter type ${f.type}` });
    }
    if (f[field] === undefined && f.type !== 'ExtensionRef') issues.push({ path: `${p}.${field}`, reason: `is required for filter type ${f.type}` });
    if (f.type === 'ExtensionRef' || f.type === 'CORS') issues.push({ path: `${p}.type`, reason: `filter type ${f.type} is not supported by meshlet (refused rather than ignored)` });
    if (!http && (f.type === 'RequestRedirect' || f.type === 'URLRewrite')) issues.push({ path: `${p}.type`, reason: `filter type ${f.type} is not allowed in a GRPCRoute` });
    if (f.type !== 'RequestMirror' && seen.has(f.type)) issues.push({ path: `${p}.type`, reason: `filter type ${f.type} may appear once per rule` });
    seen.add(f.type);
    const paths = [f.urlRewrite?.path, f.requestRedirect?.path];
    for (const m of paths) {
      if (m?.type === 'ReplaceFullPath' && m.replaceFullPath === undefined) issues.push({ path: `${p}`, reason: 'replaceFullPath must be specified when type is set to ReplaceFullPath' });
      if (m?.type === 'ReplacePrefixMatch' && m.replacePrefixMatch === undefined) issues.push({ path: `${p}`, reason: 'replacePrefixMatch must be specified when type is set to ReplacePrefixMatch' });
    }
    for (const h of [...(f.requestHeaderModifier?.set ?? []), ...(f.requestHeaderModifier?.add ?? []), ...(f.responseHeaderModifier?.set ?? []), ...(f.responseHeaderModifier?.add ?? [])]) {
      if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(h.value)) issues.push({ path: p, reason: `header ${JSON.stringify(h.name)} value contains invalid characters` });
    }
    if (f.requestMirror) checkBackend(f.requestMirror.backendRef, `${p}.requestMirror.backendRef`, issues);
    const fraction = f.requestMirror?.fraction;
    if (fraction && fraction.numerator > (fraction.denominator ?? 100)) issues.push({ path: `${p}.requestMirror.fraction`, reason: 'numerator must be less than or equal to denominator' });
    if (f.requestMirror?.fraction && f.requestMirror.percent !== undefined) issues.push({ path: `${p}.requestMirror`, reason: 'only one of percent or fraction may be specified' });
  });
}

function checkBackends(refs: HTTPBackendRef[] | undefined, path: string, issues: ConfigIssue[]): void {
  refs?.forEach((ref, i) => {
    checkBackend(ref, `${path}[${i}]`, issues);
    ref.filters?.forEach((f, j) => {
      if (f.type !== 'RequestHeaderModifier' && f.type !== 'ResponseHeaderModifier') issues.push({ path: `${path}[${i}].filters[${j}].type`, reason: `filter type ${f.type} is not supported on a backendRef (RequestHeaderModifier, ResponseHeaderModifier)` });
    });
  });
}

/** Gateway listeners' namespace selectors, as the API server validates a LabelSelector: In/NotIn need values, Exists/DoesNotExist take none. */
export function checkKubernetesGateway(spec: KubernetesGatewaySpec, issues: ConfigIssue[]): void {
  spec.listeners?.forEach((l, i) => {
    l.allowedRoutes?.namespaces?.selector?.matchExpressions?.forEach((e, j) => {
      const needsValues = e.operator === 'In' || e.operator === 'NotIn';
      if (needsValues !== ((e.values?.length ?? 0) > 0)) {
        issues.push({ path: `spec.listeners[${i}].allowedRoutes.namespaces.selector.matchExpressions[${j}].values`, reason: needsValues ? `must be non-empty for operator ${e.operator}` : `must be empty for operator ${e.operator}` });
      }
    });
  });
}

function checkBackend(ref: { group?: string; kind?: string; name: string; port?: number }, path: string, issues: ConfigIssue[]): void {
  const service = (ref.group ?? '') === '' && (ref.kind ?? 'Service') === 'Service';
  if (service && ref.port === undefined) issues.push({ path: `${path}.port`, reason: 'is required when the referent is a Kubernetes Service' });
  if (service && ref.name.includes('.')) issues.push({ path: `${path}.name`, reason: 'service name invalid; the name of the Service must be used, not the hostname' });
}

function checkRegex(pattern: string, path: string, issues: ConfigIssue[]): void {
  if (pattern === '') issues.push({ path, reason: 'regex should not be empty' });
  else if (pattern.length > MAX_REGEX_LENGTH) issues.push({ path, reason: `regex is too large, max length allowed is ${MAX_REGEX_LENGTH}` });
  else {
    const problem = re2Problem(pattern);
    if (problem) issues.push({ path, reason: problem });
  }
}

/** GEP-2257 durations: Go-style units, zero allowed (it disables the timeout). */
function checkDuration(d: string, path: string, issues: ConfigIssue[]): void {
  if (!/^([0-9]{1,5}(h|m|s|ms)){1,4}$/.test(d)) issues.push({ path, reason: `must be a Gateway API duration such as "10s" or "1h30m", got ${JSON.stringify(d)}` });
}
