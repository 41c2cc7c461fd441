/**
 * The telemetry and header edges of a meshed gRPC call: the CLIENT span and
 * trace / metadata-exchange headers at the start, the istio_* series at the
 * end, and the route's header mutations applied to gRPC metadata.
 */
import type { Metadata } from '@grpc/grpc-js';
import type { Context } from '@opentelemetry/api';
import type { CompiledCluster } from '../core/cluster.js';
import type { CompiledRoute, HeaderMutation } from '../core/route.js';
import type { OutboundCall, OutboundRetry } from '../telemetry/outbound.js';
import type { GrpcRuntime } from './runtime.js';
import { metadataBytes } from './wire.js';

/** Starts the CLIENT span (when there is telemetry) and writes the trace headers into the call's metadata. */
export function startCallTelemetry(
  runtime: GrpcRuntime,
  route: CompiledRoute,
  clusterIndex: number,
  cluster: CompiledCluster | undefined,
  target: { authority: string; host: string; port: number },
  path: string,
  metadata: Metadata,
): OutboundCall | undefined {
  const parent: Context = runtime.parentContext();
  const telemetry = runtime.telemetry;
  const headers: string[] = [];
  let call: OutboundCall | undefined;
  if (telemetry !== undefined && cluster !== undefined) {
    const slash = path.lastIndexOf('/');
    call = telemetry.outbound.start(parent, runtime.targetFor(route, clusterIndex)!, {
      method: 'POST',
      url: `http://${target.authority}${path}`,
      serverAddress: target.host,
      serverPort: target.port,
      protocolVersion: '2',
      rpcService: path.slice(1, slash),
      rpcMethod: path.slice(slash + 1),
      // Metadata values are read only when createMesh({ tracing: { recordHeaders } }) names some.
      ...((telemetry.tracer.recordsRequestHeaders || telemetry.outbound.logsAccess) && { headers: metadataHeaders(metadata) }),
    });
    telemetry.outbound.injectHeaders(call, headers);
  } else {
    runtime.propagator.inject(parent, headers);
  }
  for (let i = 0; i < headers.length; i += 2) metadata.set(headers[i]!, headers[i + 1]!);
  return call;
}

/**
 * The span of retry `resendCount` (a child of the call's span) and the
 * metadata that carries its trace context: a copy, since the call's tries
 * otherwise share one. Without a recording span the call's metadata is used.
 */
export function startRetryTelemetry(runtime: GrpcRuntime, call: OutboundCall | undefined, resendCount: number, metadata: Metadata): { retry: OutboundRetry | undefined; metadata: Metadata } {
  const retry = call === undefined ? undefined : runtime.telemetry!.outbound.startRetry(call, resendCount);
  if (retry === undefined) return { retry, metadata };
  const headers: string[] = [];
  runtime.telemetry!.outbound.injectHeaders(retry, headers);
  const copy = metadata.clone();
  for (let i = 0; i < headers.length; i += 2) copy.set(headers[i]!, headers[i + 1]!);
  return { retry, metadata: copy };
}

/** Ends a retry's span with the try's gRPC status. */
export function finishRetryTelemetry(runtime: GrpcRuntime, retry: OutboundRetry, grpcStatus: number): void {
  runtime.telemetry!.outbound.finishRetry(retry, { statusCode: 200, grpcStatus });
}

/** A call's text metadata as a flat [name, value, …] header list (binary `-bin` values are skipped). */
function metadataHeaders(metadata: Metadata): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(metadata.getMap())) if (typeof value === 'string') out.push(name, value);
  return out;
}

/** What a call carried, for the istio_* series. */
export interface CallWire {
  /** The upstream's `x-envoy-peer-metadata` (response headers, else trailers). */
  readonly peerMetadata: string | undefined;
  /** The upstream's SPIFFE id and ours, when the channel was ISTIO_MUTUAL. */
  readonly peerPrincipal: string | undefined;
  readonly localPrincipal: string | undefined;
  readonly requestMessages: number;
  readonly responseMessages: number;
  /** Message frames (and response metadata) in bytes; request metadata is added at the end. */
  readonly requestBytes: number;
  readonly responseBytes: number;
}

/** Ends the CLIENT span and records the source-side series, with the upstream's peer metadata. */
export function finishCallTelemetry(runtime: GrpcRuntime, call: OutboundCall, httpStatus: number, grpcStatus: number, flags: string, wire: CallWire, metadata: Metadata | undefined, upstreamHost?: string): void {
  const outbound = runtime.telemetry!.outbound;
  outbound.finish(call, {
    ...(outbound.logsAccess && {
      requestBodyBytes: wire.requestBytes, responseBodyBytes: wire.responseBytes, protocol: 'HTTP/2',
      ...(upstreamHost !== undefined && { upstreamHost }),
    }),
    statusCode: httpStatus,
    grpcStatus,
    flags,
    requestMessages: wire.requestMessages,
    responseMessages: wire.responseMessages,
    requestBytes: wire.requestBytes + (metadata === undefined ? 0 : metadataBytes(metadata)),
    responseBytes: wire.responseBytes,
    ...(wire.peerMetadata !== undefined && { peerMetadata: wire.peerMetadata }),
    ...(wire.peerPrincipal !== undefined && { peerPrincipal: wire.peerPrincipal }),
    ...(wire.localPrincipal !== undefined && { localPrincipal: wire.localPrincipal }),
  });
}

/** A route's header mutations on gRPC metadata (pseudo-headers are not metadata). */
export function applyMutations(md: Metadata, m: HeaderMutation): void {
  for (const name of m.remove) md.remove(name);
  for (const [name, value, overwrite] of m.add) {
    if (name.startsWith(':')) continue;
    if (overwrite) md.set(name, value);
    else md.add(name, value);
  }
}
