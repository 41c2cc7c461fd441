/**
 * One attempt of a meshed call: the real grpc-js call on an endpoint's
 * channel, how far it has replayed the call's buffered messages, and the
 * endpoint's active-request slot (LEAST_REQUEST reads it).
 */
import type { ChannelInterface, Metadata, StatusObject } from '@grpc/grpc-js';
import { status as Status } from '@grpc/grpc-js';
import type { Host } from '../core/load-balancer.js';
import type { OutboundRetry } from '../telemetry/outbound.js';

/** grpc-js' low-level call (the object Channel.createCall returns). */
export type Call = ReturnType<ChannelInterface['createCall']>;
/** The listener grpc-js' Call.start takes. */
export type CallListener = Parameters<Call['start']>[1];
/** What accompanies a written message (flags, write callback). */
export type MessageContext = Parameters<Call['sendMessageWithContext']>[0];

/** The call an attempt reports to. */
export interface AttemptOwner {
  attemptMetadata(a: Attempt, metadata: Metadata): void;
  attemptMessage(a: Attempt, message: Buffer): void;
  attemptStatus(a: Attempt, status: StatusObject): void;
}

/** One try of a call on one endpoint. */
export class Attempt implements CallListener {
  /** index in the owner's outgoing buffer of the next message to write */
  writeIndex = 0;
  writing = false;
  halfClosed = false;
  /** its status has been handled */
  done = false;
  timedOut = false;
  /** the mesh cancelled it (retry, timeout, local reply): its status says nothing about the host */
  cancelledByMesh = false;
  timer: NodeJS.Timeout | undefined;
  /** this try's span when it is a retry of a traced call */
  retry: OutboundRetry | undefined = undefined;
  private released = false;

  constructor(private readonly owner: AttemptOwner, readonly host: Host, readonly call: Call) {
    host.active++;
  }

  onReceiveMetadata(metadata: Metadata): void {
    this.owner.attemptMetadata(this, metadata);
  }

  onReceiveMessage(message: Buffer): void {
    this.owner.attemptMessage(this, message);
  }

  onReceiveStatus(status: StatusObject): void {
    this.owner.attemptStatus(this, status);
  }

  /** Gives the host's active-request slot back, once. */
  release(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.released) return;
    this.released = true;
    this.host.active--;
  }

  /** Cancels the upstream call; its status will be ignored. */
  cancel(details: string): void {
    if (this.cancelledByMesh) return;
    this.cancelledByMesh = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.done) this.call.cancelWithStatus(Status.CANCELLED, details);
  }
}
