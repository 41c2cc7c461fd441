/**
 * One try of a meshed call: the real grpc-js call on an endpoint's channel,
 * how far it has replayed the call's buffered messages, and what it reports
 * to its call (the router session).
 */
import type { ChannelInterface, Metadata, StatusObject } from '@grpc/grpc-js';
import { status as Status } from '@grpc/grpc-js';
import type { Host } from '../core/load-balancer.js';
import { RouterAttempt } from '../core/router-attempt.js';
import type { OutboundRetry } from '../telemetry/outbound.js';
import type { MeshCall } from './call.js';

/** grpc-js' low-level call (the object Channel.createCall returns). */
export type Call = ReturnType<ChannelInterface['createCall']>;
/** The listener grpc-js' Call.start takes. */
export type CallListener = Parameters<Call['start']>[1];
/** What accompanies a written message (flags, write callback). */
export type MessageContext = Parameters<Call['sendMessageWithContext']>[0];

/** One try of a call on one endpoint. */
export class Attempt extends RouterAttempt implements CallListener {
  /** index in the call's outgoing buffer of the next message to write */
  writeIndex = 0;
  writing = false;
  halfClosed = false;
  /** its status has been handled */
  done = false;
  /** this try's span when it is a retry of a traced call */
  retry: OutboundRetry | undefined = undefined;
  /** the metadata it is started with (a traced retry's carries its own trace headers) */
  metadata: Metadata | undefined = undefined;

  constructor(readonly owner: MeshCall, host: Host, readonly call: Call) {
    super(owner, host);
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

  /** Cancels the upstream call; its status will be ignored. */
  cancel(details: string): void {
    if (!this.done) this.call.cancelWithStatus(Status.CANCELLED, details);
  }
}
