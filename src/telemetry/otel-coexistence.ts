/**
 * Living next to OpenTelemetry's own auto-instrumentation
 * (@opentelemetry/instrumentation-http, -undici, auto-instrumentations-node),
 * through OTel's public context only:
 *
 * - Outbound: the mesh traces and propagates each upstream request itself (its
 *   CLIENT span, its traceparent). The undici instrumentation would add a second
 *   CLIENT span and a second `traceparent` header to the same request (undici
 *   appends, so the upstream sees two comma-joined values and drops the trace).
 *   The mesh's own pool dispatches therefore run under `suppressTracing` — the
 *   context flag OTel's exporters use for their own requests — which makes the
 *   SDK hand out a non-recording span and the propagators inject nothing.
 * - Inbound: the http instrumentation has already started a SERVER span for the
 *   request and made it active; the mesh's SERVER span becomes its child instead
 *   of a sibling under the remote parent.
 */
import { channel } from 'node:diagnostics_channel';
import { context as otelContext, isSpanContextValid, ROOT_CONTEXT, trace, type Context } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';

/** undici publishes every request it creates here; the undici instrumentation subscribes. */
const requestCreated = channel('undici:request:create');

/** The part of an undici Dispatcher this module calls. */
interface Dispatching<O, H> {
  dispatch(options: O, handler: H): boolean;
}

/**
 * Dispatches an upstream request of the mesh's own so that an undici
 * instrumentation neither records a span for it nor injects headers into it.
 * No closure and no context switch when nothing listens to undici's request channel.
 */
export function dispatchTracedByMesh<O, H>(dispatcher: Dispatching<O, H>, options: O, handler: H): boolean {
  if (!requestCreated.hasSubscribers) return dispatcher.dispatch(options, handler);
  return otelContext.with(suppressTracing(otelContext.active()), dispatcher.dispatch, dispatcher, options, handler);
}

/**
 * The parent of the mesh's SERVER span: the active OTel context when an
 * instrumentation already started a span for this request (the same trace as
 * the extracted headers, or headers with none), else the extracted context.
 */
export function inboundParent(extracted: Context): Context {
  const active = otelContext.active();
  if (active === ROOT_CONTEXT) return extracted;
  const span = trace.getSpan(active);
  if (span === undefined) return extracted;
  const own = span.spanContext();
  if (!isSpanContextValid(own)) return extracted;
  const remote = trace.getSpanContext(extracted);
  if (remote !== undefined && isSpanContextValid(remote) && remote.traceId !== own.traceId) return extracted;
  return active;
}
