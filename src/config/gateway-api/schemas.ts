/**
 * Field schemas of the Gateway API kinds meshlet reads, named and nested as in
 * the Gateway API reference (gateway.networking.k8s.io/v1), so existing YAML
 * validates unchanged and a typo is reported with its path. The CRDs' own
 * limits (weights 0–1,000,000, ports 1–65535, enums) are enforced here;
 * checks across fields are in validate.ts.
 */
import { any, int, list, map, obj, str, type Schema } from '../schema.js';

/** The API versions Istio serves these kinds at (v1 plus the older spellings). */
export const GATEWAY_API_VERSIONS = ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1', 'gateway.networking.k8s.io/v1alpha2'] as const;

const parentRef = obj({
  group: str(), kind: str(), namespace: str(), name: str(), sectionName: str(), port: int(1, 65535),
}, { required: ['name'] });

const backendFields = { group: str(), kind: str(), name: str(), namespace: str(), port: int(1, 65535) };
const backendObjectRef = obj(backendFields, { required: ['name'] });

const header = obj({ name: str(), value: str() }, { required: ['name'] });
const headerFilter = obj({ set: list(header), add: list(header), remove: list(str()) });
const pathModifier = obj({
  type: str(['ReplaceFullPath', 'ReplacePrefixMatch']), replaceFullPath: str(), replacePrefixMatch: str(),
}, { required: ['type'] });

const filterTypes = ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'RequestRedirect', 'URLRewrite', 'ExtensionRef', 'CORS'];
const filter = obj({
  type: str(filterTypes),
  requestHeaderModifier: headerFilter,
  responseHeaderModifier: headerFilter,
  requestMirror: obj({
    backendRef: backendObjectRef, percent: int(0, 100),
    fraction: obj({ numerator: int(0), denominator: int(1) }, { required: ['numerator'] }),
  }, { required: ['backendRef'] }),
  requestRedirect: obj({
    scheme: str(['http', 'https']), hostname: str(), path: pathModifier, port: int(1, 65535),
    statusCode: int(301, 308),
  }),
  urlRewrite: obj({ hostname: str(), path: pathModifier }),
  extensionRef: any,
  cors: any,
}, { required: ['type'] });

const matchType = str(['Exact', 'RegularExpression']);
const headerMatch = obj({ type: matchType, name: str(), value: str() }, { required: ['name'] });

const httpBackendRef = obj({ ...backendFields, weight: int(0, 1_000_000), filters: list(filter) }, { required: ['name'] });

const httpRouteRule = obj({
  name: str(),
  matches: list(obj({
    path: obj({ type: str(['Exact', 'PathPrefix', 'RegularExpression']), value: str() }),
    headers: list(headerMatch),
    queryParams: list(headerMatch),
    method: str(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']),
  })),
  filters: list(filter),
  backendRefs: list(httpBackendRef),
  timeouts: obj({ request: str(), backendRequest: str() }), // GEP-2257 durations, checked in validate.ts (0s is valid)
  retry: obj({ attempts: int(0), backoff: str(), codes: list(int(400, 599)) }),
  sessionPersistence: any,
});

/** HTTPRoute (gateway.networking.k8s.io/v1). */
export const httpRouteSpec: Schema = obj({
  parentRefs: list(parentRef),
  hostnames: list(str()),
  rules: list(httpRouteRule),
});

/** GRPCRoute (gateway.networking.k8s.io/v1). */
export const grpcRouteSpec: Schema = obj({
  parentRefs: list(parentRef),
  hostnames: list(str()),
  rules: list(obj({
    name: str(),
    matches: list(obj({
      method: obj({ type: matchType, service: str(), method: str() }),
      headers: list(headerMatch),
    })),
    filters: list(filter),
    backendRefs: list(httpBackendRef),
    sessionPersistence: any,
  })),
});

/** ReferenceGrant (gateway.networking.k8s.io/v1beta1): which kinds of which namespaces may reference what here. */
export const referenceGrantSpec: Schema = obj({
  from: list(obj({ group: str(), kind: str(), namespace: str() }, { required: ['kind', 'namespace'] })),
  to: list(obj({ group: str(), kind: str(), name: str() }, { required: ['kind'] })),
}, { required: ['from', 'to'] });

/** A Kubernetes Namespace (v1): read for its labels, which Gateway listeners select with allowedRoutes.namespaces.selector. */
export const namespaceSpec: Schema = obj({ finalizers: list(str()) });

/** GatewayClass: read for its controllerName only. */
export const gatewayClassSpec: Schema = obj({
  controllerName: str(), parametersRef: any, description: str(),
}, { required: ['controllerName'] });

/** Gateway (gateway.networking.k8s.io/v1): listeners, their hostnames and which routes they admit. */
export const kubernetesGatewaySpec: Schema = obj({
  gatewayClassName: str(),
  listeners: list(obj({
    name: str(), hostname: str(), port: int(1, 65535), protocol: str(),
    tls: obj({ mode: str(['Terminate', 'Passthrough']), certificateRefs: any, options: map(str()), frontendValidation: any }),
    allowedRoutes: obj({
      namespaces: obj({ from: str(['All', 'Same', 'Selector']), selector: obj({ matchLabels: map(str()), matchExpressions: list(obj({ key: str(), operator: str(['In', 'NotIn', 'Exists', 'DoesNotExist']), values: list(str()) }, { required: ['key', 'operator'] })) }) }),
      kinds: list(obj({ group: str(), kind: str() }, { required: ['kind'] })),
    }),
  }, { required: ['name', 'port', 'protocol'] })),
  addresses: any,
  infrastructure: any,
  allowedListeners: any,
  backendTLS: any,
  tls: any,
}, { required: ['gatewayClassName'] });
