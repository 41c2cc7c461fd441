/**
 * A grpc-js Channel for one target that routes every call through the mesh:
 * grpc-js' Client takes it through `channelFactoryOverride`, so
 * `new CalculateClient(target, creds, mesh.grpc.clientOptions())` is meshed.
 * Hosts the mesh does not know pass through to a plain channel (ALLOW_ANY)
 * or fail with UNAVAILABLE and flag NR (REGISTRY_ONLY).
 */
import { Channel, connectivityState as ConnectivityState, type ChannelCredentials, type ChannelInterface, type ChannelOptions, type Deadline } from '@grpc/grpc-js';
import type { Snapshot } from '../core/snapshot.js';
import type { Call } from './attempt.js';
import { MeshCall, type CallTarget } from './call.js';
import type { GrpcRuntime } from './runtime.js';
import { parseTarget } from './target.js';

/** What a channel reads on every call. */
export interface SnapshotSource {
  readonly snapshot: Snapshot;
}

type ChannelRef = ReturnType<ChannelInterface['getChannelzRef']>;

/** A meshed channel for one target. */
export class MeshChannel implements ChannelInterface {
  private readonly callTarget: CallTarget | undefined;
  private passthrough: ChannelInterface | undefined;
  private closed = false;
  private readonly watchers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly runtime: GrpcRuntime,
    private readonly source: SnapshotSource,
    private readonly target: string,
    private readonly credentials: ChannelCredentials,
    private readonly options: ChannelOptions,
  ) {
    const parsed = parseTarget(target);
    this.callTarget = parsed && { ...parsed, credentials, options };
  }

  createCall(method: string, deadline: Deadline, host: string | null | undefined, parentCall: Parameters<ChannelInterface['createCall']>[3], propagateFlags: number | null | undefined): Call {
    const t = this.callTarget;
    const snapshot = this.source.snapshot;
    const vhost = t && snapshot.virtualHost(t.host, t.port);
    if (vhost === undefined && (t === undefined || !this.runtime.registryOnly)) {
      return this.passthroughChannel().createCall(method, deadline, host, parentCall, propagateFlags);
    }
    return new MeshCall(this.runtime, t!, snapshot, vhost, method, deadline);
  }

  private passthroughChannel(): ChannelInterface {
    this.passthrough ??= new Channel(this.target, this.credentials, this.options);
    return this.passthrough;
  }

  getTarget(): string {
    return this.target;
  }

  /** READY while open: connections are per endpoint and made on demand. */
  getConnectivityState(): ConnectivityState {
    return this.closed ? ConnectivityState.SHUTDOWN : ConnectivityState.READY;
  }

  watchConnectivityState(currentState: ConnectivityState, deadline: Date | number, callback: (error?: Error) => void): void {
    if (currentState !== this.getConnectivityState()) {
      process.nextTick(callback);
      return;
    }
    const ms = Math.max(0, (deadline instanceof Date ? deadline.getTime() : deadline) - Date.now());
    const timer = setTimeout(() => {
      this.watchers.delete(timer);
      callback(new Error('Deadline passed without connectivity state change'));
    }, Math.min(ms, 0x7fffffff));
    timer.unref();
    this.watchers.add(timer);
  }

  getChannelzRef(): ChannelRef {
    return this.passthroughChannel().getChannelzRef();
  }

  /** Closes the passthrough channel; endpoint channels belong to the mesh and close with it. */
  close(): void {
    this.closed = true;
    for (const t of this.watchers) clearTimeout(t);
    this.watchers.clear();
    this.passthrough?.close();
  }
}
