/**
 * One real grpc-js channel per (credentials, authority, endpoint): the mesh's
 * connection pool for gRPC. Channels are created on first use, shared by
 * every meshed client with the same credentials, retired when their endpoint
 * leaves the snapshot, and closed with the mesh.
 */
import { Channel, type ChannelCredentials, type ChannelInterface, type ChannelOptions } from '@grpc/grpc-js';
import type { CompiledCluster } from '../core/cluster.js';
import { endpointsInUse } from '../core/connection-pool.js';
import { isIP } from 'node:net';
import type { Host } from '../core/load-balancer.js';

/** How long a retired endpoint channel stays open for calls already on it (a connect attempt's length). */
export const RETIRE_GRACE_MS = 10_000;

/** Options grpc-js' Client hands to a channel factory that must not reach an endpoint channel. */
const dropped = new Set(['channelOverride', 'channelFactoryOverride', 'interceptors', 'interceptor_providers', 'callInvocationTransformer']);

/** The endpoint channels of one mesh. */
export class EndpointChannels {
  private readonly byCredentials = new Map<ChannelCredentials, Map<string, { channel: ChannelInterface; hostId: string }>>();
  /** Retired channels waiting out their grace; closed early by {@link close}. */
  private readonly retiring = new Set<ChannelInterface>();
  private closed = false;

  /** The channel to `host` for calls with this authority and these credentials. */
  get(host: Host, authority: string, credentials: ChannelCredentials, options: ChannelOptions): ChannelInterface {
    let byKey = this.byCredentials.get(credentials);
    if (byKey === undefined) this.byCredentials.set(credentials, (byKey = new Map()));
    const key = `${authority}\u0001${host.id}`;
    let entry = byKey.get(key);
    if (entry === undefined) {
      if (this.closed) throw new Error('the mesh is closed');
      const address = host.address.includes(':') ? `[${host.address}]:${host.port}` : `${host.address}:${host.port}`;
      entry = { channel: new Channel(address, credentials, endpointOptions(options, authority)), hostId: host.id };
      byKey.set(key, entry);
    }
    return entry.channel;
  }

  /**
   * Retires the channels of endpoints no cluster of `clusters` holds any more:
   * no new call gets them, and they close after {@link RETIRE_GRACE_MS}.
   * grpc-js lets a call that already started on a closed channel finish, but
   * cancels one still waiting for its connection, so the grace covers a call
   * picked on the previous snapshot that is still connecting.
   */
  retain(clusters: Iterable<CompiledCluster>): void {
    if (this.size === 0) return;
    const held = new Set<string>();
    for (const byKey of this.byCredentials.values()) for (const entry of byKey.values()) held.add(entry.hostId);
    const live = endpointsInUse(clusters, held);
    const retired: ChannelInterface[] = [];
    for (const byKey of this.byCredentials.values()) {
      for (const [key, entry] of byKey) {
        if (live.has(entry.hostId)) continue;
        byKey.delete(key);
        retired.push(entry.channel);
      }
    }
    if (retired.length === 0) return;
    for (const c of retired) this.retiring.add(c);
    setTimeout(() => {
      for (const c of retired) if (this.retiring.delete(c)) c.close();
    }, RETIRE_GRACE_MS).unref();
  }

  /** How many endpoint channels are open (tests, config dumps). */
  get size(): number {
    let n = 0;
    for (const m of this.byCredentials.values()) n += m.size;
    return n;
  }

  /** Closes every channel; later `get` calls throw. Idempotent. */
  close(): void {
    this.closed = true;
    for (const m of this.byCredentials.values()) for (const e of m.values()) e.channel.close();
    this.byCredentials.clear();
    for (const c of this.retiring) c.close();
    this.retiring.clear();
  }
}

function endpointOptions(options: ChannelOptions, authority: string): ChannelOptions {
  const out: ChannelOptions = {};
  for (const key of Object.keys(options)) if (!dropped.has(key)) out[key] = options[key];
  // The upstream sees the service's authority, as behind a sidecar, not the endpoint address.
  out['grpc.default_authority'] ??= authority;
  // TLS names the service too: grpc-js would put the endpoint's IP in SNI, which TLS forbids (node's
  // DEP0123). The peer is checked by its SPIFFE id or the service host either way.
  const host = hostOf(authority);
  if (host !== undefined) out['grpc.ssl_target_name_override'] ??= host;
  return out;
}

/** The host of an authority (`host:port`, `[v6]:port`), unless it is an IP address (no SNI for those). */
function hostOf(authority: string): string | undefined {
  const colon = authority.lastIndexOf(':');
  const host = colon > authority.lastIndexOf(']') ? authority.slice(0, colon) : authority;
  return host === '' || host.startsWith('[') || isIP(host) !== 0 ? undefined : host;
}
