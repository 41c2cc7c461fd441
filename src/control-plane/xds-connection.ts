/**
 * What a State-of-the-World and a Delta ADS stream share: who the node is
 * (refused when it claims another identity than the stream proved, as
 * istiod's checkConnectionIdentity), which translation it gets, its last
 * NACK, and the status /debug/syncz shows.
 */
import * as grpc from '@grpc/grpc-js';
import { nodeInfoOf, type NodeInfo } from './registry.js';
import type { NamespaceSnapshot, SnapshotCache } from './snapshot-cache.js';
import type { TraceFn } from '../xds/trace.js';
import { XDS_TYPE_BY_URL, XDS_TYPES, type XdsType } from '../xds/resources.js';
import type { SpiffeId } from '../security/identity.js';

/** A NACK a client sent. */
export interface NackRecord {
  typeUrl: string;
  version: string;
  nonce: string;
  message: string;
  at: string;
}

/** What /debug/syncz shows for one stream. */
export interface SyncStatus {
  id: number;
  node: string;
  namespace: string;
  /** `sotw` (StreamAggregatedResources) or `delta` (DeltaAggregatedResources). */
  protocol: 'sotw' | 'delta';
  /** The SPIFFE id the stream proved (client certificate or bootstrap token), when it did. */
  identity?: string;
  connectedAt: string;
  types: Record<string, { subscribed: number | '*'; sent?: string; acked?: string; nonce?: string }>;
  lastNack: NackRecord | undefined;
}

/** Who a stream proved to be: an identity, or why it has none. */
export interface StreamAuthentication {
  identity?: SpiffeId;
  /** Why a presented credential (token, certificate) was not accepted. */
  problem?: string;
}

/** Hooks the server calls into the control plane. */
export interface AdsServerHooks {
  cache: SnapshotCache;
  /** A node identified itself on a stream authenticated as `auth`; returns whether it is a registration candidate. */
  onNode(info: NodeInfo, auth: StreamAuthentication): boolean;
  /** A registration candidate's stream (authenticated as `auth`) ended. */
  onNodeGone(info: NodeInfo, auth: StreamAuthentication): void;
  trace: TraceFn;
  /**
   * The translation a node gets: by default its namespace; the control plane
   * adds the labels that config selectors look at (Gateway selector,
   * workloadSelector), so a gateway gets its listeners and a selected workload
   * its policies.
   */
  translationKey?(info: NodeInfo | undefined): string;
}

/**
 * Envoy's ADS ordering, make before break: clusters, then endpoints, then listeners, then routes — so a
 * route never names a cluster the client has not got yet.
 */
export const PUSH_ORDER: readonly XdsType[] = ['CDS', 'EDS', 'LDS', 'RDS'].map((short) => XDS_TYPES.find((t) => t.short === short)!);

/** A stream's translation key and the snapshot of it it is served from. */
interface Current { readonly node: NodeInfo | undefined; readonly key: string; readonly snapshot: NamespaceSnapshot }

/** One ADS stream, either protocol. */
export abstract class XdsConnection {
  readonly connectedAt = new Date().toISOString();
  node: NodeInfo | undefined;
  registered = false;
  lastNack: NackRecord | undefined;
  /** Who the stream proved to be; settled before its first request is handled. */
  auth: StreamAuthentication = {};

  constructor(readonly id: number, protected readonly hooks: AdsServerHooks) {}

  /** The namespace translations for this client come from. */
  get namespace(): string {
    return this.node?.namespace ?? 'default';
  }

  /** Sends `type` when what this client subscribes to of it changed; returns whether a response was sent. */
  abstract push(type: XdsType): boolean;

  /** Pushes every subscribed type whose content changed, in {@link PUSH_ORDER}; returns how many responses were sent. */
  pushChanged(): number {
    let sent = 0;
    for (const type of PUSH_ORDER) if (this.push(type)) sent++;
    return sent;
  }
  /** Ends the stream (control plane shutdown). */
  abstract end(): void;
  /** Status for /debug/syncz. */
  abstract status(): SyncStatus;

  /**
   * The first steps of every request on either protocol: the node (see
   * {@link identify}), then the resource type it asks about; undefined (and
   * traced) for a type meshlet does not serve.
   */
  protected requestedType(req: { node?: unknown; type_url?: string | null }, protocol: string): XdsType | undefined {
    this.identify(req.node);
    const type = XDS_TYPE_BY_URL.get(req.type_url ?? '');
    if (!type) this.hooks.trace(`stream ${this.id}: ${protocol}unsupported type ${req.type_url}`);
    return type;
  }

  /** Takes the node from a stream's first request; throws PERMISSION_DENIED when it claims another identity. */
  protected identify(rawNode: unknown): void {
    if (this.node) return;
    const node = nodeInfoOf(rawNode as Parameters<typeof nodeInfoOf>[0]);
    const mismatch = identityMismatch(node, this.auth.identity);
    if (mismatch) {
      // As istiod's checkConnectionIdentity: an authenticated stream may not speak for another namespace or account.
      this.hooks.trace(`stream ${this.id}: node ${node.id} refused: ${mismatch}`);
      throw Object.assign(new Error(mismatch), { code: grpc.status.PERMISSION_DENIED });
    }
    this.node = node;
    this.registered = this.hooks.onNode(this.node, this.auth);
    this.hooks.trace(`stream ${this.id}: node ${this.node.id} ns=${this.node.namespace}${this.auth.identity ? ` as ${this.auth.identity.uri}` : ''}${this.registered ? ' (registration candidate)' : ''}`);
  }

  /**
   * The translation key and current snapshot this client gets: found once per
   * generation, not once per type of every push (the key depends on the
   * config's selectors; a push asks four times per client).
   */
  protected snapshot(): Current {
    const { cache } = this.hooks;
    const c = this.current;
    if (c?.snapshot.generation === cache.generation && c.node === this.node) return c;
    const key = this.hooks.translationKey ? this.hooks.translationKey(this.node) : this.namespace;
    return (this.current = { node: this.node, key, snapshot: cache.get(key) });
  }

  private current: Current | undefined;

  protected baseStatus(protocol: SyncStatus['protocol'], types: SyncStatus['types']): SyncStatus {
    return {
      id: this.id, node: this.node?.id ?? '', namespace: this.namespace, protocol, ...(this.auth.identity && { identity: this.auth.identity.uri }),
      connectedAt: this.connectedAt, types, lastNack: this.lastNack,
    };
  }
}

/**
 * Why an authenticated stream's node may not be served (istiod's
 * checkConnectionIdentity): its namespace, or its SERVICE_ACCOUNT when it
 * names one, is not the identity's. Undefined when it may be.
 */
function identityMismatch(node: NodeInfo, identity: SpiffeId | undefined): string | undefined {
  if (!identity) return undefined;
  if (node.namespace !== identity.namespace) return `authenticated as ${identity.uri}, but the node claims namespace ${node.namespace}`;
  if (node.serviceAccount !== undefined && node.serviceAccount !== identity.serviceAccount) {
    return `authenticated as ${identity.uri}, but the node claims service account ${node.serviceAccount}`;
  }
  return undefined;
}
