/**
 * The app's own OpenTelemetry setup — the only tracing code in the example.
 * A NodeTracerProvider registered globally (meshlet uses the global provider
 * when createMesh gets none), exporting to the console, or over OTLP/HTTP
 * when OTEL_EXPORTER_OTLP_ENDPOINT is set and the OTLP exporter package is
 * installed. A memory exporter also keeps the spans so main.ts can print the
 * joined trace as a tree.
 */
import { ConsoleSpanExporter, InMemorySpanExporter, SimpleSpanProcessor, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

/** The tracer provider of this process and the in-memory copy of its spans. */
export interface Tracing {
  provider: NodeTracerProvider;
  memory: InMemorySpanExporter;
  /** Where spans go: `console` or the OTLP endpoint. */
  destination: string;
  shutdown(): Promise<void>;
}

/** The OTLP exporter, when configured and installed (it is not a meshlet dependency). */
async function otlpExporter(): Promise<SpanExporter | undefined> {
  const endpoint = process.env.OTEL_EXPORTER_OTLP_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (!endpoint) return undefined;
  const name = '@opentelemetry/exporter-trace-otlp-http';
  try {
    const mod = (await import(name)) as { OTLPTraceExporter: new () => SpanExporter };
    return new mod.OTLPTraceExporter(); // reads the OTEL_EXPORTER_OTLP_* variables itself
  } catch {
    process.stderr.write(`OTEL_EXPORTER_OTLP_ENDPOINT is set but ${name} is not installed (npm i ${name}); not exporting over OTLP\n`);
    return undefined;
  }
}

/** Sets up tracing for this process. `quiet` skips the console exporter (the tree is printed anyway). */
export async function setupTracing(options: { quiet?: boolean } = {}): Promise<Tracing> {
  const memory = new InMemorySpanExporter();
  const otlp = await otlpExporter();
  const processors: SpanProcessor[] = [new SimpleSpanProcessor(memory)];
  if (otlp) processors.push(new SimpleSpanProcessor(otlp));
  else if (!options.quiet) processors.push(new SimpleSpanProcessor(new ConsoleSpanExporter()));
  const provider = new NodeTracerProvider({ spanProcessors: processors });
  // Global provider and AsyncLocalStorage context manager: meshlet and the app's own spans share them.
  provider.register();
  return {
    provider,
    memory,
    destination: otlp ? String(process.env.OTEL_EXPORTER_OTLP_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) : options.quiet ? 'memory' : 'console',
    shutdown: () => provider.shutdown(),
  };
}
