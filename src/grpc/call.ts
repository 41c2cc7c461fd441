/**
 * One meshed gRPC call: Envoy's router filter for gRPC, at grpc-js' Call
 * layer (serialized messages). On start it matches the route on `:path` and
 * metadata, applies fault injection, picks the destination cluster by weight
 * and the endpoint by the cluster's load balancer and outlier state, and
 * runs attempts on that endpoint's channel. Until the first response message
 * arrives the call is uncommitted: sent messages are buffered so a retriable
 * status (retryOn: cancelled, deadline-exceeded, internal, resource-exhausted,
 * unavailable, connect failures, per-try timeouts) can replay them on a new
 * attempt after a jittered back-off. The route timeout bounds the whole call.
 */
import { Metadata, status as Status, type Deadline, type StatusObject } from '@grpc/grpc-js';
import type { CompiledCluster } from '../core/cluster.js';
import { decideFault } from '../core/fault.js';
import type { Host } from '../core/load-balancer.js';
import { backoffDelay } from '../core/retry.js';
import { pickClusterIndex, type CompiledRoute } from '../core/route.js';
import type { RequestView } from '../core/router.js';
import { selectRoute, type CompiledVirtualHost, type Snapshot } from '../core/snapshot.js';
import type { ResponseFlag } from '../errors.js';
import type { OutboundCall } from '../telemetry/outbound.js';
import { Attempt, type Call, type CallListener, type MessageContext } from './attempt.js';
import type { Abortable, GrpcRuntime } from './runtime.js';
import { grpcStatusForHttp } from './status.js';
import { applyMutations, finishCallTelemetry, finishRetryTelemetry, startCallTelemetry, startRetryTelemetry } from './call-telemetry.js';
import { refuseCall, reportAttempt, retriableAttempt } from './call-policies.js';
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

const PENDING = 0; // before start, or fault delay
const ROUTED = 1;
const DONE = 2;

/** A meshed call, as grpc-js' Channel.createCall returns it. */
export class MeshCall implements Call, Abortable, RequestView {
  /** holds a max_requests slot of the cluster's circuit breaker */
  private admitted = false;
  private state = PENDING;
  private listener: CallListener | undefined;
  private metadata: Metadata | undefined;
  private route: CompiledRoute | undefined;
  private cluster: CompiledCluster | undefined;
  private clusterIndex = 0;
  private attempt: Attempt | undefined;
  private lastHost: Host | undefined;
  private retriesLeft = 0;
  private retryNumber = 0;
  private committed = false;
  private readonly outgoing: Outgoing[] = [];
  private bufferedBytes = 0;
  private halfClosed = false;
  private readPending = false;
  private heldMetadata: Metadata | undefined;
  private deadlineMs: number;
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private telemetryCall: OutboundCall | undefined;
  private flag: ResponseFlag | undefined;
  private readonly callNumber = ++callNumbers;

  constructor(
    private readonly runtime: GrpcRuntime,
    private readonly target: CallTarget,
    /** the snapshot the call started with; it finishes on it even if config changes */
    private readonly snapshot: Snapshot,
    private readonly vhost: CompiledVirtualHost | undefined,
    /** `/package.Service/Method` */
    readonly path: string,
    deadline: Deadline,
  ) {
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

  start(metadata: Metadata, listener: CallListener): void {
    this.metadata = metadata;
    this.listener = listener;
    if (this.runtime.closed) return this.localReply('NC', 503, Status.UNAVAILABLE, 'the mesh is closed');
    if (this.vhost === undefined) return this.localReply('NR', 502, Status.UNAVAILABLE, `no route: "${this.target.authority}" is not in the mesh registry (REGISTRY_ONLY)`);
    const route = selectRoute(this.vhost, this);
    if (route === undefined) return this.localReply('NR', 404, Status.UNAVAILABLE, `no route for ${this.path} on ${this.target.authority}`);
    this.route = route;
    if (route.kind !== 'route') {
      const http = route.kind === 'direct' ? route.directStatus : 404;
      return this.localReply(undefined, http, http === 200 ? Status.OK : grpcStatusForHttp(http), route.directBody || `${route.kind} response`);
    }
    this.runtime.active.add(this);
    this.clusterIndex = pickClusterIndex(route, this.runtime.random);
    const clusterName = route.clusters[this.clusterIndex]!;
    this.cluster = this.beginTelemetry(route, clusterName);
    if (this.cluster === undefined) return this.localReply('NC', 503, Status.UNAVAILABLE, `no cluster: the route's cluster "${clusterName}" is not known`);
    if (route.timeoutMs > 0) {
      const routeDeadline = Date.now() + route.timeoutMs;
      if (routeDeadline < this.deadlineMs) {
        this.deadlineMs = routeDeadline;
        this.timer = setTimeout(() => this.onRouteTimeout(), route.timeoutMs);
      }
    }
    this.retriesLeft = route.retry?.numRetries ?? 0;
    this.committed = this.retriesLeft === 0;
    applyMutations(metadata, route.requestHeaders);
    applyMutations(metadata, route.clusterRequestHeaders[this.clusterIndex]!);

    const fault = decideFault(this.runtime.faultFor(route), this.runtime.random);
    const refusal = refuseCall(fault, this.vhost, this.cluster);
    if (refusal !== undefined) {
      const reply = () => this.localReply(refusal.flag, refusal.http, refusal.code, refusal.message);
      if (refusal.flag === 'FI' && fault.delayMs > 0) this.retryTimer = setTimeout(reply, fault.delayMs);
      else reply();
      return;
    }
    this.admitted = true;
    if (fault.delayMs > 0) {
      this.flag = 'DI';
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.state = ROUTED;
        this.sendAttempt();
      }, fault.delayMs);
      return;
    }
    this.state = ROUTED;
    this.sendAttempt();
  }

  private beginTelemetry(route: CompiledRoute, clusterName: string): CompiledCluster | undefined {
    const cluster = this.snapshot.clusters.get(clusterName);
    this.telemetryCall = startCallTelemetry(this.runtime, route, this.clusterIndex, cluster, this.target, this.path, this.metadata!);
    return cluster;
  }

  private sendAttempt(): void {
    if (this.state !== ROUTED) return;
    const cluster = this.cluster!;
    const retry = this.route!.retry;
    const host = cluster.pick(retry?.otherHost ? this.lastHost : undefined);
    if (host === undefined) return this.localReply('UH', 503, Status.UNAVAILABLE, 'no healthy upstream');
    this.lastHost = host;
    const credentials = this.runtime.credentialsFor(cluster, host, this.target.credentials);
    if (credentials instanceof Error) return this.localReply('UF', 503, Status.UNAVAILABLE, `upstream connect error: ${credentials.message}`);
    let channel;
    try {
      channel = this.runtime.channels.get(host, this.target.authority, credentials, this.target.options);
    } catch {
      return this.localReply('NC', 503, Status.UNAVAILABLE, 'the mesh is closed');
    }
    const perTry = retry?.perTryTimeoutMs ?? 0;
    let deadline = this.deadlineMs;
    const perTryDeadline = perTry > 0 ? Date.now() + perTry : Infinity;
    if (perTryDeadline < deadline) deadline = perTryDeadline;
    const attempt = new Attempt(this, host, channel.createCall(this.path, deadline, undefined, null, undefined));
    this.attempt = attempt;
    if (perTryDeadline < this.deadlineMs) attempt.timer = setTimeout(() => this.onPerTryTimeout(attempt), perTry);
    // Tries share the metadata (grpc-js clones before merging call credentials); a traced retry gets its own trace headers.
    let metadata = this.metadata!;
    if (this.retryNumber > 0) ({ retry: attempt.retry, metadata } = startRetryTelemetry(this.runtime, this.telemetryCall, this.retryNumber, metadata));
    attempt.call.start(metadata, attempt);
    this.pump(attempt);
    if (this.readPending) attempt.call.startRead();
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
    if (!this.committed) {
      this.bufferedBytes += message.length;
      // Too much to replay: give up retrying, as grpc-js does past its retry buffer.
      if (this.bufferedBytes > RETRY_BUFFER_BYTES && this.attempt !== undefined) this.commit(this.attempt);
    }
    if (this.attempt !== undefined) this.pump(this.attempt);
  }

  halfClose(): void {
    this.halfClosed = true;
    if (this.attempt !== undefined && this.state !== DONE) this.pump(this.attempt);
  }

  startRead(): void {
    this.readPending = true;
    if (this.attempt !== undefined && this.state !== DONE) this.attempt.call.startRead();
  }

  private commit(a: Attempt): void {
    this.committed = true;
    if (a.timer) clearTimeout(a.timer);
    this.outgoing.splice(0, a.writeIndex);
    a.writeIndex = 0;
    this.bufferedBytes = 0;
  }

  /** Upstream response headers of an attempt: held until the call commits, so a retry can drop them. */
  attemptMetadata(a: Attempt, metadata: Metadata): void {
    if (a !== this.attempt || this.state === DONE) return;
    if (this.committed) this.listener!.onReceiveMetadata(this.withFlags(metadata));
    else this.heldMetadata = metadata;
  }

  attemptMessage(a: Attempt, message: Buffer): void {
    if (a !== this.attempt || this.state === DONE) return;
    if (!this.committed) this.commit(a);
    this.flushHeldMetadata();
    this.readPending = false;
    this.listener!.onReceiveMessage(message);
  }

  attemptStatus(a: Attempt, status: StatusObject): void {
    if (a.done) return;
    a.done = true;
    a.release();
    if (a.retry !== undefined) finishRetryTelemetry(this.runtime, a.retry, status.code);
    const connectFailed = reportAttempt(this.cluster!, a.host, status, a.timedOut, a.cancelledByMesh);
    if (a !== this.attempt || this.state === DONE) return;
    const retry = this.route!.retry;
    if (!this.committed && retry !== undefined && this.retriesLeft > 0 && status.code !== Status.OK && Date.now() < this.deadlineMs
      && retriableAttempt(retry, status.code, a.timedOut, connectFailed)) return this.retryAfterBackoff(a.timedOut ? 'per-try-timeout' : connectFailed ? 'connect-failure' : Status[status.code]!);
    if (a.timedOut) return this.localReply('UT', 504, Status.DEADLINE_EXCEEDED, 'upstream request timeout (per-try timeout)');
    if (connectFailed) {
      const flag: ResponseFlag = this.retryNumber > 0 ? 'URX' : 'UF';
      return this.localReply(flag, 503, Status.UNAVAILABLE, `upstream connect error or disconnect/reset before headers. reset reason: connection failure (${flag}): ${status.details}`);
    }
    this.finish();
    this.flushHeldMetadata();
    const metadata = this.flag !== undefined ? this.withFlags(status.metadata) : status.metadata;
    this.endTelemetry(200, status.code, metadata);
    this.listener!.onReceiveStatus(metadata === status.metadata ? status : { code: status.code, details: status.details, metadata });
  }

  private retryAfterBackoff(reason: string): void {
    this.retriesLeft--;
    this.retryNumber++;
    if (this.telemetryCall !== undefined) this.runtime.telemetry!.tracer.retrying(this.telemetryCall.span, this.retryNumber, reason);
    this.heldMetadata = undefined;
    this.attempt = undefined;
    const delay = backoffDelay(this.route!.retry!, this.retryNumber, this.runtime.random);
    if (delay <= 0) return this.sendAttempt();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.sendAttempt();
    }, delay);
  }

  private onPerTryTimeout(a: Attempt): void {
    if (a !== this.attempt || a.done || this.state === DONE) return;
    a.timedOut = true;
    a.cancel('per-try timeout');
    this.attemptStatus(a, { code: Status.DEADLINE_EXCEEDED, details: 'per-try timeout', metadata: new Metadata() });
  }

  private onRouteTimeout(): void {
    this.timer = undefined;
    this.localReply('UT', 504, Status.DEADLINE_EXCEEDED, 'upstream request timeout');
  }

  cancelWithStatus(code: Status, details: string): void {
    if (this.state === DONE) return;
    this.finish();
    this.attempt?.cancel(details);
    this.endTelemetry(0, code, undefined, 'DC');
    this.deliverLater({ code, details, metadata: new Metadata() });
  }

  /** Closes the call from the mesh (mesh.close after the grace period). */
  abort(code: number, details: string): void {
    this.cancelWithStatus(code, details);
  }

  /** Ends the call with a status made by the mesh, flagged like Envoy's local replies. */
  private localReply(flag: ResponseFlag | undefined, httpStatus: number, code: number, message: string): void {
    if (this.state === DONE) return;
    this.finish();
    this.attempt?.cancel(message);
    const metadata = new Metadata();
    if (flag !== undefined) metadata.set(FLAGS_KEY, flag);
    this.endTelemetry(httpStatus, code, undefined, flag);
    this.deliverLater({ code, details: flag !== undefined && !message.includes(`(${flag})`) ? `${message} (${flag})` : message, metadata });
  }

  /** Statuses the mesh makes are delivered on the next tick: grpc-js callers attach listeners after start(). */
  private deliverLater(status: StatusObject): void {
    const listener = this.listener;
    if (listener === undefined) return;
    process.nextTick(() => listener.onReceiveStatus(status));
  }

  private finish(): void {
    this.state = DONE;
    if (this.admitted) {
      this.admitted = false;
      this.cluster!.breaker.releaseRequest();
    }
    if (this.timer) clearTimeout(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.timer = this.retryTimer = undefined;
    if (this.attempt?.timer) clearTimeout(this.attempt.timer);
    this.runtime.active.delete(this);
    // Writers waiting on a callback would wait forever on a finished call.
    for (const o of this.outgoing) {
      const cb = o.callback;
      o.callback = undefined;
      cb?.();
    }
    this.outgoing.length = 0;
  }

  private flushHeldMetadata(): void {
    const md = this.heldMetadata;
    if (md === undefined) return;
    this.heldMetadata = undefined;
    this.listener!.onReceiveMetadata(this.withFlags(md));
  }

  private withFlags(md: Metadata): Metadata {
    if (this.flag !== undefined) md.set(FLAGS_KEY, this.flag);
    return md;
  }

  private endTelemetry(httpStatus: number, grpcStatus: number, trailers: Metadata | undefined, flag?: ResponseFlag): void {
    const call = this.telemetryCall;
    this.telemetryCall = undefined;
    if (call !== undefined) finishCallTelemetry(this.runtime, call, httpStatus, grpcStatus, trailers, flag ?? this.flag ?? '-');
  }

  getPeer(): string {
    return this.attempt?.call.getPeer() ?? this.target.authority;
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


