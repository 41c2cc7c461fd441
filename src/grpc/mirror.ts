/**
 * Traffic mirroring for gRPC: a fire-and-forget copy of a whole call (its
 * metadata and every request message, known once the caller half-closed) to
 * an endpoint of the mirror cluster, with the `-shadow` authority Envoy gives
 * the copy. Its outcome never reaches the caller: the copy has its own
 * bounded deadline and its response is read and dropped.
 */
import type { Metadata, StatusObject } from '@grpc/grpc-js';
import type { Snapshot } from '../core/snapshot.js';
import type { Call, CallListener } from './attempt.js';
import type { GrpcRuntime, MirrorTarget } from './runtime.js';

/** How long a mirrored call may take before it is dropped. */
const MIRROR_TIMEOUT_MS = 10_000;

/** Sends the copy; anything that fails is dropped silently, as a mirror must never affect the caller. */
export function sendGrpcMirror(runtime: GrpcRuntime, snapshot: Snapshot, clusterName: string, authority: string, target: MirrorTarget, path: string, metadata: Metadata, messages: readonly Buffer[]): void {
  const cluster = snapshot.clusters.get(clusterName);
  const host = cluster?.pick();
  if (cluster === undefined || host === undefined || runtime.closed) return;
  const credentials = runtime.credentialsFor(cluster, host, target.credentials);
  if (credentials instanceof Error) return;
  try {
    const channel = runtime.channels.get(host, authority, credentials, target.options);
    const call = channel.createCall(path, Date.now() + MIRROR_TIMEOUT_MS, undefined, null, undefined);
    call.start(metadata.clone(), new DiscardListener(call));
    writeAll(call, messages, 0);
    call.startRead();
  } catch {
    // The mesh closed under us: no copy.
  }
}

/** Writes one message at a time (grpc-js takes one write at a time), then half-closes. */
function writeAll(call: Call, messages: readonly Buffer[], index: number): void {
  if (index >= messages.length) return call.halfClose();
  call.sendMessageWithContext({ callback: () => writeAll(call, messages, index + 1) }, messages[index]!);
}

/** Reads the mirror's response and drops it. */
class DiscardListener implements CallListener {
  constructor(private readonly call: Call) {}
  onReceiveMetadata(): void {}
  onReceiveMessage(): void {
    this.call.startRead();
  }
  onReceiveStatus(_status: StatusObject): void {}
}

