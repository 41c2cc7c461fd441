/**
 * One meshed gRPC call: the grpc-js side of a router session
 * (core/router-session.ts), at grpc-js' Call layer (serialized messages). The
 * session runs the filters, admission (max_requests), timeouts, retries, host
 * picks and outlier reporting; the call matches the route on `:path` and
 * metadata, starts each try on its endpoint's channel and moves messages.
 * Until the first response message arrives the call is uncommitted: sent
 * messages are buffered so a retry can replay them, and response metadata is
 * held so a retried try's never reaches the caller.
 */
import { Metadata, status as Status, type Deadline, type StatusObject } from '@grpc/grpc-js';
import type { Host } from '../core/load-balancer.js';
import { shadowAuthority, type MirrorPolicy } from '../core/mirror.js';
import type { RouterAttempt } from '../core/router-attempt.js';
import { DONE, PENDING, RouterSession, Verdict } from '../core/router-session.js';
import type { RequestView } from '../core/router.js';
import { selectRoute, type CompiledVirtualHost, type Snapshot } from '../core/snapshot.js';
import type { ResponseFlag } from '../errors.js';
import type { OutboundCall } from '../telemetry/outbound.js';
import { Attempt, type CallListener, type MessageContext } from './attempt.js';
import { applyMutations, finishCallTelemetry, finishRetryTelemetry, startCallTelemetry, startRetryTelemetry } from './call-telemetry.js';
import type { Abortable, GrpcRuntime } from './runtime.js';
import { grpcStatusForHttp, isConnectFailure } from './status.js';
import { GRPC_FRAME_PREFIX, metadataBytes, takeGrpcPeerMetadata } from './wire.js';
import { grpcPeerIdentity } from '../security/grpc-credentials.js';
import type { CallTarget } from './target.js';

export type { CallTarget } from './target.js';

/** Bytes of request messages kept for replay before the call commits to its attempt (grpc-js' per-call default). */
const RETRY_BUFFER_BYTES = 256 * 1024;
const FLAGS_KEY = 'x-meshlet-flags';

interface Outgoing {
  readonly message: Buffer;
  readonly flags: number | undefined;
  callback: ((error?: Error | null) => void) | undefined;
}

/** A meshed call, as grpc-js' Channel.createCall returns it. */
export class MeshCall extends RouterSession implements Abortable, RequestView {
  private listener: CallListener | undefined;
  private metadata: Metadata | undefined;
  /** no replay needed any more: written messages are dropped */
  private committed = false;
  private readonly outgoing: Outgoing[] = [];
  private bufferedBytes = 0;
  private halfClosed = false;
  private readPending = false;
  private heldMetadata: Metadata | undefined;
  /** What istio_* records: the upstream's metadata-exchange value (response headers, else trailers), messages and frame bytes. */
  private readonly wire = {
    peerMetadata: undefined as string | undefined, peerPrincipal: undefined as string | undefined, localPrincipal: undefined as string | undefined,
    requestMessages: 0, responseMessages: 0, requestBytes: 0, responseBytes: 0,
  };
  /** the caller's deadline (ms since the epoch, Infinity for none): grpc-js enforces it on each try */
  private readonly deadlineMs: number;
  private telemetryCall: OutboundCall | undefined;
  /** mirrors waiting for the whole request, and its messages (only while mirroring) */
  private mirrors: MirrorPolicy[] | undefined;
  private mirrorMessages: Buffer[] | undefined;
  private mirrorBytes = 0;
  private readonly callNumber = ++callNumbers;

  constructor(
    private readonly runtime: GrpcRuntime,
    private readonly target: CallTarget,
    snapshot: Snapshot,
    private readonly callVhost: CompiledVirtualHost | undefined,
    /** `/package.Service/Method` */
    readonly path: string,
    deadline: Deadline,
  ) {
    super(runtime, snapshot, false, true);
    this.deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
  }

  // RequestView for the router: gRPC is always POST, never has a query.
  readonly method = 'POST';
  readonly query = '';
  header(name: string): string | undefined {
    if (name === ':authority' || name === 'host') return this.target.authority;
    const v = this.metadata!.get(name);
    return v.length > 0 && typeof v[0] === 'string' ? v[0] : undefined;
  }

  override hasCallerDeadline(): boolean {
    return this.deadlineMs !== Infinity;
  }

  requestHeader(name: string): string | undefined {
    if (name === ':path') return this.path;
    if (name === ':method') return 'POST';
    return this.header(name);
  }

  start(metadata: Metadata, listener: CallListener): void {
    this.metadata = metadata;
    this.listener = listener;
    if (this.runtime.closed) return this.localReply('NC', 503, Status.UNAVAILABLE, 'the mesh is closed');
    const vhost = this.callVhost;
    if (vhost === undefined) return this.localReply('NR', 502, Status.UNAVAILABLE, `no route: "${this.target.authority}" is not in the mesh registry (REGISTRY_ONLY)`);
    const route = selectRoute(vhost, this);
    if (route === undefined) return this.localReply('NR', 404, Status.UNAVAILABLE, `no route for ${this.path} on ${this.target.authority}`);
    if (route.kind !== 'route') {
      const http = route.kind === 'direct' ? route.directStatus : 404;
      return this.localReply(undefined, http, http === 200 ? Status.OK : grpcStatusForHttp(http), route.directBody || `${route.kind} response`);
    }
    this.runtime.active.add(this);
    this.selectRoute(vhost, route);
    this.committed = !this.mayRetry;
    this.telemetryCall = startCallTelemetry(this.runtime, route, this.clusterIndex, this.cluster, this.target, this.path, metadata);
    this.span = this.telemetryCall?.span;
    applyMutations(metadata, route.requestHeaders);
    applyMutations(metadata, route.clusterRequestHeaders[this.clusterIndex]!);
    this.run();
  }

  createAttempt(host: Host, retryNumber: number): Attempt | Error {
    const credentials = this.runtime.credentialsFor(this.cluster!, host, this.target.credentials);
    if (credentials instanceof Error) return credentials;
    let channel;
    try {
      channel = this.runtime.channels.get(host, this.target.authority, credentials, this.target.options);
    } catch (err) {
      return Object.assign(err as Error, { code: 'MESH_CLOSED' });
    }
    // Only the caller's deadline goes to grpc-js; the route and per-try timeouts are the session's.
    const attempt = new Attempt(this, host, channel.createCall(this.path, this.deadlineMs, undefined, null, undefined));
    // Tries share the metadata (grpc-js clones before merging call credentials); a traced retry gets its own trace headers.
    attempt.metadata = this.metadata;
    if (retryNumber > 0) ({ retry: attempt.retry, metadata: attempt.metadata } = startRetryTelemetry(this.runtime, this.telemetryCall, retryNumber, this.metadata!));
    if (this.vhost?.includeAttemptCount) {
      // Envoy's include_request_attempt_count; the tries' shared metadata is copied so each says its own number.
      attempt.metadata = retryNumber > 0 ? attempt.metadata!.clone() : attempt.metadata;
      attempt.metadata!.set('x-envoy-attempt-count', String(retryNumber + 1));
    }
    return attempt;
  }

  sendAttempt(attempt: RouterAttempt): void {
    const a = attempt as Attempt;
    a.call.start(a.metadata!, a);
    this.pump(a);
    if (this.readPending) a.call.startRead();
  }

  cancelAttempt(attempt: RouterAttempt, reason: string): void {
    (attempt as Attempt).cancel(reason);
  }

  /**
   * Writes the next buffered message to the attempt (grpc-js takes one write at
   * a time) and half-closes as soon as the last one is on its way — not after
   * its write callback, which would cost a unary call an extra turn.
   */
  pump(a: Attempt): void {
    if (a.done) return;
    if (!a.writing && a.writeIndex < this.outgoing.length) {
      const entry = this.outgoing[a.writeIndex]!;
      a.writing = true;
      const ctx: MessageContext = { callback: () => this.written(a, entry) };
      if (entry.flags !== undefined) ctx.flags = entry.flags;
      a.call.sendMessageWithContext(ctx, entry.message);
    }
    const allSent = a.writeIndex + (a.writing ? 1 : 0) >= this.outgoing.length;
    if (allSent && this.halfClosed && !a.halfClosed) {
      a.halfClosed = true;
      a.call.halfClose();
    }
  }

  private written(a: Attempt, entry: Outgoing): void {
    a.writing = false;
    a.writeIndex++;
    const cb = entry.callback;
    entry.callback = undefined;
    if (this.committed && a === this.attempt) {
      // Nothing will replay these any more.
      this.outgoing.splice(0, a.writeIndex);
      a.writeIndex = 0;
    }
    cb?.();
    if (a === this.attempt) this.pump(a);
  }

  sendMessageWithContext(context: MessageContext, message: Buffer): void {
    if (this.state === DONE) {
      context.callback?.();
      return;
    }
    this.outgoing.push({ message, flags: context.flags, callback: context.callback });
    // Each message is a length-prefixed frame on the wire: 5 bytes of prefix, then the message.
    this.wire.requestMessages++;
    this.wire.requestBytes += message.length + GRPC_FRAME_PREFIX;
    if (this.mirrorMessages !== undefined) this.keepForMirror(message);
    if (!this.committed) {
      this.bufferedBytes += message.length;
      // Too much to replay: give up retrying, as grpc-js does past its retry buffer.
      if (this.bufferedBytes > RETRY_BUFFER_BYTES && this.attempt !== undefined) this.stopBuffering(this.attempt as Attempt);
    }
    if (this.attempt !== undefined) this.pump(this.attempt as Attempt);
  }

  halfClose(): void {
    this.halfClosed = true;
    if (this.state === DONE) return;
    if (this.mirrors !== undefined) this.sendMirrors();
    if (this.attempt !== undefined) this.pump(this.attempt as Attempt);
  }

  startRead(): void {
    this.readPending = true;
    if (this.attempt !== undefined && this.state !== DONE) (this.attempt as Attempt).call.startRead();
  }

  private stopBuffering(a: Attempt): void {
    this.committed = true;
    this.replayable = false;
    this.outgoing.splice(0, a.writeIndex);
    a.writeIndex = 0;
    this.bufferedBytes = 0;
  }

  /** The session mirrors this call: the copy goes out once the whole request is known (half-close). */
  mirror(policy: MirrorPolicy): void {
    (this.mirrors ??= []).push(policy);
    this.mirrorMessages ??= [];
    if (this.halfClosed) this.sendMirrors();
  }

  private keepForMirror(message: Buffer): void {
    this.mirrorBytes += message.length;
    // A request too large to replay is not mirrored either (as a streamed HTTP body).
    if (this.mirrorBytes > RETRY_BUFFER_BYTES) this.mirrors = this.mirrorMessages = undefined;
    else this.mirrorMessages!.push(message);
  }

  private sendMirrors(): void {
    const mirrors = this.mirrors;
    const messages = this.mirrorMessages;
    this.mirrors = this.mirrorMessages = undefined;
    if (mirrors === undefined || messages === undefined) return;
    for (const m of mirrors) this.runtime.mirror(this.snapshot, m.cluster, m.shadowSuffix ? shadowAuthority(this.target.authority) : this.target.authority, this.target, this.path, this.metadata!, messages);
  }

  /** Upstream response headers of an attempt: held until the call commits, so a retry can drop them. */
  attemptMetadata(a: Attempt, metadata: Metadata): void {
    if (a !== this.attempt || this.state === DONE) return;
    // The server's metadata exchange rides in its response headers (trailers for a trailers-only reply):
    // taken off before the app sees them, as for HTTP.
    const peer = takeGrpcPeerMetadata(metadata);
    if (peer !== undefined) this.wire.peerMetadata = peer;
    this.wire.responseBytes += metadataBytes(metadata);
    // The upstream's SPIFFE certificate means an ISTIO_MUTUAL channel, which presented ours.
    this.wire.peerPrincipal = grpcPeerIdentity(a.call);
    this.wire.localPrincipal = this.wire.peerPrincipal === undefined ? undefined : this.runtime.localPrincipal?.();
    if (this.state !== PENDING) this.listener!.onReceiveMetadata(this.withFlags(metadata));
    else this.heldMetadata = metadata;
  }

  attemptMessage(a: Attempt, message: Buffer): void {
    if (this.state === PENDING) {
      if (!this.commitAttempt(a)) return;
      if (!this.committed) this.stopBuffering(a);
    } else if (a !== this.attempt || this.state === DONE) {
      return;
    }
    this.flushHeldMetadata();
    this.readPending = false;
    this.wire.responseMessages++;
    this.wire.responseBytes += message.length + GRPC_FRAME_PREFIX;
    this.listener!.onReceiveMessage(message);
  }

  attemptStatus(a: Attempt, status: StatusObject): void {
    if (a.done) return;
    a.done = true;
    a.release();
    if (a.retry !== undefined) finishRetryTelemetry(this.runtime, a.retry, status.code);
    if (a.abandoned || a !== this.attempt) return;
    // Past the caller's deadline a retry could only fail again.
    if (this.deadlineMs !== Infinity && Date.now() >= this.deadlineMs) this.replayable = false;
    if (isConnectFailure(status.code, status.details)) return this.attemptFailed(a, 'connect-failure', new Error(status.details));
    if (this.state === PENDING) {
      const verdict = this.attemptResponse(a, 200, status.code);
      if (verdict === Verdict.DROP) return;
      if (verdict === Verdict.RETRY) {
        this.heldMetadata = undefined;
        this.attemptEnd(a);
        return;
      }
    }
    this.grpcStatus = status.code;
    const peer = takeGrpcPeerMetadata(status.metadata);
    if (peer !== undefined) this.wire.peerMetadata ??= peer;
    this.wire.responseBytes += metadataBytes(status.metadata);
    if (!this.attemptEnd(a, status.code)) return;
    this.flushHeldMetadata();
    const metadata = this.flags !== undefined ? this.withFlags(status.metadata) : status.metadata;
    this.listener!.onReceiveStatus(metadata === status.metadata ? status : { code: status.code, details: status.details, metadata });
  }

  cancelWithStatus(code: Status, details: string): void {
    this.status = 0;
    this.grpcStatus = code;
    if (this.cancel(undefined)) this.deliverLater({ code, details, metadata: new Metadata() });
  }

  /** Closes the call from the mesh (mesh.close after the grace period). */
  abort(code: number, details: string): void {
    this.cancelWithStatus(code, details);
  }

  /** Ends the call with a status made by the mesh, flagged like Envoy's local replies. */
  sendLocalReply(flag: ResponseFlag | undefined, _httpStatus: number, code: number, message: string, headers: Record<string, string> | undefined): void {
    const metadata = new Metadata();
    if (headers !== undefined) for (const name in headers) metadata.set(name, headers[name]!);
    if (flag !== undefined) metadata.set(FLAGS_KEY, flag);
    this.deliverLater({ code, details: flag !== undefined && !message.includes(`(${flag})`) ? `${message} (${flag})` : message, metadata });
  }

  /** The route timeout after the response started: the caller gets DEADLINE_EXCEEDED flagged UT. */
  failDownstream(error: Error): void {
    this.sendLocalReply(this.flags, 504, this.flags === 'UT' ? Status.DEADLINE_EXCEEDED : Status.INTERNAL, error.message, undefined);
  }

  /** Statuses the mesh makes are delivered on the next tick: grpc-js callers attach listeners after start(). */
  private deliverLater(status: StatusObject): void {
    const listener = this.listener;
    if (listener === undefined) return;
    process.nextTick(() => listener.onReceiveStatus(status));
  }

  ended(): void {
    this.runtime.active.delete(this);
    // Writers waiting on a callback would wait forever on a finished call.
    for (const o of this.outgoing) {
      const cb = o.callback;
      o.callback = undefined;
      cb?.();
    }
    this.outgoing.length = 0;
    this.mirrors = this.mirrorMessages = undefined;
    const call = this.telemetryCall;
    this.telemetryCall = undefined;
    if (call !== undefined) finishCallTelemetry(this.runtime, call, this.status, this.grpcStatus, this.responseFlags(), this.wire, this.metadata, this.attempt?.host.id);
  }

  private flushHeldMetadata(): void {
    const md = this.heldMetadata;
    if (md === undefined) return;
    this.heldMetadata = undefined;
    this.listener!.onReceiveMetadata(this.withFlags(md));
  }

  private withFlags(md: Metadata): Metadata {
    if (this.flags !== undefined) md.set(FLAGS_KEY, this.flags);
    return md;
  }

  getPeer(): string {
    return (this.attempt as Attempt | undefined)?.call.getPeer() ?? this.target.authority;
  }

  getCallNumber(): number {
    return this.callNumber;
  }

  setCredentials(): void {
    // Per-call credentials are not forwarded yet; channel credentials apply.
  }

  getAuthContext(): null {
    return null;
  }
}

let callNumbers = 0;
