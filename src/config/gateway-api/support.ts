/**
 * The Gateway API kinds' part of the support table (support.ts): what meshlet
 * does with each field of HTTPRoute, GRPCRoute, ReferenceGrant and
 * GatewayClass. Generated into docs/istio-compatibility.md with the rest.
 */
import type { FieldSupport, KindSupport } from '../support.js';

const applied = (note?: string): FieldSupport => ({ status: 'applied', ...(note !== undefined && { note }) });
const unsupported = (note: string): FieldSupport => ({ status: 'unsupported', note });
const refused = (note: string): FieldSupport => ({ status: 'refused', note });

function parentRefs(p: string): Record<string, FieldSupport> {
  return {
    [`${p}.group`]: applied('"" or `core` with kind Service: a mesh route (GAMMA); gateway.networking.k8s.io with kind Gateway: an ingress route'),
    [`${p}.kind`]: applied('Service or Gateway; other kinds are refused'),
    [`${p}.namespace`]: applied('a Service in another namespace makes a consumer route: it applies to the route namespace\'s workloads only'),
    [`${p}.name`]: applied(),
    [`${p}.sectionName`]: applied('selects a Gateway listener by name; refused on a Service parent (a mesh route selects its port with `port`)'),
    [`${p}.port`]: applied('a Service port (the route applies to it only) or a Gateway listener port'),
  };
}

function backend(p: string): Record<string, FieldSupport> {
  return {
    [`${p}.group`]: applied('"" (core) Services, and networking.istio.io Hostname (a ServiceEntry host)'),
    [`${p}.kind`]: applied('Service or Hostname; any other kind does not resolve (ResolvedRefs=False, InvalidKind: its share gets 500)'),
    [`${p}.name`]: applied('a Service name, never a hostname'),
    [`${p}.namespace`]: applied('mesh routes need no ReferenceGrant, as in Istio'),
    [`${p}.port`]: applied('required for a Service'),
  };
}

function headerFilter(p: string): Record<string, FieldSupport> {
  return {
    [`${p}.set[].name`]: applied(), [`${p}.set[].value`]: applied(),
    [`${p}.add[].name`]: applied(), [`${p}.add[].value`]: applied(),
    [`${p}.remove`]: applied(),
  };
}

function filters(p: string, http: boolean): Record<string, FieldSupport> {
  return {
    [`${p}.type`]: applied(http ? 'RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, RequestRedirect, URLRewrite' : 'RequestHeaderModifier, ResponseHeaderModifier, RequestMirror (RequestRedirect and URLRewrite are refused in a GRPCRoute)'),
    ...headerFilter(`${p}.requestHeaderModifier`),
    ...headerFilter(`${p}.responseHeaderModifier`),
    ...backend(`${p}.requestMirror.backendRef`),
    [`${p}.requestMirror.percent`]: applied(),
    [`${p}.requestMirror.fraction.numerator`]: applied(), [`${p}.requestMirror.fraction.denominator`]: applied(),
    [`${p}.requestRedirect.scheme`]: applied(), [`${p}.requestRedirect.hostname`]: applied(),
    [`${p}.requestRedirect.path.type`]: applied(), [`${p}.requestRedirect.path.replaceFullPath`]: applied(),
    [`${p}.requestRedirect.path.replacePrefixMatch`]: applied(),
    [`${p}.requestRedirect.port`]: applied(), [`${p}.requestRedirect.statusCode`]: applied('default 302'),
    [`${p}.urlRewrite.hostname`]: applied(), [`${p}.urlRewrite.path.type`]: applied(),
    [`${p}.urlRewrite.path.replaceFullPath`]: applied(), [`${p}.urlRewrite.path.replacePrefixMatch`]: applied('"/" removes the matched prefix'),
    [`${p}.extensionRef`]: refused('no extension filters: a rule with one is refused rather than half-applied'),
    [`${p}.cors`]: refused('no CORS filter: a rule with one is refused rather than half-applied'),
  };
}

/** Filters on a backendRef: the header modifiers apply to that backend's share; the others are refused. */
function backendFilters(p: string, http: boolean): Record<string, FieldSupport> {
  const out = filters(p, http);
  out[`${p}.type`] = applied('RequestHeaderModifier, ResponseHeaderModifier; other types on a backendRef are refused');
  for (const k of Object.keys(out)) {
    if (k.startsWith(`${p}.requestMirror`) || k.startsWith(`${p}.requestRedirect`) || k.startsWith(`${p}.urlRewrite`)) out[k] = refused('only header modifiers are accepted on a backendRef');
  }
  return out;
}

function httpBackendRefs(p: string, http: boolean): Record<string, FieldSupport> {
  return {
    ...backend(p),
    [`${p}.weight`]: applied('default 1; weight 0 sends nothing; all 0 answers 500'),
    ...backendFilters(`${p}.filters[]`, http),
  };
}

const SESSION = unsupported('no session persistence (cookie or header affinity): requests are balanced per request');

/** The Gateway API sections of the support table. */
export const GATEWAY_API_SUPPORT: Readonly<Record<string, KindSupport>> = {
  HTTPRoute: {
    note: 'Kubernetes Gateway API. A route whose parentRef is a Service (GAMMA) becomes a VirtualService for that host with Gateway API semantics, as istiod makes it; for one host it takes precedence over a VirtualService. See docs/gateway-api.md.',
    fields: {
      ...parentRefs('spec.parentRefs[]'),
      'spec.hostnames': applied('ingress routes: the hosts they serve; mesh routes ignore them (the parent Service is the host)'),
      'spec.rules[].name': applied('names the Envoy route'),
      'spec.rules[].matches[].path.type': applied('Exact, PathPrefix (whole path segments), RegularExpression (RE2)'),
      'spec.rules[].matches[].path.value': applied(),
      'spec.rules[].matches[].headers[].type': applied(), 'spec.rules[].matches[].headers[].name': applied(), 'spec.rules[].matches[].headers[].value': applied(),
      'spec.rules[].matches[].queryParams[].type': applied(), 'spec.rules[].matches[].queryParams[].name': applied(), 'spec.rules[].matches[].queryParams[].value': applied(),
      'spec.rules[].matches[].method': applied(),
      ...filters('spec.rules[].filters[]', true),
      ...httpBackendRefs('spec.rules[].backendRefs[]', true),
      'spec.rules[].timeouts.request': applied('the route timeout'),
      'spec.rules[].timeouts.backendRequest': applied('the per-try timeout when a retry is set, else the route timeout'),
      'spec.rules[].retry.attempts': applied('default 2'),
      'spec.rules[].retry.backoff': applied('the base interval of Envoy\'s exponential backoff'),
      'spec.rules[].retry.codes': applied('with connect-failure, refused-stream, unavailable, cancelled, as istiod'),
      'spec.rules[].sessionPersistence': SESSION,
    },
  },
  GRPCRoute: {
    note: 'Kubernetes Gateway API. Translated as HTTPRoute is; service and method match the `/<service>/<method>` path.',
    fields: {
      ...parentRefs('spec.parentRefs[]'),
      'spec.hostnames': applied('ingress routes: the hosts they serve; mesh routes ignore them'),
      'spec.rules[].name': applied('names the Envoy route'),
      'spec.rules[].matches[].method.type': applied(), 'spec.rules[].matches[].method.service': applied(), 'spec.rules[].matches[].method.method': applied(),
      'spec.rules[].matches[].headers[].type': applied(), 'spec.rules[].matches[].headers[].name': applied(), 'spec.rules[].matches[].headers[].value': applied(),
      ...filters('spec.rules[].filters[]', false),
      ...httpBackendRefs('spec.rules[].backendRefs[]', false),
      'spec.rules[].sessionPersistence': SESSION,
    },
  },
  ReferenceGrant: {
    note: 'Lets routes of other namespaces attached to a Gateway reference Services here. Mesh routes need none, as in Istio.',
    fields: {
      'spec.from[].group': applied(), 'spec.from[].kind': applied(), 'spec.from[].namespace': applied(),
      'spec.to[].group': applied(), 'spec.to[].kind': applied(), 'spec.to[].name': applied(),
    },
  },
  KubernetesGateway: {
    note: 'The Gateway API\'s `Gateway` (gateway.networking.k8s.io), reported as kind KubernetesGateway as istiod names it. A Gateway of class `istio` is served by meshlet gateways (createGateway, `meshlet gateway`) whose workload labels include `gateway.networking.k8s.io/gateway-name: <name>`, the label of the pods Istio deploys for it.',
    fields: {
      'spec.gatewayClassName': applied('only `istio` is served; a Gateway of another class is accepted with MESHLET_NO_EFFECT'),
      'spec.listeners[].name': applied('names the server; routes select it with sectionName'),
      'spec.listeners[].hostname': applied('intersected with the routes\' hostnames'),
      'spec.listeners[].port': applied(),
      'spec.listeners[].protocol': applied('HTTP and HTTPS; other protocols are not programmed (a warning names the listener)'),
      'spec.listeners[].tls.mode': applied('Terminate; Passthrough listeners are not programmed'),
      'spec.listeners[].tls.certificateRefs': unsupported('Kubernetes Secrets are not read: give the certificate files as tls.options meshlet.dev/server-certificate, meshlet.dev/private-key (and meshlet.dev/ca-certificates for client certificates)'),
      'spec.listeners[].tls.options': applied('meshlet.dev/server-certificate, meshlet.dev/private-key, meshlet.dev/ca-certificates: file paths'),
      'spec.listeners[].tls.frontendValidation': unsupported('client certificates are checked against meshlet.dev/ca-certificates only'),
      'spec.listeners[].allowedRoutes.namespaces.from': applied('Same (default), All, Selector'),
      'spec.listeners[].allowedRoutes.namespaces.selector.matchLabels': applied('over the labels of the config\'s v1 Namespace documents, plus kubernetes.io/metadata.name that every namespace has'),
      'spec.listeners[].allowedRoutes.namespaces.selector.matchExpressions[].key': applied(),
      'spec.listeners[].allowedRoutes.namespaces.selector.matchExpressions[].operator': applied('In, NotIn, Exists, DoesNotExist'),
      'spec.listeners[].allowedRoutes.namespaces.selector.matchExpressions[].values': applied(),
      'spec.listeners[].allowedRoutes.kinds[].group': applied(), 'spec.listeners[].allowedRoutes.kinds[].kind': applied('HTTPRoute, GRPCRoute'),
      'spec.addresses': unsupported('the gateway listens where it is started (createGateway port / host)'),
      'spec.infrastructure': unsupported('meshlet deploys nothing: start the gateway workload yourself'),
      'spec.allowedListeners': unsupported('no ListenerSets'),
      'spec.backendTLS': unsupported('backend TLS follows DestinationRules'),
      'spec.tls': unsupported('no gateway-wide TLS settings'),
    },
  },
  GatewayClass: {
    note: 'Accepted so Istio\'s manifests load; meshlet serves Gateways of class `istio` itself and reads nothing else of the class.',
    fields: {
      'spec.controllerName': applied('informational'),
      'spec.parametersRef': unsupported('no per-class parameters'),
      'spec.description': applied('informational'),
    },
  },
  Namespace: {
    note: 'Kubernetes core `v1` Namespaces, read for their labels: a Gateway listener\'s `allowedRoutes.namespaces.selector` matches them (every namespace also has `kubernetes.io/metadata.name`, declared or not).',
    fields: {
      'spec.finalizers': applied('informational: meshlet deletes nothing'),
    },
  },
};
