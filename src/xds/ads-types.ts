/**
 * The ADS client's options and the status it reports (connected, versions,
 * nonces, last NACK per type), for `mesh.xdsStatus()` and debug views.
 */
import type { ChannelCredentials } from '@grpc/grpc-js';
import type { EnvoyResources } from '../config/envoy.js';
import type { AdsApiType } from './ads-wire.js';
import type { BackoffOptions } from './backoff.js';
import type { XdsBootstrapOptions } from './bootstrap.js';
import type { WorkloadInfo } from './node.js';
import type { XdsType } from './resources.js';
import type { TraceFn } from './trace.js';

/** Options of {@link createAdsClient}. */
export interface AdsClientOptions extends XdsBootstrapOptions {
  /** The workload's identity, sent as Istio-style node metadata. */
  workload: WorkloadInfo;
  /**
   * Receives every consistent set; throw (or reject) to refuse it (NACK). A
   * promise defers the ACK until it settles, and the next response waits.
   */
  onResources(resources: EnvoyResources, version: string): void | Promise<void>;
  /** Called for every NACK sent (the consumer's or a decoding error). */
  onNack?(nack: XdsNack): void;
  /**
   * Subscribe these outbound listener names instead of LDS wildcard (gRPC A27
   * style): `host:port`, or a bare host for all its ports; istiod expands short
   * names (`reviews` → `reviews.<ns>.svc.cluster.local`).
   */
  listenerNames?: string[];
  /**
   * Inbound listener names to subscribe (istiod's
   * `xds.istio.io/grpc/lds/inbound/<ip>:<port>`, one per server port; see
   * `serverListenerName`). Without `listenerNames`, LDS starts wildcard and
   * then names the outbound listeners the first answer held plus these.
   */
  inboundListenerNames?: string[];
  /**
   * The ADS protocol: `GRPC` (State-of-the-World, the default) or
   * `DELTA_GRPC` (incremental: only changed resources travel, and a
   * reconnect announces the versions the client has). Default: `DELTA_GRPC`
   * when the bootstrap's `server_features` lists `delta_grpc`, else `GRPC`.
   */
  apiType?: AdsApiType;
  /** Path of a last-known-good file: read at start, rewritten on every accepted set. */
  lastKnownGood?: string;
  /** Reconnect backoff (default 1 s ×1.6 ±20 %, cap 30 s). */
  backoff?: BackoffOptions;
  /** How long to wait for referenced RDS/EDS resources before delivering without them (default 5 s). */
  initialFetchTimeoutMs?: number;
  /** Channel credentials (default from the bootstrap: insecure or TLS). */
  credentials?: ChannelCredentials;
  /**
   * A bootstrap token, sent on every stream as `authorization: Bearer <token>`
   * so the control plane can register a workload that has no certificate yet.
   * Sent only with explicit `credentials` (which must then be TLS ones) or a
   * `tls` bootstrap; over the default plaintext channel it is not sent.
   */
  token?: string;
  /** Environment for bootstrap lookup (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Trace sink (default: stderr when MESHLET_TRACE names `xds`). */
  trace?: TraceFn;
}

/** A rejected update. */
export interface XdsNack {
  typeUrl: string;
  /** The version that was rejected. */
  rejectedVersion: string;
  /** The version still in use (sent back as version_info). */
  version: string;
  nonce: string;
  message: string;
  at: Date;
}

/** Per-type state shown by {@link AdsClient.status}. */
export interface XdsTypeStatus {
  version: string;
  nonce: string;
  subscribed: string[] | '*';
  count: number;
}

/** What the client knows, for debugging and `configDump`. */
export interface AdsClientStatus {
  server: string;
  node: string;
  connected: boolean;
  reconnects: number;
  /** Version of the last set the consumer accepted ('' before any). */
  version: string;
  types: Record<XdsType['short'], XdsTypeStatus>;
  lastNack: XdsNack | undefined;
  /** RDS/EDS names referenced but not (yet) received. */
  missing: string[];
}

