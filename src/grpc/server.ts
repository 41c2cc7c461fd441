/**
 * `mesh.grpc.serverInterceptor`: the inbound half for grpc-js servers. It
 * extracts the caller's trace context (W3C / B3) and peer metadata from the
 * request metadata, starts the SERVER span, runs every handler callback in
 * the request's context (AsyncLocalStorage, and OTel's context manager when
 * one is registered) so outbound calls made while handling it join the trace,
 * and records destination-side istio_* metrics with grpc_response_status.
 */
import type { AsyncLocalStorage } from 'node:async_hooks';
import { Metadata as GrpcMetadata, ServerInterceptingCall, status as Status, type Metadata, type ServerInterceptor, type StatusObject } from '@grpc/grpc-js';
import { grpcPeerIdentity } from '../security/grpc-credentials.js';
import { ROOT_CONTEXT, type Context } from '@opentelemetry/api';
import { runInContext } from '../telemetry/run-in-context.js';
import type { InboundCall } from '../telemetry/inbound.js';
import { PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER } from '../telemetry/peer-metadata.js';
import type { InboundHeaders, MeshPropagator } from '../telemetry/propagation.js';
import type { MeshTelemetry } from '../telemetry/telemetry.js';
import { GRPC_FRAME_PREFIX, metadataBytes, takeGrpcPeerMetadata } from './wire.js';

/** What the server interceptor needs. */
export interface ServerInterceptorDeps {
  readonly telemetry: MeshTelemetry | undefined;
  /** Extracts trace context when there is no telemetry. */
  readonly propagator: MeshPropagator;
  /** The store outbound calls read their parent context from. */
  readonly store: AsyncLocalStorage<Context>;
  /** This workload's SPIFFE id, presented on TLS connections (destination_principal). */
  readonly localPrincipal?: () => string | undefined;
  /** AuthorizationPolicy (the inbound listener's RBAC filters) for the call; a status (PERMISSION_DENIED) ends it before the handler runs. */
  readonly authorize?: ((call: { path: string; authority?: string; port?: number; localAddress?: string; metadata: Record<string, string | string[] | undefined>; sourcePrincipal?: string; sourceIp?: string }) => { code: number; details: string } | undefined) | undefined;
  /**
   * The mTLS mode of a local port (the inbound listener's filter chains).
   * Under STRICT a call without a verified client certificate is refused
   * with UNAVAILABLE, as a sidecar would reset the connection: the app's own
   * server credentials may well accept plaintext.
   */
  readonly inboundMode?: ((port: number | undefined) => 'STRICT' | 'PERMISSIVE' | 'DISABLE') | undefined;
}

/** Builds the server interceptor of one mesh. */
export function createServerInterceptor(deps: ServerInterceptorDeps): ServerInterceptor {
  const { telemetry, propagator, store } = deps;
  const run = (ctx: Context, fn: () => void): void => runInContext(store, ctx, fn, undefined, []);

  return (methodDescriptor, call) => {
    let ctx: Context = ROOT_CONTEXT;
    let inbound: InboundCall | undefined;
    let metadataSent = false;
    let ended = false;
    // Envoy's peer_metadata filter answers in kind: each exchange header only when the caller sent it.
    let peerSentId = false;
    let peerSentValue = false;
    // Messages and their frame bytes (5-byte prefix + message), metadata as header bytes.
    let requestMessages = 0;
    let responseMessages = 0;
    let requestBytes = 0;
    let responseBytes = 0;
    const serialize = (methodDescriptor as { responseSerialize?: (value: unknown) => Buffer }).responseSerialize;
    const end = (code: number, error?: unknown): void => {
      if (ended) return;
      ended = true;
      if (inbound !== undefined) {
        telemetry!.inbound.finish(inbound, {
          statusCode: 200, grpcStatus: code, requestMessages, responseMessages, requestBytes, responseBytes,
          ...(telemetry!.inbound.logsAccess && { requestBodyBytes: requestBytes, responseBodyBytes: responseBytes }),
          ...(code === Status.CANCELLED && { flags: 'DC' }), ...(error !== undefined && { error }),
        });
      }
    };
    const addOwnHeaders = (md: Metadata): void => {
      const own = telemetry?.inbound.responseHeaders;
      if (own === undefined) return;
      if (peerSentId) md.set(PEER_METADATA_ID_HEADER, own.id);
      if (peerSentValue) md.set(PEER_METADATA_HEADER, own.value);
    };
    return new ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            const headers = headerRecord(metadata);
            const sourcePrincipal = grpcPeerIdentity(call as unknown as Parameters<typeof grpcPeerIdentity>[0]);
            if (telemetry !== undefined) {
              const path = methodDescriptor.path;
              const slash = path.lastIndexOf('/');
              requestBytes += metadataBytes(metadata);
              peerSentId = headers[PEER_METADATA_ID_HEADER] !== undefined;
              peerSentValue = headers[PEER_METADATA_HEADER] !== undefined;
              // The caller's metadata exchange is the mesh's, not the handler's (as behind a sidecar).
              takeGrpcPeerMetadata(metadata);
              const tls = (call as unknown as { getAuthContext?(): { transportSecurityType?: string } | null }).getAuthContext?.()?.transportSecurityType === 'ssl';
              const localPrincipal = tls ? deps.localPrincipal?.() : undefined;
              inbound = telemetry.inbound.start({
                ...optional('peerPrincipal', sourcePrincipal),
                ...optional('localPrincipal', localPrincipal),
                method: 'POST',
                url: path,
                headers,
                protocol: 'grpc',
                protocolVersion: '2',
                scheme: 'http',
                clientAddress: peerAddress(call.getPeer()),
                peer: call.getPeer(),
                rpcService: path.slice(1, slash),
                rpcMethod: path.slice(slash + 1),
              });
              ctx = inbound.context;
            } else {
              ctx = propagator.extract(headers, ROOT_CONTEXT);
            }
            const connection = (call as unknown as { getConnectionInfo?(): { localAddress?: string; localPort?: number } }).getConnectionInfo?.();
            const localPort = connection?.localPort;
            const denied = deps.inboundMode?.(localPort) === 'STRICT' && sourcePrincipal === undefined
              ? { code: Status.UNAVAILABLE, details: 'mutual TLS required (PeerAuthentication STRICT)' }
              : deps.authorize?.({
                path: methodDescriptor.path,
                metadata: headers,
                ...(typeof headers[':authority'] === 'string' && { authority: headers[':authority'] }),
                ...(localPort !== undefined && { port: localPort }),
                ...optional('localAddress', connection?.localAddress),
                ...optional('sourcePrincipal', sourcePrincipal),
                ...optional('sourceIp', peerAddress(call.getPeer())),
              });
            if (denied) {
              end(denied.code);
              call.sendStatus({ code: denied.code, details: denied.details, metadata: new GrpcMetadata() });
              return;
            }
            run(ctx, () => nextMetadata(metadata));
          },
          onReceiveMessage: (message, nextMessage) => {
            requestMessages++;
            // Deserialized already: its size is what it serializes to (the request type's own encoding).
            requestBytes += GRPC_FRAME_PREFIX + messageSize(message, (methodDescriptor as { requestSerialize?: (value: unknown) => Buffer }).requestSerialize);
            run(ctx, () => nextMessage(message));
          },
          onReceiveHalfClose: (nextHalfClose) => run(ctx, nextHalfClose),
          onCancel: () => end(Status.CANCELLED),
        });
      },
      sendMetadata: (metadata, next) => {
        metadataSent = true;
        addOwnHeaders(metadata);
        responseBytes += metadataBytes(metadata);
        next(metadata);
      },
      sendMessage: (message, next) => {
        responseMessages++;
        responseBytes += GRPC_FRAME_PREFIX + messageSize(message, serialize);
        next(message);
      },
      sendStatus: (status, next) => {
        // Trailers-only response: the peer metadata rides in the trailers.
        if (!metadataSent && status.metadata) addOwnHeaders(status.metadata);
        if (status.metadata) responseBytes += metadataBytes(status.metadata);
        end(status.code, status.code === Status.OK ? undefined : (status as StatusObject).details);
        next(status);
      },
    });
  };
}

/** A message's encoded size: a Buffer's length, else what the method's serializer makes of it (0 without one). */
function messageSize(message: unknown, serialize: ((value: unknown) => Buffer) | undefined): number {
  if (Buffer.isBuffer(message)) return message.length;
  if (serialize === undefined) return 0;
  try {
    return serialize(message).length;
  } catch {
    return 0;
  }
}

/** Metadata's text values as a Node-style header record (binary `-bin` values are skipped). */
function headerRecord(metadata: Metadata): InboundHeaders {
  const out: InboundHeaders = {};
  const map = metadata.getMap();
  for (const key of Object.keys(map)) {
    const v = map[key];
    if (typeof v === 'string') out[key] = v;
  }
  return out;
}

/** `ipv4:127.0.0.1:5000` / `127.0.0.1:5000` / `[::1]:5000` → the address. */
function peerAddress(peer: string): string | undefined {
  const colon = peer.lastIndexOf(':');
  if (colon <= 0) return undefined;
  let host = peer.slice(0, colon);
  if (host.startsWith('ipv4:')) host = host.slice(5);
  else if (host.startsWith('ipv6:')) host = host.slice(5);
  if (host.startsWith('[')) host = host.slice(1, -1);
  return host;
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}
