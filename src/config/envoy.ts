/**
 * The subset of Envoy v3 resources meshlet produces and consumes, in the
 * object form @grpc/proto-loader / protobufjs use with `keepCase: true`:
 * snake_case field names, durations as `{ seconds, nanos }`, enums as their
 * names, `Any` as `{ '@type': 'type.googleapis.com/…', ...fields }`.
 *
 * The Istio translator writes these shapes, the xDS client decodes into them,
 * and `core/snapshot` compiles them — so embedded and control-plane mode run
 * the very same compiled data. Fields not listed here may be present (xDS
 * decoding keeps them); compile ignores what it does not understand.
 */
import type { ProtoDuration } from '../core/duration.js';

export const TYPE_URL = {
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  httpConnectionManager: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  fault: 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
  cors: 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors',
  corsPolicy: 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy',
  localRateLimit: 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
  rateLimit: 'type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit',
  upstreamTls: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  downstreamTls: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
} as const;

export type Any<T = Record<string, unknown>> = T & { '@type': string };

export interface StringMatcher {
  exact?: string;
  prefix?: string;
  suffix?: string;
  contains?: string;
  safe_regex?: { regex: string };
  ignore_case?: boolean;
}

export interface HeaderMatcher {
  name: string;
  string_match?: StringMatcher;
  present_match?: boolean;
  invert_match?: boolean;
  /** Envoy: an absent header is matched as the empty string (istiod sets it on withoutHeaders). */
  treat_missing_header_as_empty?: boolean;
}

export interface QueryParameterMatcher {
  name: string;
  string_match?: StringMatcher;
  present_match?: boolean;
}

/** Envoy `type.matcher.v3.ValueMatcher` (the patterns istiod emits for JWT claims). */
export interface ValueMatcher {
  string_match?: StringMatcher;
  present_match?: boolean;
  bool_match?: boolean;
  list_match?: { one_of?: ValueMatcher };
  or_match?: { value_matchers?: ValueMatcher[] };
}

/** Envoy `type.matcher.v3.MetadataMatcher`: a value in a request's dynamic metadata (`filter` namespace, key path). */
export interface MetadataMatcher { filter: string; path: Array<{ key: string }>; value: ValueMatcher; invert?: boolean }

export interface RouteMatch {
  prefix?: string;
  path?: string;
  /** Envoy ≥1.24: matches the prefix only at a path-segment boundary (`/v2` matches `/v2`, `/v2/x`, not `/v2x`). */
  path_separated_prefix?: string;
  safe_regex?: { regex: string };
  case_sensitive?: { value: boolean };
  headers?: HeaderMatcher[];
  query_parameters?: QueryParameterMatcher[];
  /** istiod writes these for VirtualService `@request.auth.claims.*` header matches (jwt_authn's payload). */
  dynamic_metadata?: MetadataMatcher[];
}

export interface WeightedCluster {
  name: string;
  weight: { value: number };
  request_headers_to_add?: HeaderValueOption[];
  response_headers_to_add?: HeaderValueOption[];
  request_headers_to_remove?: string[];
  response_headers_to_remove?: string[];
}

export interface RetryPolicy {
  retry_on?: string;
  num_retries?: { value: number };
  per_try_timeout?: ProtoDuration;
  retriable_status_codes?: number[];
  retry_host_predicate?: Array<{ name: string; typed_config?: Any }>;
  host_selection_retry_max_attempts?: number | string;
  retry_back_off?: { base_interval?: ProtoDuration; max_interval?: ProtoDuration };
}

export interface RequestMirrorPolicy {
  cluster: string;
  runtime_fraction?: { default_value: FractionalPercent };
}

export interface FractionalPercent {
  numerator: number;
  denominator?: 'HUNDRED' | 'TEN_THOUSAND' | 'MILLION';
}

export interface RouteAction {
  cluster?: string;
  weighted_clusters?: { clusters: WeightedCluster[]; total_weight?: { value: number } };
  timeout?: ProtoDuration;
  retry_policy?: RetryPolicy;
  prefix_rewrite?: string;
  regex_rewrite?: { pattern: { regex: string }; substitution: string };
  host_rewrite_literal?: string;
  request_mirror_policies?: RequestMirrorPolicy[];
  hash_policy?: Array<Record<string, unknown>>;
  /** deprecated: the CORS policy now lives in typed_per_filter_config `envoy.filters.http.cors` */
  cors?: Record<string, unknown>;
  max_stream_duration?: { grpc_timeout_header_max?: ProtoDuration; max_stream_duration?: ProtoDuration };
  /** the route's global rate limit actions; they replace the virtual host's unless include_vh_rate_limits */
  rate_limits?: Array<Record<string, unknown>>;
  include_vh_rate_limits?: boolean | { value: boolean };
  /** deprecated in Envoy, still what istiod writes for sidecars: cap on the grpc-timeout header for gRPC requests */
  max_grpc_timeout?: ProtoDuration;
  /** The status for a request whose cluster is unknown: SERVICE_UNAVAILABLE (503, the default), NOT_FOUND, INTERNAL_SERVER_ERROR. */
  cluster_not_found_response_code?: 'SERVICE_UNAVAILABLE' | 'NOT_FOUND' | 'INTERNAL_SERVER_ERROR';
}

export interface HeaderValueOption {
  header: { key: string; value: string };
  /** Envoy ≥1.22: APPEND_IF_EXISTS_OR_ADD | ADD_IF_ABSENT | OVERWRITE_IF_EXISTS_OR_ADD */
  append_action?: string;
}

export interface Route {
  name?: string;
  match: RouteMatch;
  route?: RouteAction;
  direct_response?: { status: number; body?: { inline_string?: string } };
  redirect?: Record<string, unknown>;
  request_headers_to_add?: HeaderValueOption[];
  request_headers_to_remove?: string[];
  response_headers_to_add?: HeaderValueOption[];
  response_headers_to_remove?: string[];
  /** keyed by filter name, e.g. `envoy.filters.http.fault` → Any(HTTPFault) */
  typed_per_filter_config?: Record<string, Any>;
  metadata?: { filter_metadata?: Record<string, Record<string, unknown>> };
}

export interface VirtualHost {
  name: string;
  domains: string[];
  routes: Route[];
  /** send `x-envoy-attempt-count` upstream (istiod sets it on sidecar outbound virtual hosts) */
  include_request_attempt_count?: boolean;
  typed_per_filter_config?: Record<string, Any>;
  rate_limits?: Array<Record<string, unknown>>;
  /** deprecated: the CORS policy now lives in typed_per_filter_config `envoy.filters.http.cors` */
  cors?: Record<string, unknown>;
}

export interface RouteConfiguration {
  name: string;
  virtual_hosts: VirtualHost[];
}

export interface SocketAddress {
  address: string;
  port_value: number;
}

export interface LbEndpoint {
  endpoint: { address: { socket_address: SocketAddress }; hostname?: string };
  health_status?: string;
  load_balancing_weight?: { value: number };
  /** Istio puts workload labels here: `filter_metadata.istio.labels` (meshlet) and `envoy.lb`. */
  metadata?: { filter_metadata?: Record<string, Record<string, unknown>> };
}

export interface ClusterLoadAssignment {
  cluster_name: string;
  endpoints: Array<{ locality?: { region?: string; zone?: string; sub_zone?: string }; lb_endpoints: LbEndpoint[]; load_balancing_weight?: { value: number }; priority?: number }>;
  /** overprovisioning_factor in percent (Envoy's default 140) */
  policy?: { overprovisioning_factor?: { value: number } };
}

export interface CircuitBreakerThresholds {
  priority?: string;
  max_connections?: { value: number };
  max_pending_requests?: { value: number };
  max_requests?: { value: number };
  max_retries?: { value: number };
}

export interface OutlierDetection {
  consecutive_5xx?: { value: number };
  consecutive_gateway_failure?: { value: number };
  consecutive_local_origin_failure?: { value: number };
  split_external_local_origin_errors?: boolean;
  enforcing_consecutive_5xx?: { value: number };
  enforcing_consecutive_gateway_failure?: { value: number };
  enforcing_consecutive_local_origin_failure?: { value: number };
  interval?: ProtoDuration;
  base_ejection_time?: ProtoDuration;
  max_ejection_percent?: { value: number };
}

export interface Cluster {
  name: string;
  type?: 'EDS' | 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'ORIGINAL_DST';
  eds_cluster_config?: { eds_config?: { ads?: Record<string, never>; resource_api_version?: string }; service_name?: string };
  connect_timeout?: ProtoDuration;
  lb_policy?: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV';
  /** RING_HASH settings; uint64 values arrive as strings over xDS (proto-loader `longs: String`). */
  ring_hash_lb_config?: { minimum_ring_size?: { value: number | string }; maximum_ring_size?: { value: number | string }; hash_function?: string };
  /** MAGLEV settings: table_size must be prime. */
  maglev_lb_config?: { table_size?: { value: number | string } };
  /** inline endpoints for STATIC / STRICT_DNS clusters */
  load_assignment?: ClusterLoadAssignment;
  circuit_breakers?: { thresholds?: CircuitBreakerThresholds[] };
  outlier_detection?: OutlierDetection;
  /** locality_weighted_lb_config: pick a locality by weight × availability, then a host in it. */
  common_lb_config?: { healthy_panic_threshold?: { value: number }; locality_weighted_lb_config?: Record<string, never> };
  typed_extension_protocol_options?: Record<string, Any>;
  transport_socket?: { name: string; typed_config?: Any };
  metadata?: { filter_metadata?: Record<string, Record<string, unknown>> };
  /** HTTP protocol options: idle timeout and max requests per connection. */
  common_http_protocol_options?: { idle_timeout?: ProtoDuration; max_requests_per_connection?: { value: number } };
}

export interface HttpConnectionManager {
  '@type': typeof TYPE_URL.httpConnectionManager;
  stat_prefix?: string;
  rds?: { route_config_name: string; config_source?: { ads?: Record<string, never>; resource_api_version?: string } };
  route_config?: RouteConfiguration;
  http_filters: Array<{ name: string; typed_config?: Any }>;
  /** envoy.config.accesslog.v3.AccessLog entries (telemetry/access-log.ts reads them). */
  access_log?: readonly object[];
}

export interface Listener {
  name: string;
  address?: { socket_address: SocketAddress };
  /** gRPC proxyless style: `api_listener.api_listener` is an Any(HttpConnectionManager). */
  api_listener?: { api_listener: HttpConnectionManager };
  filter_chains?: Array<Record<string, unknown>>;
}

/** One consistent set of Envoy resources: what a snapshot is compiled from. */
export interface EnvoyResources {
  listeners: Listener[];
  routes: RouteConfiguration[];
  clusters: Cluster[];
  endpoints: ClusterLoadAssignment[];
}
