/**
 * TypeScript shapes of the Istio resources meshlet reads (after validation).
 * Field names are Istio's own; see istio-schemas.ts for the full accepted set.
 */

export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

export interface Percent {
  value?: number;
}

export interface Destination {
  host: string;
  subset?: string;
  port?: { number?: number };
}

export interface HeaderOperations {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface Headers {
  request?: HeaderOperations;
  response?: HeaderOperations;
}

export interface HTTPMatchRequest {
  name?: string;
  uri?: StringMatch;
  method?: StringMatch;
  authority?: StringMatch;
  scheme?: StringMatch;
  headers?: Record<string, StringMatch>;
  withoutHeaders?: Record<string, StringMatch>;
  queryParams?: Record<string, StringMatch>;
  ignoreUriCase?: boolean;
  port?: number;
  sourceLabels?: Record<string, string>;
  sourceNamespace?: string;
  gateways?: string[];
}

/** VirtualService `http[].corsPolicy`. */
export interface CorsPolicySpec {
  allowOrigins?: StringMatch[];
  /** deprecated: exact origins */
  allowOrigin?: string[];
  allowMethods?: string[];
  allowHeaders?: string[];
  exposeHeaders?: string[];
  maxAge?: string;
  allowCredentials?: boolean;
  unmatchedPreflights?: 'UNSPECIFIED' | 'FORWARD' | 'IGNORE';
}

export interface HTTPRoute {
  name?: string;
  corsPolicy?: CorsPolicySpec;
  match?: HTTPMatchRequest[];
  route?: Array<{ destination: Destination; weight?: number; headers?: Headers }>;
  /** `prefixRewrite` and `derivePort` are set only by Gateway API conversion (istiod's internal fields; not in the VirtualService schema). */
  redirect?: { uri?: string; authority?: string; port?: number; scheme?: string; redirectCode?: number; prefixRewrite?: string; derivePort?: 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT' };
  directResponse?: { status: number; body?: { string?: string; bytes?: string } };
  rewrite?: { uri?: string; authority?: string; uriRegexRewrite?: { match: string; rewrite?: string } };
  timeout?: string;
  /** `backoff` is set only by Gateway API conversion (GEP-1731; Istio's HTTPRetry.backoff, not in meshlet's VirtualService schema). */
  retries?: { attempts?: number; perTryTimeout?: string; retryOn?: string; retryRemoteLocalities?: boolean; backoff?: string };
  fault?: {
    delay?: { fixedDelay?: string; percentage?: Percent; percent?: number };
    abort?: { httpStatus?: number; grpcStatus?: string; percentage?: Percent };
  };
  mirror?: Destination;
  mirrors?: Array<{ destination: Destination; percentage?: Percent }>;
  mirrorPercentage?: Percent;
  mirrorPercent?: number;
  headers?: Headers;
}

export interface VirtualServiceSpec {
  hosts?: string[];
  gateways?: string[];
  http?: HTTPRoute[];
  exportTo?: string[];
}

export interface LoadBalancerSettings {
  simple?: 'UNSPECIFIED' | 'LEAST_CONN' | 'RANDOM' | 'PASSTHROUGH' | 'ROUND_ROBIN' | 'LEAST_REQUEST';
  consistentHash?: ConsistentHashLB;
  localityLbSetting?: LocalityLoadBalancerSetting;
}

/** LoadBalancerSettings.ConsistentHashLB: one hash key, and ringHash or maglev. */
export interface ConsistentHashLB {
  httpHeaderName?: string;
  useSourceIp?: boolean;
  httpQueryParameterName?: string;
  httpCookie?: { name: string; path?: string; ttl?: string; attributes?: Array<{ name: string; value?: string }> };
  ringHash?: { minimumRingSize?: number };
  maglev?: { tableSize?: number };
  /** deprecated: ringHash.minimumRingSize */
  minimumRingSize?: number;
}

/** LocalityLoadBalancerSetting: `region/zone/subzone` patterns; distribute, failover, failoverPriority. */
export interface LocalityLoadBalancerSetting {
  distribute?: Array<{ from?: string; to?: Record<string, number> }>;
  failover?: Array<{ from?: string; to?: string }>;
  failoverPriority?: string[];
  enabled?: boolean | null;
}

export interface ConnectionPoolSettings {
  tcp?: { maxConnections?: number; connectTimeout?: string; idleTimeout?: string; maxConnectionDuration?: string };
  http?: {
    http1MaxPendingRequests?: number;
    http2MaxRequests?: number;
    maxRequestsPerConnection?: number;
    maxRetries?: number;
    idleTimeout?: string;
  };
}

export interface OutlierDetectionSettings {
  consecutiveErrors?: number;
  consecutive5xxErrors?: number;
  consecutiveGatewayErrors?: number;
  consecutiveLocalOriginFailures?: number;
  splitExternalLocalOriginErrors?: boolean;
  interval?: string;
  baseEjectionTime?: string;
  maxEjectionPercent?: number;
  minHealthPercent?: number;
}

export interface ClientTLSSettings {
  mode?: 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';
  clientCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  subjectAltNames?: string[];
  sni?: string;
  insecureSkipVerify?: boolean;
}

export interface TrafficPolicy {
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetectionSettings;
  tls?: ClientTLSSettings;
  portLevelSettings?: Array<TrafficPolicy & { port?: { number?: number } }>;
}

export interface DestinationRuleSpec {
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets?: Array<{ name: string; labels?: Record<string, string>; trafficPolicy?: TrafficPolicy }>;
  exportTo?: string[];
  workloadSelector?: { matchLabels?: Record<string, string> };
}

export interface WorkloadEntrySpec {
  address?: string;
  ports?: Record<string, number>;
  labels?: Record<string, string>;
  network?: string;
  locality?: string;
  weight?: number;
  serviceAccount?: string;
}

/** Istio's ReadinessProbe; meshlet validates it but does not run it (see docs/control-plane.md). */
export interface ReadinessProbe {
  initialDelaySeconds?: number;
  timeoutSeconds?: number;
  periodSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
  httpGet?: { path?: string; port: number; host?: string; scheme?: '' | 'HTTP' | 'HTTPS'; httpHeaders?: Array<{ name?: string; value?: string }> };
  tcpSocket?: { host?: string; port: number };
  exec?: { command: string[] };
  grpc?: { port?: number; service?: string };
}

/** WorkloadGroup (networking.istio.io/v1): the template of its auto-registered WorkloadEntries. */
export interface WorkloadGroupSpec {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  template: WorkloadEntrySpec;
  probe?: ReadinessProbe;
}

export interface ServiceEntrySpec {
  hosts: string[];
  addresses?: string[];
  ports?: Array<{ number: number; protocol?: string; name?: string; targetPort?: number }>;
  location?: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
  resolution?: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';
  endpoints?: WorkloadEntrySpec[];
  workloadSelector?: { labels?: Record<string, string> };
  subjectAltNames?: string[];
  exportTo?: string[];
}

export interface RateLimitSpec {
  host?: string;
  workloadSelector?: { matchLabels?: Record<string, string> };
  local?: { tokenBucket: { maxTokens: number; tokensPerFill?: number; fillInterval: string } };
  global?: {
    service: string;
    domain: string;
    failureModeDeny?: boolean;
    timeout?: string;
    descriptors?: Array<{ entries?: Array<{ key: string; value?: string }> }>;
  };
}

/** Istio's WorkloadMode: which side of a request a Telemetry rule is for. */
export type WorkloadMode = 'CLIENT_AND_SERVER' | 'CLIENT' | 'SERVER';

/** Telemetry (telemetry.istio.io/v1); fields meshlet ignores are typed loosely. */
export interface TelemetrySpec {
  selector?: { matchLabels?: Record<string, string> };
  targetRef?: unknown;
  targetRefs?: unknown[];
  tracing?: Array<{
    match?: { mode?: WorkloadMode };
    providers?: Array<{ name: string }>;
    randomSamplingPercentage?: number;
    disableSpanReporting?: boolean;
    customTags?: unknown;
    useRequestIdForTraceSampling?: boolean;
    enableIstioTags?: boolean;
  }>;
  metrics?: Array<{
    providers?: Array<{ name: string }>;
    overrides?: Array<{
      match?: { metric?: string; customMetric?: string; mode?: WorkloadMode };
      disabled?: boolean;
      tagOverrides?: unknown;
    }>;
    reportingInterval?: string;
  }>;
  accessLogging?: unknown;
}

export type { SidecarSpec } from './sidecar.js';
import type { SidecarSpec } from './sidecar.js';

export interface ObjectMeta {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

import type { GRPCRouteSpec, GatewayClassSpec, HTTPRouteSpec, KubernetesGatewaySpec, ReferenceGrantSpec } from './gateway-api/types.js';

/** A validated Istio (or meshlet) resource. `spec` is typed by `kind` where meshlet reads it. */
export type IstioResource =
  | { apiVersion: string; kind: 'VirtualService'; metadata: ObjectMeta; spec: VirtualServiceSpec }
  | { apiVersion: string; kind: 'DestinationRule'; metadata: ObjectMeta; spec: DestinationRuleSpec }
  | { apiVersion: string; kind: 'ServiceEntry'; metadata: ObjectMeta; spec: ServiceEntrySpec }
  | { apiVersion: string; kind: 'WorkloadEntry'; metadata: ObjectMeta; spec: WorkloadEntrySpec }
  | { apiVersion: string; kind: 'WorkloadGroup'; metadata: ObjectMeta; spec: WorkloadGroupSpec }
  | { apiVersion: string; kind: 'RateLimit'; metadata: ObjectMeta; spec: RateLimitSpec }
  | { apiVersion: string; kind: 'Telemetry'; metadata: ObjectMeta; spec: TelemetrySpec }
  | { apiVersion: string; kind: 'HTTPRoute'; metadata: ObjectMeta; spec: HTTPRouteSpec }
  | { apiVersion: string; kind: 'GRPCRoute'; metadata: ObjectMeta; spec: GRPCRouteSpec }
  | { apiVersion: string; kind: 'ReferenceGrant'; metadata: ObjectMeta; spec: ReferenceGrantSpec }
  | { apiVersion: string; kind: 'GatewayClass'; metadata: ObjectMeta; spec: GatewayClassSpec }
  | { apiVersion: string; kind: 'Namespace'; metadata: ObjectMeta; spec: { finalizers?: string[] } }
  | { apiVersion: string; kind: 'WasmPlugin' | 'TrafficExtension'; metadata: ObjectMeta; spec: ExtensionSpec }
  | { apiVersion: string; kind: 'ProxyConfig' | 'TCPRoute' | 'TLSRoute' | 'UDPRoute'; metadata: ObjectMeta; spec: Record<string, unknown> }
  /** gateway.networking.k8s.io Gateway, named as istiod names the kind so it cannot be taken for Istio's Gateway. */
  | { apiVersion: string; kind: 'KubernetesGateway'; metadata: ObjectMeta; spec: KubernetesGatewaySpec }
  | { apiVersion: string; kind: 'Sidecar'; metadata: ObjectMeta; spec: SidecarSpec }
  | { apiVersion: string; kind: 'Gateway' | 'EnvoyFilter' | 'PeerAuthentication' | 'AuthorizationPolicy' | 'RequestAuthentication'; metadata: ObjectMeta; spec: Record<string, unknown> };

export type IstioKind = IstioResource['kind'];
export type ResourceOf<K extends IstioKind> = Extract<IstioResource, { kind: K }>;

/** WasmPlugin and TrafficExtension: the fields meshlet acts on (it fails closed; see translate-extensions.ts). */
export interface ExtensionSpec {
  selector?: { matchLabels?: Record<string, string> };
  targetRef?: { group?: string; kind: string; name: string };
  targetRefs?: Array<{ group?: string; kind: string; name: string }>;
  match?: Array<{ mode?: 'UNDEFINED' | 'CLIENT' | 'SERVER' | 'CLIENT_AND_SERVER'; ports?: Array<{ number: number }> }>;
  failStrategy?: 'FAIL_CLOSE' | 'FAIL_OPEN' | 'FAIL_RELOAD';
  wasm?: { failStrategy?: 'FAIL_CLOSE' | 'FAIL_OPEN' | 'FAIL_RELOAD' };
  lua?: { inlineCode?: string };
}
