/**
 * The support table: for every field of every schema meshlet reads
 * (istio-schemas.ts), whether meshlet applies it, accepts it with a warning
 * because it does not apply it, or refuses it. "Not supported" is data here,
 * never an accident: test/config/support.test.ts walks the schemas and fails
 * when a field has no entry (or an entry names no field), and
 * docs/istio-compatibility.md is generated from this table
 * (`npm run docs:compat`).
 *
 * Paths are schema paths: `spec.http[].match[].headers.*.exact` — `[]` is
 * any list item, `*` any map key. An entry covers its field and everything
 * under it unless a deeper entry says otherwise.
 */

/** What meshlet does with a field. */
export type SupportStatus =
  /** Translated and enforced. */
  | 'applied'
  /** Accepted so existing YAML loads, not applied: the resource is `partial` and a warning names the field. */
  | 'unsupported'
  /** Refused with a MeshConfigError: the resource is `rejected`. */
  | 'refused';

/** One entry of the support table. */
export interface FieldSupport {
  readonly status: SupportStatus;
  /** What the user should know: how it is applied, or why not. */
  readonly note?: string;
  /** Values of an applied field that meshlet does not apply (a warning names the value). */
  readonly unsupportedValues?: Readonly<Record<string, string>>;
  /** Values of an applied field that meshlet refuses (MeshConfigError when translated). */
  readonly refusedValues?: Readonly<Record<string, string>>;
}

/** A kind's support: its fields, and what is true of the whole kind. */
export interface KindSupport {
  /** A note shown at the top of the kind's section. */
  readonly note?: string;
  /** Set when the kind has no effect in embedded mode (createMesh({ config })): why. */
  readonly embeddedNoEffect?: string;
  readonly fields: Readonly<Record<string, FieldSupport>>;
}

import { GATEWAY_API_SUPPORT } from './gateway-api/support.js';
import { EXTENSION_SUPPORT } from './support-extensions.js';

const applied = (note?: string, more: Omit<FieldSupport, 'status' | 'note'> = {}): FieldSupport => ({ status: 'applied', ...(note !== undefined && { note }), ...more });
const unsupported = (note: string): FieldSupport => ({ status: 'unsupported', note });
const refused = (note: string): FieldSupport => ({ status: 'refused', note });

/** exportTo, as istiod scopes it (export-to.ts). */
const exportTo = (note: string): FieldSupport => applied(`\`.\`, \`*\`, namespace names${note}; decided by the calling workload's namespace, in embedded mode and per namespace in the control plane; meshConfig default*ExportTo applies when unset`);
const NO_NETWORK = unsupported('one flat network: no multi-network gateways');

/** The fields of a StringMatch at `p`. */
function stringMatch(p: string, note?: string): Record<string, FieldSupport> {
  return { [`${p}.exact`]: applied(note), [`${p}.prefix`]: applied(note), [`${p}.regex`]: applied(note ?? 'RE2 syntax, as Envoy') };
}

function destination(p: string): Record<string, FieldSupport> {
  return { [`${p}.host`]: applied('short names expand in the resource\'s namespace'), [`${p}.subset`]: applied(), [`${p}.port.number`]: applied() };
}

function headerOps(p: string): Record<string, FieldSupport> {
  const out: Record<string, FieldSupport> = {};
  for (const side of ['request', 'response']) for (const op of ['set', 'add', 'remove']) out[`${p}.${side}.${op}`] = applied();
  return out;
}

function httpRoute(p: string): Record<string, FieldSupport> {
  const m = `${p}.match[]`;
  return {
    [`${p}.name`]: applied('names the Envoy route'),
    [`${m}.name`]: applied('informational: names the match, nothing to enforce'),
    ...stringMatch(`${m}.uri`), ...stringMatch(`${m}.scheme`), ...stringMatch(`${m}.method`), ...stringMatch(`${m}.authority`),
    ...stringMatch(`${m}.headers.*`, 'an empty match tests presence'),
    ...stringMatch(`${m}.withoutHeaders.*`, 'an absent header reads as empty, as istiod'),
    ...stringMatch(`${m}.queryParams.*`),
    [`${m}.port`]: applied(),
    [`${m}.ignoreUriCase`]: applied(),
    [`${m}.gateways`]: applied('gateways drop matches naming other gateways; a workload keeps only matches naming `mesh` (or none), as istiod'),
    [`${m}.sourceLabels`]: applied('a workload keeps the match only when its own labels include these (istiod\'s sourceMatchHTTP); a meshlet gateway does not narrow by it'),
    [`${m}.sourceNamespace`]: applied('a workload keeps the match only in this namespace; a meshlet gateway does not narrow by it'),
    [`${m}.statPrefix`]: unsupported('no per-route Envoy stats'),
    ...destination(`${p}.route[].destination`),
    [`${p}.route[].weight`]: applied(),
    ...headerOps(`${p}.route[].headers`),
    [`${p}.redirect.uri`]: applied(), [`${p}.redirect.authority`]: applied(), [`${p}.redirect.port`]: applied(),
    [`${p}.redirect.scheme`]: applied(), [`${p}.redirect.redirectCode`]: applied(),
    [`${p}.redirect.derivePort`]: unsupported('the redirect keeps the configured port'),
    [`${p}.directResponse.status`]: applied(),
    [`${p}.directResponse.body.string`]: applied(),
    [`${p}.directResponse.body.bytes`]: unsupported('only body.string is sent'),
    [`${p}.delegate`]: applied('the host-less VirtualService\'s routes are merged in as istiod merges them'),
    [`${p}.rewrite.uri`]: applied(), [`${p}.rewrite.authority`]: applied(),
    [`${p}.rewrite.uriRegexRewrite.match`]: applied(), [`${p}.rewrite.uriRegexRewrite.rewrite`]: applied(),
    [`${p}.timeout`]: applied(),
    [`${p}.retries.attempts`]: applied(), [`${p}.retries.perTryTimeout`]: applied(), [`${p}.retries.retryOn`]: applied(),
    [`${p}.retries.retryRemoteLocalities`]: unsupported('no locality-aware retries'),
    [`${p}.fault.delay.fixedDelay`]: applied(), [`${p}.fault.delay.percentage.value`]: applied(), [`${p}.fault.delay.percent`]: applied(),
    [`${p}.fault.delay.exponentialDelay`]: unsupported('only fixedDelay is injected'),
    [`${p}.fault.abort.httpStatus`]: applied(), [`${p}.fault.abort.grpcStatus`]: applied(), [`${p}.fault.abort.percentage.value`]: applied(),
    [`${p}.fault.abort.http2Error`]: unsupported('no HTTP/2 error aborts'),
    ...destination(`${p}.mirror`),
    ...destination(`${p}.mirrors[].destination`),
    [`${p}.mirrors[].percentage.value`]: applied(),
    [`${p}.mirrorPercentage.value`]: applied(), [`${p}.mirrorPercent`]: applied(),
    [`${p}.corsPolicy`]: applied('Envoy\'s CORS filter on the caller\'s side (mesh.fetch, the gateway): preflights answered by the mesh, CORS headers added to responses'),
    [`${p}.corsPolicy.allowOrigins[].exact`]: applied(), [`${p}.corsPolicy.allowOrigins[].prefix`]: applied(), [`${p}.corsPolicy.allowOrigins[].regex`]: applied('RE2, full match'),
    [`${p}.corsPolicy.allowOrigin`]: applied('deprecated: exact origins'),
    [`${p}.corsPolicy.allowMethods`]: applied(), [`${p}.corsPolicy.allowHeaders`]: applied(), [`${p}.corsPolicy.exposeHeaders`]: applied(),
    [`${p}.corsPolicy.maxAge`]: applied('whole seconds'), [`${p}.corsPolicy.allowCredentials`]: applied(),
    [`${p}.corsPolicy.unmatchedPreflights`]: applied('FORWARD (the default) sends a preflight from an origin that does not match to the app; IGNORE answers it without CORS headers'),
    ...headerOps(`${p}.headers`),
  };
}

function trafficPolicy(p: string, top: boolean): Record<string, FieldSupport> {
  const lb = `${p}.loadBalancer`;
  const cp = `${p}.connectionPool`;
  const od = `${p}.outlierDetection`;
  const tls = `${p}.tls`;
  return {
    [`${lb}.simple`]: applied('LEAST_CONN is LEAST_REQUEST; UNSPECIFIED is ROUND_ROBIN', { unsupportedValues: { PASSTHROUGH: 'no original-destination clusters: balanced as ROUND_ROBIN' } }),
    [`${lb}.consistentHash`]: applied('RING_HASH, or MAGLEV with `maglev`, built as Envoy builds them'),
    [`${lb}.consistentHash.httpHeaderName`]: applied(), [`${lb}.consistentHash.httpQueryParameterName`]: applied(),
    [`${lb}.consistentHash.httpCookie.name`]: applied(), [`${lb}.consistentHash.httpCookie.path`]: applied(),
    [`${lb}.consistentHash.httpCookie.ttl`]: applied('a request without the cookie gets one (Set-Cookie); its value is random per request, not derived from the downstream connection as Envoy\'s'),
    [`${lb}.consistentHash.httpCookie.attributes[].name`]: applied(), [`${lb}.consistentHash.httpCookie.attributes[].value`]: applied(),
    [`${lb}.consistentHash.useSourceIp`]: applied('an app\'s calls hash the workload\'s own address (a sidecar sees the pod IP); a gateway hashes the client\'s'),
    [`${lb}.consistentHash.ringHash.minimumRingSize`]: applied(), [`${lb}.consistentHash.maglev.tableSize`]: applied('a prime, as Envoy requires'),
    [`${lb}.consistentHash.minimumRingSize`]: applied('deprecated: ringHash.minimumRingSize'),
    [`${lb}.localityLbSetting`]: applied('relative to the workload\'s locality (createMesh workload.locality or its topology labels); failover and failoverPriority only with outlierDetection, as istiod'),
    [`${lb}.localityLbSetting.distribute[].from`]: applied(), [`${lb}.localityLbSetting.distribute[].to`]: applied('locality weights; localities not named get no traffic'),
    [`${lb}.localityLbSetting.failover[].from`]: applied(), [`${lb}.localityLbSetting.failover[].to`]: applied(),
    [`${lb}.localityLbSetting.failoverPriority`]: applied('label-based priorities against the workload\'s labels'),
    [`${lb}.localityLbSetting.enabled`]: applied('the mesh default is enabled, as istiod\'s'),
    [`${lb}.warmupDurationSecs`]: unsupported('no slow-start warm-up'),
    [`${cp}.tcp.maxConnections`]: applied(), [`${cp}.tcp.connectTimeout`]: applied(),
    [`${cp}.tcp.maxConnectionDuration`]: applied(), [`${cp}.tcp.idleTimeout`]: applied(),
    [`${cp}.tcp.tcpKeepalive`]: unsupported('sockets keep Node\'s keep-alive defaults'),
    [`${cp}.http.http1MaxPendingRequests`]: applied(), [`${cp}.http.http2MaxRequests`]: applied(),
    [`${cp}.http.maxRequestsPerConnection`]: applied(), [`${cp}.http.maxRetries`]: applied(), [`${cp}.http.idleTimeout`]: applied(),
    [`${cp}.http.h2UpgradePolicy`]: unsupported('the protocol is chosen by the client adapter (undici HTTP/1.1, grpc-js HTTP/2)'),
    [`${cp}.http.useClientProtocol`]: unsupported('the protocol is chosen by the client adapter (undici HTTP/1.1, grpc-js HTTP/2)'),
    [`${cp}.http.maxConcurrentStreams`]: unsupported('HTTP/2 stream limits are grpc-js\'s'),
    [`${od}.consecutiveErrors`]: applied('deprecated: gateway errors, as older istiod'),
    [`${od}.consecutive5xxErrors`]: applied(), [`${od}.consecutiveGatewayErrors`]: applied(),
    [`${od}.consecutiveLocalOriginFailures`]: applied(), [`${od}.splitExternalLocalOriginErrors`]: applied(),
    [`${od}.interval`]: applied(), [`${od}.baseEjectionTime`]: applied(), [`${od}.maxEjectionPercent`]: applied(), [`${od}.minHealthPercent`]: applied(),
    [`${tls}.mode`]: applied(),
    [`${tls}.clientCertificate`]: applied('a file path'), [`${tls}.privateKey`]: applied('a file path'), [`${tls}.caCertificates`]: applied('a file path'),
    [`${tls}.subjectAltNames`]: applied(), [`${tls}.sni`]: applied(), [`${tls}.insecureSkipVerify`]: applied(),
    [`${tls}.credentialName`]: unsupported('Kubernetes secrets are not read: use clientCertificate / privateKey / caCertificates files'),
    [`${tls}.caCrl`]: unsupported('no certificate revocation lists'),
    ...(top && {
      [`${p}.portLevelSettings[].port.number`]: applied('port-level settings override the rule and subset policy'),
      ...trafficPolicy(`${p}.portLevelSettings[]`, false),
      [`${p}.tunnel`]: unsupported('no HTTP CONNECT tunnelling'),
      [`${p}.proxyProtocol`]: unsupported('no PROXY protocol header'),
    }),
  };
}

function workloadEntry(p: string, template = false): Record<string, FieldSupport> {
  return {
    [`${p}.address`]: template ? unsupported('replaced by the connecting workload\'s address, as Istio auto-registration does') : applied(),
    [`${p}.ports`]: applied(), [`${p}.labels`]: applied('select DestinationRule subsets and ServiceEntry workloadSelectors'),
    [`${p}.weight`]: applied(), [`${p}.serviceAccount`]: applied('the SPIFFE identity checked by ISTIO_MUTUAL'),
    [`${p}.network`]: NO_NETWORK, [`${p}.locality`]: applied('region/zone/subzone for locality load balancing; else the topology labels'),
  };
}

const selectorNote = 'selects workloads by their labels';

/** Per kind, per schema path: the support table. */
export const SUPPORT: Readonly<Record<string, KindSupport>> = {
  VirtualService: {
    fields: {
      'spec.hosts': applied('none: a delegate, merged into the VirtualServices that delegate to it'), 'spec.gateways': applied('`mesh` (or none) for sidecars; `<ns>/<name>` binds to a Gateway'),
      'spec.exportTo': exportTo('; of several VirtualServices for one host, the own namespace\'s wins, then those exported to it by name, then public ones'),
      ...httpRoute('spec.http[]'),
      'spec.tls': unsupported('no TLS (SNI) routing: meshlet is L7 only (HTTP, gRPC); TLS connections the app opens go direct'),
      'spec.tcp': unsupported('no TCP routing: meshlet is L7 only (HTTP, gRPC); TCP connections the app opens go direct'),
    },
  },
  DestinationRule: {
    fields: {
      'spec.host': applied('a wildcard (`*.bar.com`) applies to the hosts it matches: the exact host\'s rule wins, then the longest wildcard (istiod\'s MostSpecificHostMatch)'),
      ...trafficPolicy('spec.trafficPolicy', true),
      'spec.subsets[].name': applied(), 'spec.subsets[].labels': applied(),
      ...trafficPolicy('spec.subsets[].trafficPolicy', true),
      'spec.exportTo': exportTo('; a workload takes its own namespace\'s rule, else the one the service\'s namespace exports to it, else the root namespace\'s (istiod\'s lookup order)'),
      'spec.workloadSelector': unsupported('the rule applies to every workload, not only the selected ones'),
    },
  },
  ServiceEntry: {
    fields: {
      'spec.hosts': applied(),
      'spec.addresses': applied('a call to `http://<address>:<port>/` routes as the entry (the addresses join the virtual host\'s domains, as istiod); /32 and /128 are addresses; wider CIDR ranges are accepted with a warning and not matched (Envoy matches them on a TCP listener\'s address)'),
      'spec.ports': applied('optional, as Istio: an entry without ports gets no route or cluster (a MESHLET_NO_EFFECT warning)'),
      'spec.ports[].number': applied(), 'spec.ports[].protocol': applied('HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB are routed; TCP, TLS, MONGO, MYSQL, REDIS… get a warning: meshlet is L7 only'), 'spec.ports[].name': applied(), 'spec.ports[].targetPort': applied(),
      'spec.location': applied('mTLS follows the endpoints (security.istio.io/tlsMode), as Istio\'s auto-mTLS'),
      'spec.resolution': applied('DNS / DNS_ROUND_ROBIN without endpoints call the host name itself'),
      ...workloadEntry('spec.endpoints[]'),
      'spec.workloadSelector.labels': applied('selects WorkloadEntries of the namespace'),
      'spec.exportTo': exportTo(', `~` (nobody)'),
      'spec.subjectAltNames': applied(),
    },
  },
  WorkloadEntry: { fields: workloadEntry('spec') },
  WorkloadGroup: {
    note: 'Read by the control plane, which registers authenticated workloads from it (auto-registration).',
    embeddedNoEffect: 'WorkloadGroup acts only in the control plane (auto-registration); in embedded mode nothing registers',
    fields: {
      'spec.metadata.labels': applied('the group\'s labels win over the node\'s'),
      'spec.metadata.annotations': unsupported('WorkloadEntries carry no annotations'),
      ...workloadEntry('spec.template', true),
      'spec.probe': unsupported('health probes are not run: a workload is an endpoint while its ADS stream is connected'),
    },
  },
  Gateway: {
    note: 'Applied by a meshlet gateway (createGateway, `meshlet gateway`) whose labels the selector matches.',
    fields: {
      'spec.selector': applied(selectorNote),
      'spec.servers[].port.number': applied(),
      'spec.servers[].port.protocol': applied('HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB; other protocols (TCP, TLS, MONGO…) get a warning and open no port: the gateway is L7 only'),
      'spec.servers[].port.name': applied('informational'),
      'spec.servers[].port.targetPort': unsupported('the gateway listens on port.number'),
      'spec.servers[].hosts': applied('`ns/host`, `./host`, `*/host` as Istio'),
      'spec.servers[].tls.mode': applied(undefined, { unsupportedValues: { PASSTHROUGH: 'no TLS passthrough (the gateway is L7 only): the server opens no port', AUTO_PASSTHROUGH: 'no TLS passthrough (the gateway is L7 only): the server opens no port' }, refusedValues: { ISTIO_MUTUAL: 'gateway certificates come from files', OPTIONAL_MUTUAL: 'SIMPLE or MUTUAL only' } }),
      'spec.servers[].tls.serverCertificate': applied('a file path'), 'spec.servers[].tls.privateKey': applied('a file path'),
      'spec.servers[].tls.caCertificates': applied('a file path; required for MUTUAL'),
      'spec.servers[].tls.credentialName': unsupported('Kubernetes secrets are not read: without serverCertificate and privateKey files the server is not programmed (as Envoy with a secret that never arrives); the Gateway\'s other servers are served'),
      'spec.servers[].tls.httpsRedirect': unsupported('no automatic redirect to HTTPS'),
      'spec.servers[].tls.subjectAltNames': unsupported('client certificates are checked against caCertificates only'),
      'spec.servers[].tls.minProtocolVersion': unsupported('Node\'s TLS defaults (1.2–1.3)'),
      'spec.servers[].tls.maxProtocolVersion': unsupported('Node\'s TLS defaults (1.2–1.3)'),
      'spec.servers[].tls.cipherSuites': unsupported('Node\'s default cipher suites'),
      'spec.servers[].tls.verifyCertificateSpki': unsupported('no SPKI pinning'),
      'spec.servers[].tls.verifyCertificateHash': unsupported('no certificate hash pinning'),
      'spec.servers[].name': applied('informational'),
      'spec.servers[].bind': unsupported('the gateway binds the address it is started with'),
      'spec.servers[].defaultEndpoint': unsupported('sidecar ingress listeners are not built'),
    },
  },
  Sidecar: {
    note: 'Scopes what the selected workload sees, as istiod: the namespace\'s Sidecar matching its labels, else the namespace\'s without a selector, else istio-system\'s. `meshlet control-plane` translates per namespace, so there only Sidecars without a selector apply.',
    fields: {
      'spec.workloadSelector.labels': applied(selectorNote),
      'spec.egress[].hosts': applied('`namespace/dnsName` (`*`, `.`, `~`; `*.suffix`): other services get no route or cluster'),
      'spec.egress[].port': unsupported('the hosts apply to every port: no per-port egress listeners'),
      'spec.egress[].bind': unsupported('meshlet binds no outbound listeners: it is in the process'),
      'spec.egress[].captureMode': unsupported('meshlet captures no traffic: it is in the process'),
      'spec.ingress': unsupported('inbound traffic reaches the workload\'s own servers'),
      'spec.outboundTrafficPolicy.mode': applied('overrides createMesh outboundTrafficPolicy for the selected workload (embedded mode)'),
      'spec.outboundTrafficPolicy.egressProxy': unsupported('unknown hosts go direct (ALLOW_ANY) or fail with NR'),
      'spec.inboundConnectionPool': unsupported('inbound connection limits are the server\'s'),
    },
  },
  EnvoyFilter: {
    note: 'meshlet applies the rate-limit recipes of Istio\'s docs and samples (local_ratelimit; ratelimit / envoy.ratelimit with VIRTUAL_HOST or HTTP_ROUTE MERGE of rate_limits; CLUSTER ADD of the rate-limit service cluster), listed in docs/rate-limiting.md; any other patch is accepted with MESHLET_UNSUPPORTED_PATCH and not applied.',
    fields: {
      'spec.workloadSelector.labels': applied(selectorNote),
      'spec.targetRefs': unsupported('EnvoyFilters bind by workloadSelector only'),
      'spec.configPatches[].applyTo': applied('HTTP_FILTER, HTTP_ROUTE, VIRTUAL_HOST, CLUSTER (ADD) of the rate-limit recipes'),
      'spec.configPatches[].match': applied('context, listener filter / subFilter name, routeConfiguration name and portNumber, vhost name and domainName, route name and action (as rc_patch.go); a patch matching on portName or gateway is not applied (MESHLET_UNSUPPORTED_PATCH)'),
      'spec.configPatches[].patch.operation': applied(),
      'spec.configPatches[].patch.value': applied('local_ratelimit / ratelimit filters, typed_per_filter_config, rate_limits, route.rate_limits / include_vh_rate_limits, the service cluster; descriptor actions generic_key, request_headers, remote_address, header_value_match, destination_cluster (others refused)'),
      'spec.configPatches[].patch.filterClass': unsupported('patches apply in order; filter classes are not sorted'),
      'spec.priority': unsupported('EnvoyFilters apply in config order'),
    },
  },
  PeerAuthentication: {
    fields: {
      'spec.selector.matchLabels': applied(selectorNote),
      'spec.mtls.mode': applied(), 'spec.portLevelMtls.*.mode': applied(),
    },
  },
  AuthorizationPolicy: {
    fields: {
      'spec.selector.matchLabels': applied(selectorNote),
      'spec.targetRef': refused('targetRef(s) are not supported; use selector'),
      'spec.targetRefs': refused('targetRef(s) are not supported; use selector'),
      'spec.action': applied(undefined, { refusedValues: { CUSTOM: 'no external authorizers' } }),
      'spec.provider': refused('CUSTOM providers are not supported'),
      'spec.rules[].from[].source.principals': applied(), 'spec.rules[].from[].source.notPrincipals': applied(),
      'spec.rules[].from[].source.requestPrincipals': applied('`iss/sub` of the JWT a RequestAuthentication verified (metadata matchers on envoy.filters.http.jwt_authn, as istiod)'),
      'spec.rules[].from[].source.notRequestPrincipals': applied('a request without a verified JWT has no request principal'),
      'spec.rules[].from[].source.namespaces': applied(), 'spec.rules[].from[].source.notNamespaces': applied(),
      'spec.rules[].from[].source.ipBlocks': applied(), 'spec.rules[].from[].source.notIpBlocks': applied(),
      'spec.rules[].from[].source.remoteIpBlocks': applied(), 'spec.rules[].from[].source.notRemoteIpBlocks': applied(),
      'spec.rules[].to[].operation.hosts': applied(), 'spec.rules[].to[].operation.notHosts': applied(),
      'spec.rules[].to[].operation.ports': applied(), 'spec.rules[].to[].operation.notPorts': applied(),
      'spec.rules[].to[].operation.methods': applied(), 'spec.rules[].to[].operation.notMethods': applied(),
      'spec.rules[].to[].operation.paths': applied(), 'spec.rules[].to[].operation.notPaths': applied(),
      'spec.rules[].when[].key': applied('request.headers[…], request.auth.principal, request.auth.audiences, request.auth.presenter, request.auth.claims[…][…], source.ip, remote.ip, source.namespace, source.principal, destination.ip, destination.port, connection.sni; other keys are refused'),
      'spec.rules[].when[].values': applied(), 'spec.rules[].when[].notValues': applied(),
    },
  },
  RequestAuthentication: {
    note: 'Translated into Envoy\'s jwt_authn filter on the inbound listener, before RBAC, as istiod builds it: a request without a token passes with no request principal; a token that fails verification gets 401 with jwt_authn\'s status as body. See docs/security.md.',
    fields: {
      'spec.selector.matchLabels': applied(selectorNote),
      'spec.targetRef': refused('targetRef(s) are not supported; use selector'),
      'spec.targetRefs': refused('targetRef(s) are not supported; use selector'),
      'spec.jwtRules[].issuer': applied(), 'spec.jwtRules[].audiences': applied(),
      'spec.jwtRules[].jwks': applied('inlined as local_jwks'),
      'spec.jwtRules[].jwksUri': applied('fetched by the mesh over HTTP(S) and cached 5 min; a failed fetch fails every token (401), as istiod\'s fallback key'),
      'spec.jwtRules[].fromHeaders[].name': applied(), 'spec.jwtRules[].fromHeaders[].prefix': applied(),
      'spec.jwtRules[].fromParams': applied(), 'spec.jwtRules[].fromCookies': applied(),
      'spec.jwtRules[].forwardOriginalToken': applied('false (default) removes the token header before the app (or the gateway\'s upstream) sees it; gRPC handlers still see it'),
      'spec.jwtRules[].outputPayloadToHeader': applied('not for gRPC handlers'),
      'spec.jwtRules[].outputClaimToHeaders[].header': applied('not for gRPC handlers'), 'spec.jwtRules[].outputClaimToHeaders[].claim': applied(),
      'spec.jwtRules[].timeout': applied('the JWKS fetch timeout (default 5s)'),
      'spec.jwtRules[].spaceDelimitedClaims': applied(),
      'spec.jwtRules[].presence': applied('REQUIRED: a request without this rule\'s token gets 401 `Jwt is missing` (istiod at 86c9f01f does not write it for sidecars yet)'),
    },
  },
  Telemetry: {
    fields: {
      'spec.selector.matchLabels': applied(selectorNote),
      'spec.targetRef': unsupported('a resource bound to a Gateway or Service (waypoint) selects no meshlet workload: it has no effect'),
      'spec.targetRefs': unsupported('a resource bound to a Gateway or Service (waypoint) selects no meshlet workload: it has no effect'),
      'spec.tracing[].match.mode': applied(),
      'spec.tracing[].providers': unsupported('spans go to the mesh\'s OpenTelemetry tracer provider whatever provider is named'),
      'spec.tracing[].randomSamplingPercentage': applied(), 'spec.tracing[].disableSpanReporting': applied(),
      'spec.tracing[].customTags': unsupported('no custom span tags'),
      'spec.tracing[].useRequestIdForTraceSampling': unsupported('sampling does not read x-request-id'),
      'spec.tracing[].enableIstioTags': unsupported('spans carry OpenTelemetry semantic-convention attributes'),
      'spec.metrics[].providers[].name': applied('rules for providers other than `prometheus` leave the istio_* metrics alone'),
      'spec.metrics[].overrides[].match.metric': applied('TCP and gRPC message metrics are not recorded by meshlet, so disabling them changes nothing'),
      'spec.metrics[].overrides[].match.customMetric': unsupported('no custom metrics: the override matches nothing'),
      'spec.metrics[].overrides[].match.mode': applied(),
      'spec.metrics[].overrides[].disabled': applied(),
      'spec.metrics[].overrides[].tagOverrides': unsupported('metric labels are Istio\'s standard set'),
      'spec.metrics[].reportingInterval': unsupported('metrics are read when scraped'),
      'spec.accessLogging[].providers[].name': applied('envoyFileAccessLog providers of meshConfig.extensionProviders, and the built-in `envoy` (/dev/stdout); a provider of another kind (OpenTelemetry, gRPC ALS) writes nothing'),
      'spec.accessLogging[].match.mode': applied(),
      'spec.accessLogging[].disabled': applied(),
      'spec.accessLogging[].filter.expression': applied('plain CEL: ||, &&, !, comparisons, has(), response.code/flags/grpc_status, request.method/path/host/headers[…], connection.mtls, xds.cluster_name/route_name …; other expressions are refused'),
    },
  },
  RateLimit: {
    note: 'meshlet\'s own kind (meshlet.dev/v1alpha1).',
    fields: {
      'spec.host': applied('outbound: callers limit their calls to this host'),
      'spec.workloadSelector.matchLabels': applied('inbound: the selected workloads limit what they accept (local); the selected gateways ask the rate-limit service (global; a sidecar\'s inbound global limit is warned, not applied)'),
      'spec.local.tokenBucket.maxTokens': applied(), 'spec.local.tokenBucket.tokensPerFill': applied(),
      'spec.local.tokenBucket.fillInterval': applied('at least 50ms, as Envoy'),
      'spec.global.service': applied('host[:port]; a mesh host (short names expand) resolves through the registry (ServiceEntry) to its endpoints'), 'spec.global.domain': applied(),
      'spec.global.failureModeDeny': applied('service unreachable or failing: 500 with flag RLSE, as Envoy'),
      'spec.global.timeout': applied(), 'spec.global.descriptors[].entries[].key': applied(), 'spec.global.descriptors[].entries[].value': applied(),
    },
  },
  ...GATEWAY_API_SUPPORT,
  ...EXTENSION_SUPPORT,
};

/** The table entry that governs a schema path: its own, else the nearest ancestor's. */
export function fieldSupport(kind: string, pattern: string): FieldSupport | undefined {
  const fields = SUPPORT[kind]?.fields;
  if (!fields) return undefined;
  for (let p = pattern; p !== ''; p = parentPattern(p)) {
    const entry = fields[p];
    if (entry) return entry;
  }
  return undefined;
}

/** `a.b[].c` → `a.b[]` → `a.b` → `a` → ''. */
export function parentPattern(pattern: string): string {
  if (pattern.endsWith('[]')) return pattern.slice(0, -2);
  const dot = pattern.lastIndexOf('.');
  return dot === -1 ? '' : pattern.slice(0, dot);
}
