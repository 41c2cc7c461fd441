/**
 * Trace-context propagation for one mesh: extract W3C `traceparent` /
 * `tracestate` and B3 (multi `x-b3-*` and single `b3`) from inbound headers,
 * inject the configured formats into outbound headers.
 *
 * Built from OpenTelemetry's own propagators inside a CompositePropagator,
 * but owned by the mesh object: the global propagator is never set, so two
 * meshes (or the app's own OTel setup) do not interfere.
 */
import {
  type Context,
  type SpanContext,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  ROOT_CONTEXT,
  TraceFlags,
  createContextKey,
  isSpanContextValid,
  trace,
} from '@opentelemetry/api';
import { CompositePropagator, W3CTraceContextPropagator, isTracingSuppressed } from '@opentelemetry/core';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';

/** An outbound propagation format: W3C trace context, B3 multi-header, B3 single-header. */
export type PropagationFormat = 'w3c' | 'b3multi' | 'b3';

/** Formats injected when none are configured: W3C and B3 multi (what Istio's Envoy sends). */
export const DEFAULT_INJECT_FORMATS: readonly PropagationFormat[] = Object.freeze(['w3c', 'b3multi']);

/**
 * Every header a propagator of this module may read or write, lower-case.
 * Useful for stripping or copying trace headers.
 */
export const TRACE_HEADERS: readonly string[] = Object.freeze([
  'traceparent', 'tracestate', 'b3', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-sampled', 'x-b3-flags', 'x-b3-parentspanid',
]);

/** Inbound headers as Node gives them (`IncomingHttpHeaders`) or any lower-cased record. */
export type InboundHeaders = Record<string, string | string[] | undefined>;

/**
 * Outbound headers the fast injector writes into: a plain record, or a flat
 * `[name, value, name, value, …]` array (undici's raw header form).
 */
export type OutboundHeaders = Record<string, string | string[] | undefined> | string[];

/** The B3 propagator keeps the `x-b3-flags: 1` debug bit under this key (a `Symbol.for`, so it matches). */
const B3_DEBUG_FLAG_KEY = createContextKey('OpenTelemetry Context Key B3 Debug Flag');

/** Getter for Node's header objects: keys are already lower-case there. */
const inboundGetter: TextMapGetter<InboundHeaders> = {
  get(carrier, key) {
    const value = carrier[key];
    return value === undefined ? undefined : value;
  },
  keys(carrier) {
    return Object.keys(carrier);
  },
};

/** Setter for {@link OutboundHeaders}. */
const outboundSetter: TextMapSetter<OutboundHeaders> = {
  set(carrier, key, value) {
    setHeader(carrier, key, value);
  },
};

function setHeader(carrier: OutboundHeaders, key: string, value: string): void {
  if (Array.isArray(carrier)) {
    // Replace an existing value so a retried request does not carry two traceparents.
    for (let i = 0; i < carrier.length; i += 2) {
      if (carrier[i]!.toLowerCase() === key) {
        carrier[i + 1] = value;
        return;
      }
    }
    carrier.push(key, value);
  } else {
    carrier[key] = value;
  }
}

/** Options of {@link MeshPropagator}. */
export interface MeshPropagatorOptions {
  /** Formats written on outbound requests; default {@link DEFAULT_INJECT_FORMATS}. Extraction always accepts all. */
  inject?: readonly PropagationFormat[];
}

/**
 * The propagator of one mesh. Extraction accepts every format (W3C wins when
 * a request carries both, as it is the OTel default); injection writes the
 * configured ones.
 */
export class MeshPropagator {
  /** The formats this propagator injects. */
  readonly formats: readonly PropagationFormat[];
  /** A standard OTel TextMapPropagator with the same behaviour, for code that wants one. */
  readonly textMap: TextMapPropagator;
  private readonly extractor: TextMapPropagator;
  private readonly w3c: boolean;
  private readonly b3multi: boolean;
  private readonly b3single: boolean;

  constructor(options: MeshPropagatorOptions = {}) {
    const formats = options.inject ?? DEFAULT_INJECT_FORMATS;
    for (const f of formats) {
      if (f !== 'w3c' && f !== 'b3multi' && f !== 'b3') throw new TypeError(`unknown propagation format: ${String(f)}`);
    }
    this.formats = Object.freeze([...formats]);
    this.w3c = formats.includes('w3c');
    this.b3multi = formats.includes('b3multi');
    this.b3single = formats.includes('b3');
    // B3 first, W3C last: CompositePropagator applies extractors in order, so the W3C context wins.
    this.extractor = new CompositePropagator({
      propagators: [new B3Propagator(), new W3CTraceContextPropagator()],
    });
    const injectors: TextMapPropagator[] = [];
    if (this.w3c) injectors.push(new W3CTraceContextPropagator());
    if (this.b3multi) injectors.push(new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER }));
    if (this.b3single) injectors.push(new B3Propagator({ injectEncoding: B3InjectEncoding.SINGLE_HEADER }));
    const extractor = this.extractor;
    const injector = new CompositePropagator({ propagators: injectors });
    this.textMap = {
      inject: (ctx, carrier, setter) => injector.inject(ctx, carrier, setter),
      extract: (ctx, carrier, getter) => extractor.extract(ctx, carrier, getter),
      fields: () => [...TRACE_HEADERS],
    };
  }

  /**
   * Extracts the remote span context from inbound headers into a context
   * (on top of `base`, default the root context). Returns `base` unchanged
   * when no valid trace header is present.
   */
  extract(headers: InboundHeaders, base: Context = ROOT_CONTEXT): Context {
    // Fast exit: most unsampled internal traffic carries no trace header at all.
    if (headers.traceparent === undefined && headers.b3 === undefined && headers['x-b3-traceid'] === undefined) return base;
    return this.extractor.extract(base, headers, inboundGetter);
  }

  /**
   * Writes the context's span into outbound headers in every configured
   * format. Same output as the OTel propagators (tested), without their
   * per-call setter and composite overhead: this runs on every request.
   */
  inject(ctx: Context, headers: OutboundHeaders, spanContext?: SpanContext): void {
    const sc = spanContext ?? trace.getSpanContext(ctx);
    if (sc === undefined || !isSpanContextValid(sc) || isTracingSuppressed(ctx)) return;
    const sampled = (sc.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED;
    if (this.w3c) {
      const flags = sc.traceFlags & 0xff;
      setHeader(headers, 'traceparent', `00-${sc.traceId}-${sc.spanId}-${flags < 16 ? '0' : ''}${flags.toString(16)}`);
      if (sc.traceState !== undefined) setHeader(headers, 'tracestate', sc.traceState.serialize());
    }
    if (this.b3multi || this.b3single) {
      // The B3 extractors store '1' (x-b3-flags) or 'd' (single header) here; mirror OTel's injectors exactly.
      const debug = ctx.getValue(B3_DEBUG_FLAG_KEY) as string | undefined;
      if (this.b3multi) {
        setHeader(headers, 'x-b3-traceid', sc.traceId);
        setHeader(headers, 'x-b3-spanid', sc.spanId);
        // B3 spec: with the debug flag set, the sampled header is not sent.
        if (debug === '1') setHeader(headers, 'x-b3-flags', '1');
        else setHeader(headers, 'x-b3-sampled', sampled ? '1' : '0');
      }
      if (this.b3single) {
        setHeader(headers, 'b3', `${sc.traceId}-${sc.spanId}-${debug || (sampled ? '1' : '0')}`);
      }
    }
  }

  /** Injection through the OTel composite propagator (the reference the fast path is tested against). */
  injectWithOtel(ctx: Context, headers: OutboundHeaders): void {
    this.textMap.inject(ctx, headers, outboundSetter);
  }
}

/** Removes every trace header from a Node-style header record (e.g. before re-propagating). */
export function stripTraceHeaders(headers: InboundHeaders): void {
  for (const name of TRACE_HEADERS) delete headers[name];
}
