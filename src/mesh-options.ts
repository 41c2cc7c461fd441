/**
 * The options of `createMesh` (DESIGN.md §3): who the workload is, where its
 * config and identity come from, and the switches of its telemetry and
 * local replies.
 */
import type { TracerProvider } from '@opentelemetry/api';
import type { Registry } from 'prom-client';
import type { ConfigSource } from './config/load.js';
import type { MeshConfigOptions } from './config/mesh-config.js';
import type { RandomSource } from './core/random.js';
import type { OutboundTrafficPolicy } from './http/dispatcher.js';
import type { LocalReplyMode } from './http/local-reply.js';
import type { MeshIdentityOptions } from './security/mesh-security.js';
import type { PropagationFormat } from './telemetry/propagation.js';
import type { ControlPlaneTlsOptions } from './xds/channel-credentials.js';

/** The workload this mesh instance runs as (its identity and labels). */
export interface WorkloadOptions {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  serviceAccount?: string;
  /**
   * `region/zone/subzone`, the workload's own locality: DestinationRule
   * `localityLbSetting` (distribute, failover, failoverPriority) is applied
   * relative to it, and it is the xDS Node's locality (istiod computes
   * priorities against it). Default: the `topology.istio.io/locality` label,
   * else the `topology.kubernetes.io/region` / `zone` and
   * `topology.istio.io/subzone` labels (as istio-agent reads the node's
   * labels); none: no locality-relative balancing.
   */
  locality?: string;
}

/** Options of {@link createMesh}. Identity: `certs: { dir }`, `ca: { dir }` or a control-plane `ca` (see MeshIdentityOptions). */
export interface MeshOptions extends MeshIdentityOptions {
  /** Who this process is. Default: name `unknown` in namespace `default`. */
  workload?: WorkloadOptions;
  /** Embedded mode: a file, a directory, a YAML string or an array of resource objects. */
  config?: ConfigSource;
  /**
   * Control-plane mode: subscribe to an xDS server over ADS. Without `config`
   * or `xds`, the env `MESHLET_XDS` (address or bootstrap) or `GRPC_XDS_BOOTSTRAP` is used.
   */
  xds?: {
    /** `host:port` of the ADS server (ours, or istiod) */
    server?: string;
    /** path of a gRPC xDS bootstrap file */
    bootstrap?: string;
    /**
     * ADS protocol: `GRPC` (State-of-the-World) or `DELTA_GRPC` (incremental xDS). Default: `DELTA_GRPC`
     * when the bootstrap's `server_features` lists `delta_grpc`, else `GRPC`.
     */
    apiType?: 'GRPC' | 'DELTA_GRPC';
    /** a file where the last accepted config is kept, so the workload can start while the control plane is down */
    lastKnownGood?: string;
    /** how long to wait for the first complete config before serving with what arrived (default 5 s) */
    initialFetchTimeoutMs?: number;
    /** this workload's own address and ports, for auto-registration as an endpoint of its service */
    address?: string;
    ports?: Record<string, number>;
    /** WorkloadGroup of the workload's namespace to register into (AUTO_REGISTER_GROUP); needs mTLS as its service account */
    autoRegisterGroup?: string;
    /**
     * ADS over TLS. `true`: mTLS with the workload certificate, the server
     * checked against the mesh root and pinned as the CA (`ca.identity`);
     * default true with the control plane's CA (`ca: { root }`). An object
     * sets root, pinned server name, token file (istiod's
     * `authorization: Bearer`, re-read for each stream) and client
     * certificate (docs/istio.md "xDS over TLS").
     */
    tls?: boolean | ControlPlaneTlsOptions;
    /**
     * Outbound listeners to subscribe by name, as gRPC's xDS client does (`reviews:9080`,
     * `reviews.default.svc.cluster.local:9080`, or a bare host for all its ports). Default:
     * wildcard LDS, which istiod and meshlet's control plane both answer with every service.
     */
    listeners?: string[];
    /**
     * Ports this workload serves with mesh inbound policy: for each, the inbound listener
     * istiod builds when asked by name (`xds.istio.io/grpc/lds/inbound/0.0.0.0:<port>`) is
     * subscribed and enforced. See docs/istio.md.
     */
    serverPorts?: number[];
    /** The address in inbound listener names (default 0.0.0.0, as gRPC servers listen). */
    serverAddress?: string;
    /** The bootstrap's `server_listener_resource_name_template` (default `xds.istio.io/grpc/lds/inbound/%s`). */
    serverListenerNameTemplate?: string;
  };
  /** Unknown hosts pass through (ALLOW_ANY, the default, as Istio) or fail with 502 NR. */
  outboundTrafficPolicy?: OutboundTrafficPolicy;
  /** Local replies as Responses (default, like a sidecar) or thrown MeshErrors. */
  localReplies?: LocalReplyMode;
  /** The random source for weights, faults, load balancing and jitter; seed it in tests. */
  random?: RandomSource;
  /** How long close() lets in-flight calls finish, in ms (default 1000). */
  closeTimeout?: number;
  /** OpenTelemetry tracer provider; default the global one. */
  tracerProvider?: TracerProvider;
  /** prom-client Registry for the istio_* metrics; default a new one per mesh. */
  meterRegistry?: Registry;
  /** Trace headers injected on outbound calls (default W3C and B3 multi-header). */
  propagation?: readonly PropagationFormat[];
  /** Span options: header names recorded as span attributes (secret headers never are). */
  tracing?: { recordHeaders?: readonly string[] };
  /**
   * Telemetry switches, both on by default as in Istio: the istio_* metrics,
   * and Istio's metadata exchange (`x-envoy-peer-metadata` headers that give
   * Kiali its source_* / destination_* labels). `maxPeers` (default 100)
   * caps the distinct peers a reporter labels, `maxSeries` (default 2000) the
   * series per metric; past either, labels read `overflow` (docs/telemetry.md).
   */
  telemetry?: {
    metrics?: boolean; metadataExchange?: boolean; maxPeers?: number; maxSeries?: number;
    /** Istio's source_/destination_canonical_service and _canonical_revision labels (default true, as Istio; Kiali needs them). */
    canonicalLabels?: boolean;
    /** Access-log bytes that may wait for a slow file, per file (default 1 MiB); past it lines are dropped and counted. */
    accessLogBufferBytes?: number;
  };
  /**
   * The cluster this workload runs in: CLUSTER_ID in the node metadata sent to
   * the control plane and in metadata exchange, and the value of the
   * source_cluster / destination_cluster labels. Default: the bootstrap's node
   * metadata, env ISTIO_META_CLUSTER_ID, else `Kubernetes`, istiod's default.
   */
  clusterId?: string;
  /**
   * MESH_ID in node metadata and metadata exchange. Default: the bootstrap's
   * node metadata, env ISTIO_META_MESH_ID, else the trust domain (istiod's default).
   */
  meshId?: string;
  /**
   * ISTIO_VERSION in node metadata, metadata exchange and `istio_build`. Default:
   * the bootstrap's node metadata, env ISTIO_META_ISTIO_VERSION or ISTIO_VERSION,
   * else the Istio release meshlet mirrors.
   */
  istioVersion?: string;
  /**
   * Envoy-style admin endpoints on loopback: /stats/prometheus and /metrics,
   * /config_dump, /clusters, /ready. Port 0 picks a free one (see `mesh.admin.port`).
   */
  admin?: { port?: number; host?: string };
  /**
   * Istio MeshConfig fields meshlet applies: `pathNormalization.normalization`
   * (NONE | BASE | MERGE_SLASHES | DECODE_AND_MERGE_SLASHES, default BASE).
   * An `istio` ConfigMap in `istio-system` in the config (`data.mesh`) overrides it.
   */
  meshConfig?: MeshConfigOptions;
}
