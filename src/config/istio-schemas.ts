/**
 * Field schemas of the Istio resources meshlet reads, named and nested as in
 * Istio's API reference (networking.istio.io/v1, security.istio.io/v1,
 * telemetry.istio.io/v1) so an
 * existing YAML validates unchanged and a typo is reported with its path.
 */
import { GATEWAY_API_VERSIONS, gatewayClassSpec, grpcRouteSpec, namespaceSpec, httpRouteSpec, kubernetesGatewaySpec, referenceGrantSpec } from './gateway-api/schemas.js';
import { l4RouteSpec, proxyConfigSpec, trafficExtensionSpec, wasmPluginSpec } from './extension-schemas.js';
import { any, bool, duration, int, list, map, num, obj, str, type Schema } from './schema.js';

const stringMatch = obj({ exact: str(), prefix: str(), regex: str() }, { oneOf: ['exact', 'prefix', 'regex'] });
const percent = obj({ value: num(0, 100) });
const portSelector = obj({ number: int(1, 65535) });
const destination = obj({ host: str(), subset: str(), port: portSelector }, { required: ['host'] });
const headerOps = obj({ set: map(str()), add: map(str()), remove: list(str()) });
const headers = obj({ request: headerOps, response: headerOps });

const httpMatch = obj({
  name: str(), uri: stringMatch, scheme: stringMatch, method: stringMatch, authority: stringMatch,
  headers: map(stringMatch), port: int(1, 65535), sourceLabels: map(str()), gateways: list(str()),
  queryParams: map(stringMatch), ignoreUriCase: bool, withoutHeaders: map(stringMatch),
  sourceNamespace: str(), statPrefix: str(),
});

const httpRoute = obj({
  name: str(),
  match: list(httpMatch),
  route: list(obj({ destination, weight: int(0, 2147483647), headers }, { required: ['destination'] })), // int32, as Istio's CRD
  redirect: obj({ uri: str(), authority: str(), port: int(1, 65535), derivePort: str(), scheme: str(), redirectCode: int(300, 399) }),
  directResponse: obj({ status: int(200, 599), body: obj({ string: str(), bytes: str() }) }, { required: ['status'] }),
  delegate: obj({ name: str(), namespace: str() }),
  rewrite: obj({ uri: str(), authority: str(), uriRegexRewrite: obj({ match: str(), rewrite: str() }, { required: ['match'] }) }),
  timeout: duration,
  retries: obj({ attempts: int(0), perTryTimeout: duration, retryOn: str(), retryRemoteLocalities: bool }),
  fault: obj({
    delay: obj({ fixedDelay: duration, exponentialDelay: duration, percentage: percent, percent: int(0, 100) }),
    abort: obj({ httpStatus: int(200, 599), grpcStatus: str(), http2Error: str(), percentage: percent }),
  }),
  mirror: destination,
  mirrors: list(obj({ destination, percentage: percent }, { required: ['destination'] })),
  mirrorPercentage: percent,
  mirrorPercent: int(0, 100),
  corsPolicy: obj({
    allowOrigins: list(stringMatch), allowOrigin: list(str()), allowMethods: list(str()), allowHeaders: list(str()),
    exposeHeaders: list(str()), maxAge: duration, allowCredentials: bool, unmatchedPreflights: str(['UNSPECIFIED', 'FORWARD', 'IGNORE']),
  }),
  headers,
});

export const virtualServiceSpec = obj({
  hosts: list(str()),
  gateways: list(str()),
  http: list(httpRoute),
  tls: any,
  tcp: any,
  exportTo: list(str()),
});

const loadBalancer = obj({
  simple: str(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST']),
  consistentHash: obj({
    httpHeaderName: str(), httpCookie: obj({ name: str(), path: str(), ttl: duration, attributes: list(obj({ name: str(), value: str() })) }), useSourceIp: bool,
    httpQueryParameterName: str(), ringHash: obj({ minimumRingSize: int(0) }), maglev: obj({ tableSize: int(0) }),
    minimumRingSize: int(0),
  }, { oneOf: ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'] }),
  localityLbSetting: obj({
    distribute: list(obj({ from: str(), to: map(int(0)) })),
    failover: list(obj({ from: str(), to: str() })),
    failoverPriority: list(str()),
    enabled: bool,
  }),
  warmupDurationSecs: duration,
}, { oneOf: ['simple', 'consistentHash'] });

const connectionPool = obj({
  tcp: obj({ maxConnections: int(1), connectTimeout: duration, tcpKeepalive: any, maxConnectionDuration: duration, idleTimeout: duration }),
  http: obj({
    http1MaxPendingRequests: int(1), http2MaxRequests: int(1), maxRequestsPerConnection: int(0), maxRetries: int(0),
    idleTimeout: duration, h2UpgradePolicy: str(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE']), useClientProtocol: bool,
    maxConcurrentStreams: int(1),
  }),
});

const outlierDetection = obj({
  consecutiveErrors: int(0), consecutive5xxErrors: int(0), consecutiveGatewayErrors: int(0),
  consecutiveLocalOriginFailures: int(0), splitExternalLocalOriginErrors: bool, interval: duration,
  baseEjectionTime: duration, maxEjectionPercent: int(0, 100), minHealthPercent: int(0, 100),
});

const clientTls = obj({
  mode: str(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL']), clientCertificate: str(), privateKey: str(),
  caCertificates: str(), credentialName: str(), subjectAltNames: list(str()), sni: str(), insecureSkipVerify: bool,
  caCrl: str(),
});

const trafficPolicyFields = { loadBalancer, connectionPool, outlierDetection, tls: clientTls };
const trafficPolicy = obj({
  ...trafficPolicyFields,
  portLevelSettings: list(obj({ port: portSelector, ...trafficPolicyFields })),
  tunnel: any,
  proxyProtocol: any,
});

export const destinationRuleSpec = obj({
  host: str(),
  trafficPolicy,
  subsets: list(obj({ name: str(), labels: map(str()), trafficPolicy }, { required: ['name'] })),
  exportTo: list(str()),
  workloadSelector: obj({ matchLabels: map(str()) }),
}, { required: ['host'] });

const workloadEntryFields = {
  address: str(), ports: map(int(1, 65535)), labels: map(str()), network: str(), locality: str(),
  weight: int(0), serviceAccount: str(),
};
export const workloadEntrySpec = obj(workloadEntryFields);

/** ReadinessProbe of a WorkloadGroup: at most one of httpGet, tcpSocket, exec, grpc (Istio requires one). */
const readinessProbe = obj({
  initialDelaySeconds: int(0), timeoutSeconds: int(0), periodSeconds: int(0), successThreshold: int(0), failureThreshold: int(0),
  httpGet: obj({
    path: str(), port: int(1, 65535), host: str(), scheme: str(['', 'HTTP', 'HTTPS']),
    httpHeaders: list(obj({ name: str(), value: str() })),
  }, { required: ['port'] }),
  tcpSocket: obj({ host: str(), port: int(1, 65535) }, { required: ['port'] }),
  exec: obj({ command: list(str()) }, { required: ['command'] }),
  grpc: obj({ port: int(1, 65535), service: str() }),
}, { oneOf: ['httpGet', 'tcpSocket', 'exec', 'grpc'] });

/**
 * WorkloadGroup (networking.istio.io/v1): the template every auto-registered
 * WorkloadEntry of the group is made from (src/control-plane/registry.ts).
 * The template's address is accepted but replaced by the connecting node's.
 */
export const workloadGroupSpec = obj({
  metadata: obj({ labels: map(str()), annotations: map(str()) }),
  template: workloadEntrySpec,
  probe: readinessProbe,
}, { required: ['template'] });

export const serviceEntrySpec = obj({
  hosts: list(str()),
  addresses: list(str()),
  ports: list(obj({ number: int(1, 65535), protocol: str(), name: str(), targetPort: int(1, 65535) }, { required: ['number'] })),
  location: str(['MESH_EXTERNAL', 'MESH_INTERNAL']),
  resolution: str(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN']),
  endpoints: list(obj(workloadEntryFields)),
  workloadSelector: obj({ labels: map(str()) }),
  exportTo: list(str()),
  subjectAltNames: list(str()),
}, { required: ['hosts'] });

export const gatewaySpec = obj({
  selector: map(str()),
  servers: list(obj({
    port: obj({ number: int(1, 65535), protocol: str(), name: str(), targetPort: int(1, 65535) }, { required: ['number'] }),
    hosts: list(str()),
    tls: obj({
      httpsRedirect: bool, mode: str(['PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL']),
      serverCertificate: str(), privateKey: str(), caCertificates: str(), credentialName: str(), subjectAltNames: list(str()),
      minProtocolVersion: str(), maxProtocolVersion: str(), cipherSuites: list(str()), verifyCertificateSpki: list(str()),
      verifyCertificateHash: list(str()),
    }),
    name: str(), bind: str(), defaultEndpoint: str(),
  }, { required: ['port', 'hosts'] })),
});

const selector = obj({ matchLabels: map(str()) });
const mtlsMode = obj({ mode: str(['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT']) });

export const peerAuthenticationSpec = obj({ selector, mtls: mtlsMode, portLevelMtls: map(mtlsMode) });

const strings = list(str());
export const authorizationPolicySpec = obj({
  selector, targetRef: any, targetRefs: any, action: str(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']), provider: any,
  rules: list(obj({
    from: list(obj({ source: obj({
      principals: strings, notPrincipals: strings, requestPrincipals: strings, notRequestPrincipals: strings,
      namespaces: strings, notNamespaces: strings, ipBlocks: strings, notIpBlocks: strings,
      remoteIpBlocks: strings, notRemoteIpBlocks: strings,
    }) })),
    to: list(obj({ operation: obj({
      hosts: strings, notHosts: strings, ports: strings, notPorts: strings, methods: strings, notMethods: strings,
      paths: strings, notPaths: strings,
    }) })),
    when: list(obj({ key: str(), values: strings, notValues: strings }, { required: ['key'] })),
  })),
});

export const requestAuthenticationSpec = obj({
  selector, targetRef: any, targetRefs: any,
  jwtRules: list(obj({
    issuer: str(), audiences: strings, jwksUri: str(), jwks: str(),
    fromHeaders: list(obj({ name: str(), prefix: str() }, { required: ['name'] })), fromParams: strings, fromCookies: strings,
    forwardOriginalToken: bool, outputPayloadToHeader: str(),
    outputClaimToHeaders: list(obj({ header: str(), claim: str() })),
    timeout: duration, spaceDelimitedClaims: strings, presence: str(['OPTIONAL', 'REQUIRED']),
  })),
});

export const rateLimitSpec = obj({
  host: str(),
  workloadSelector: selector,
  local: obj({ tokenBucket: obj({ maxTokens: int(1), tokensPerFill: int(1), fillInterval: duration }, { required: ['maxTokens', 'fillInterval'] }) }),
  global: obj({
    service: str(), domain: str(), failureModeDeny: bool, timeout: duration,
    descriptors: list(obj({ entries: list(obj({ key: str(), value: str() }, { required: ['key'] })) })),
  }, { required: ['service', 'domain'] }),
});

export const envoyFilterSpec = obj({
  workloadSelector: obj({ labels: map(str()) }),
  targetRefs: any,
  configPatches: list(obj({ applyTo: str(), match: any, patch: obj({ operation: str(), value: any, filterClass: str() }) })),
  priority: int(-2147483648),
});

const workloadMode = str(['CLIENT_AND_SERVER', 'CLIENT', 'SERVER']);
const providers = list(obj({ name: str() }, { required: ['name'] }));

/**
 * Telemetry (telemetry.istio.io/v1). Every field of Istio's API is accepted so
 * existing YAML validates; meshlet acts on sampling, span reporting, metric
 * disabling (src/telemetry/telemetry-policy.ts) and access logging
 * (src/config/translate-access-log.ts); the rest is reported by support.ts
 * (customTags, tagOverrides, …; see docs/telemetry.md).
 */
export const telemetrySpec = obj({
  selector,
  targetRef: any,
  targetRefs: any,
  tracing: list(obj({
    match: obj({ mode: workloadMode }),
    providers,
    randomSamplingPercentage: num(0, 100),
    disableSpanReporting: bool,
    customTags: any,
    useRequestIdForTraceSampling: bool,
    enableIstioTags: bool,
  })),
  metrics: list(obj({
    providers,
    overrides: list(obj({
      match: obj({
        metric: str([
          'ALL_METRICS', 'REQUEST_COUNT', 'REQUEST_DURATION', 'REQUEST_SIZE', 'RESPONSE_SIZE',
          'TCP_OPENED_CONNECTIONS', 'TCP_CLOSED_CONNECTIONS', 'TCP_SENT_BYTES', 'TCP_RECEIVED_BYTES',
          'GRPC_REQUEST_MESSAGES', 'GRPC_RESPONSE_MESSAGES',
        ]),
        customMetric: str(),
        mode: workloadMode,
      }, { oneOf: ['metric', 'customMetric'] }),
      disabled: bool,
      tagOverrides: any,
    })),
    reportingInterval: duration,
  })),
  accessLogging: list(obj({
    match: obj({ mode: workloadMode }),
    providers,
    disabled: bool,
    filter: obj({ expression: str() }),
  })),
});

/** API groups and versions accepted per kind (v1 plus the older aliases). */
const sidecarSpec = obj({
  workloadSelector: obj({ labels: map(str()) }),
  egress: list(obj({ port: any, bind: str(), captureMode: str(), hosts: list(str()) }, { required: ['hosts'] })),
  ingress: list(any),
  outboundTrafficPolicy: obj({ mode: str(['ALLOW_ANY', 'REGISTRY_ONLY']), egressProxy: any }),
  inboundConnectionPool: any,
});

export const kinds: Record<string, { groups: readonly string[]; spec: Schema }> = {
  VirtualService: { groups: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'], spec: virtualServiceSpec },
  DestinationRule: { groups: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'], spec: destinationRuleSpec },
  ServiceEntry: { groups: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'], spec: serviceEntrySpec },
  WorkloadEntry: { groups: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'], spec: workloadEntrySpec },
  WorkloadGroup: { groups: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'], spec: workloadGroupSpec },
  Gateway: { groups: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'], spec: gatewaySpec },
  Sidecar: { groups: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'], spec: sidecarSpec },
  EnvoyFilter: { groups: ['networking.istio.io/v1alpha3'], spec: envoyFilterSpec },
  PeerAuthentication: { groups: ['security.istio.io/v1', 'security.istio.io/v1beta1'], spec: peerAuthenticationSpec },
  AuthorizationPolicy: { groups: ['security.istio.io/v1', 'security.istio.io/v1beta1'], spec: authorizationPolicySpec },
  RequestAuthentication: { groups: ['security.istio.io/v1', 'security.istio.io/v1beta1'], spec: requestAuthenticationSpec },
  Telemetry: { groups: ['telemetry.istio.io/v1', 'telemetry.istio.io/v1alpha1'], spec: telemetrySpec },
  RateLimit: { groups: ['meshlet.dev/v1alpha1'], spec: rateLimitSpec },
  // Kubernetes Gateway API (src/config/gateway-api/): the versions Istio serves.
  HTTPRoute: { groups: GATEWAY_API_VERSIONS, spec: httpRouteSpec },
  GRPCRoute: { groups: GATEWAY_API_VERSIONS, spec: grpcRouteSpec },
  ReferenceGrant: { groups: ['gateway.networking.k8s.io/v1beta1', 'gateway.networking.k8s.io/v1'], spec: referenceGrantSpec },
  GatewayClass: { groups: GATEWAY_API_VERSIONS, spec: gatewayClassSpec },
  KubernetesGateway: { groups: GATEWAY_API_VERSIONS, spec: kubernetesGatewaySpec },
  // Kubernetes core: Namespaces, for the labels Gateway listeners select routes' namespaces by.
  Namespace: { groups: ['v1'], spec: namespaceSpec },
  // Accepted so Istio's YAML loads; what meshlet cannot run is reported, and extensions fail closed (extension-schemas.ts).
  WasmPlugin: { groups: ['extensions.istio.io/v1alpha1'], spec: wasmPluginSpec },
  TrafficExtension: { groups: ['extensions.istio.io/v1alpha1'], spec: trafficExtensionSpec },
  ProxyConfig: { groups: ['networking.istio.io/v1beta1'], spec: proxyConfigSpec },
  TCPRoute: { groups: ['gateway.networking.k8s.io/v1alpha2'], spec: l4RouteSpec },
  TLSRoute: { groups: ['gateway.networking.k8s.io/v1alpha2', 'gateway.networking.k8s.io/v1alpha3'], spec: l4RouteSpec },
  UDPRoute: { groups: ['gateway.networking.k8s.io/v1alpha2'], spec: l4RouteSpec },
};
