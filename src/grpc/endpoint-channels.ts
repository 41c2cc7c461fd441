/**
 * One real grpc-js channel per (credentials, authority, endpoint): the mesh's
 * connection pool for gRPC. Channels are created on first use, shared by
 * every meshed client with the same credentials, and closed with the mesh.
 */
import { Channel, type ChannelCredentials, type ChannelInterface, type ChannelOptions } from '@grpc/grpc-js';
import type { Host } from '../core/load-balancer.js';

/** Options grpc-js' Client hands to a channel factory that must not reach an endpoint channel. */
const dropped = new Set(['channelOverride', 'channelFactoryOverride', 'interceptors', 'interceptor_providers', 'callInvocationTransformer']);

/** The endpoint channels of one mesh. */
export class EndpointChannels {
  private readonly byCredentials = new Map<ChannelCredentials, Map<string, ChannelInterface>>();
  private closed = false;

  /** The channel to `host` for calls with this authority and these credentials. */
  get(host: Host, authority: string, credentials: ChannelCredentials, options: ChannelOptions): ChannelInterface {
    let byKey = this.byCredentials.get(credentials);
    if (byKey === undefined) this.byCredentials.set(credentials, (byKey = new Map()));
    const key = `${authority}\u0001${host.id}`;
    let channel = byKey.get(key);
    if (channel === undefined) {
      if (this.closed) throw new Error('the mesh is closed');
      const address = host.address.includes(':') ? `[${host.address}]:${host.port}` : `${host.address}:${host.port}`;
      channel = new Channel(address, credentials, endpointOptions(options, authority));
      byKey.set(key, channel);
    }
    return channel;
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
    for (const m of this.byCredentials.values()) for (const c of m.values()) c.close();
    this.byCredentials.clear();
  }
}

function endpointOptions(options: ChannelOptions, authority: string): ChannelOptions {
  const out: ChannelOptions = {};
  for (const key of Object.keys(options)) if (!dropped.has(key)) out[key] = options[key];
  // The upstream sees the service's authority, as behind a sidecar, not the endpoint address.
  out['grpc.default_authority'] ??= authority;
  return out;
}
