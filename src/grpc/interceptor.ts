/**
 * `mesh.grpc.interceptor`, for users who bring their own channel. A call whose
 * `host` call option (or the interceptor's fixed authority) names a mesh
 * service is taken off the user's channel and run as a meshed call (routing,
 * load balancing, policies, telemetry); any other call stays on the user's
 * channel and only gets trace-context metadata.
 */
import { InterceptingCall, type ChannelCredentials, type Interceptor, type InterceptorOptions, type Metadata } from '@grpc/grpc-js';
import type { CallListener, MessageContext } from './attempt.js';
import { MeshCall } from './call.js';
import type { SnapshotSource } from './channel.js';
import type { GrpcRuntime } from './runtime.js';
import { parseTarget } from './target.js';

type InterceptingCallInterface = ConstructorParameters<typeof InterceptingCall>[0];
type InterceptingListener = Parameters<InterceptingCallInterface['start']>[1];

/** Builds a client interceptor bound to one mesh. */
export function createClientInterceptor(runtime: GrpcRuntime, source: SnapshotSource, credentials: ChannelCredentials, authority?: string): Interceptor {
  const fixed = authority !== undefined ? parseTarget(authority) : undefined;
  return (options, nextCall) => {
    const t = options.host !== undefined ? parseTarget(options.host) : fixed;
    const snapshot = source.snapshot;
    const vhost = t && snapshot.virtualHost(t.host, t.port);
    if (t === undefined || vhost === undefined) {
      return new InterceptingCall(nextCall(options), {
        start(metadata, listener, next) {
          const headers: string[] = [];
          const tel = runtime.telemetry;
          if (tel !== undefined) tel.propagator.inject(runtime.parentContext(), headers);
          else runtime.propagator.inject(runtime.parentContext(), headers);
          for (let i = 0; i < headers.length; i += 2) metadata.set(headers[i]!, headers[i + 1]!);
          next(metadata, listener);
        },
      });
    }
    const call = new MeshCall(runtime, { ...t, credentials, options: {} }, snapshot, vhost, options.method_definition.path, options.deadline ?? Infinity);
    return new InterceptingCall(new SerializingCall(call, options));
  };
}

/** Serializes and deserializes around a MeshCall, as grpc-js' bottom intercepting call does around a channel call. */
class SerializingCall implements InterceptingCallInterface {
  private readonly def: InterceptorOptions['method_definition'];

  constructor(private readonly call: MeshCall, options: InterceptorOptions) {
    this.def = options.method_definition;
  }

  cancelWithStatus(status: Parameters<InterceptingCallInterface['cancelWithStatus']>[0], details: string): void {
    this.call.cancelWithStatus(status, details);
  }

  getPeer(): string {
    return this.call.getPeer();
  }

  start(metadata: Metadata, listener?: InterceptingListener): void {
    const def = this.def;
    const call = this.call;
    let received = false;
    const bottom: CallListener = {
      onReceiveMetadata: (md) => listener?.onReceiveMetadata?.(md),
      onReceiveMessage: (raw: Buffer) => {
        let message: unknown;
        try {
          message = def.responseDeserialize(raw);
        } catch (err) {
          call.cancelWithStatus(13, `Response message parsing error: ${(err as Error).message}`);
          return;
        }
        received = true;
        listener?.onReceiveMessage?.(message);
      },
      onReceiveStatus: (status) => {
        // Unary responses: grpc-js' client expects a (null) message before the status.
        if (!def.responseStream && !received) listener?.onReceiveMessage?.(null);
        listener?.onReceiveStatus?.(status);
      },
    };
    call.start(metadata, bottom);
    if (!def.responseStream) call.startRead();
  }

  sendMessageWithContext(context: MessageContext, message: unknown): void {
    let raw: Buffer;
    try {
      raw = this.def.requestSerialize(message);
    } catch (err) {
      this.call.cancelWithStatus(13, `Request message serialization failure: ${(err as Error).message}`);
      return;
    }
    this.call.sendMessageWithContext(context, raw);
  }

  sendMessage(message: unknown): void {
    this.sendMessageWithContext({}, message);
  }

  startRead(): void {
    this.call.startRead();
  }

  halfClose(): void {
    this.call.halfClose();
  }

  getAuthContext(): null {
    return null;
  }
}
