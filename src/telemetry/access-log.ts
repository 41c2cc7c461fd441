/**
 * Access logs as Envoy configures them: an HttpConnectionManager's
 * `access_log` entries (envoy.access_loggers.file with a FileAccessLog:
 * path, text or JSON format, and an optional CEL ExpressionFilter). The
 * translator writes Telemetry `accessLogging` and meshConfig `accessLogFile`
 * into those fields, and an xDS server sends them the same way, so both are
 * compiled here from the listeners: outbound api_listener HCMs give the
 * CLIENT logs, the inbound listener's HCM the SERVER logs.
 */
import type { AccessLogEntry } from './access-log-entry.js';
import { AccessLogFilterError, compileAccessLogFilter, type AccessLogPredicate } from './access-log-filter.js';
import { AccessLogFormatError, compileJsonFormat, compileTextFormat, ISTIO_TEXT_FORMAT, type AccessLogFormatter } from './access-log-format.js';
import { AccessLogSink } from './access-log-sink.js';
import { fromStruct } from '../config/struct.js';

/** Envoy's file access logger. */
export const FILE_ACCESS_LOG = 'envoy.access_loggers.file';
/** Envoy's CEL access-log filter. */
export const CEL_FILTER = 'envoy.access_loggers.extension_filters.cel';
/** Type URLs of the access-log messages. */
export const ACCESS_LOG_TYPE_URL = {
  file: 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
  cel: 'type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter',
} as const;

/** envoy.extensions.access_loggers.file.v3.FileAccessLog, as JSON. */
export interface FileAccessLog {
  '@type'?: string;
  path?: string;
  log_format?: {
    text_format?: string;
    text_format_source?: { inline_string?: string };
    json_format?: Record<string, unknown>;
    omit_empty_values?: boolean;
  };
  /** Deprecated v3 fields, still sent by older control planes. */
  format?: string;
  json_format?: Record<string, unknown>;
}

/** envoy.config.accesslog.v3.AccessLogFilter, the kinds meshlet evaluates. */
export interface AccessLogFilter {
  extension_filter?: { name?: string; typed_config?: { '@type'?: string; expression?: string } };
  and_filter?: { filters?: AccessLogFilter[] };
  or_filter?: { filters?: AccessLogFilter[] };
  [other: string]: unknown;
}

/** envoy.config.accesslog.v3.AccessLog, as JSON. */
export interface EnvoyAccessLog {
  name?: string;
  typed_config?: FileAccessLog;
  filter?: AccessLogFilter;
}

/** A compiled access log: filter, format, sink. */
export interface AccessLogger {
  readonly filter: AccessLogPredicate | undefined;
  readonly format: AccessLogFormatter;
  readonly sink: AccessLogSink;
}

/** Why an access_log entry is unusable; `path` is relative to the entry. */
export class AccessLogConfigError extends Error {
  constructor(readonly path: string, readonly reason: string) {
    super(`${path}: ${reason}`);
  }
}

function compileFilter(f: AccessLogFilter, path: string): AccessLogPredicate {
  if (f.extension_filter !== undefined) {
    const ext = f.extension_filter;
    if (ext.name !== CEL_FILTER && ext.typed_config?.['@type'] !== ACCESS_LOG_TYPE_URL.cel) {
      throw new AccessLogConfigError(`${path}.extension_filter.name`, `only ${CEL_FILTER} filters are supported, got ${JSON.stringify(ext.name)}`);
    }
    try {
      return compileAccessLogFilter(ext.typed_config?.expression ?? '');
    } catch (err) {
      if (err instanceof AccessLogFilterError) throw new AccessLogConfigError(`${path}.extension_filter.typed_config.expression`, err.message);
      throw err;
    }
  }
  const both = f.and_filter ?? f.or_filter;
  if (both !== undefined) {
    const key = f.and_filter !== undefined ? 'and_filter' : 'or_filter';
    const parts = (both.filters ?? []).map((p, i) => compileFilter(p, `${path}.${key}.filters[${i}]`));
    return key === 'and_filter' ? (e) => parts.every((p) => p(e)) : (e) => parts.some((p) => p(e));
  }
  throw new AccessLogConfigError(path, `unsupported filter ${JSON.stringify(Object.keys(f)[0] ?? '{}')} (extension_filter with a CEL expression, and_filter, or_filter are)`);
}

function compileFormat(config: FileAccessLog, path: string): AccessLogFormatter {
  const lf = config.log_format;
  try {
    if (lf?.json_format !== undefined) return compileJsonFormat(jsonLabels(lf.json_format));
    if (config.json_format !== undefined) return compileJsonFormat(jsonLabels(config.json_format));
    const text = lf?.text_format_source?.inline_string ?? lf?.text_format ?? config.format;
    // Envoy's own default format when none is given; Istio always sends one.
    return compileTextFormat(text ?? ISTIO_TEXT_FORMAT);
  } catch (err) {
    if (err instanceof AccessLogFormatError) throw new AccessLogConfigError(`${path}.typed_config.log_format`, err.message);
    throw err;
  }
}

/**
 * `json_format` is a google.protobuf.Struct: in its protobuf form
 * (`{ fields: { k: { stringValue } } }`) as the translator writes it and xDS
 * decodes it, or as plain JSON from a hand-written config.
 */
function jsonLabels(format: Record<string, unknown>): Record<string, unknown> {
  const fields = format.fields;
  return typeof fields === 'object' && fields !== null && !Array.isArray(fields) ? fromStruct(format) : format;
}

/** The file sinks of a mesh, by path, so a config push keeps the files it still writes open. */
export class AccessLogSinks {
  private readonly sinks = new Map<string, AccessLogSink>();

  constructor(private readonly maxBufferedBytes?: number) {}

  get(path: string): AccessLogSink {
    let s = this.sinks.get(path);
    if (s === undefined) {
      s = new AccessLogSink(path, this.maxBufferedBytes);
      this.sinks.set(path, s);
    }
    return s;
  }

  /** Lines dropped by every sink so far. */
  get dropped(): number {
    let n = 0;
    for (const s of this.sinks.values()) n += s.dropped;
    return n;
  }

  /** Closes the sinks no logger uses any more. */
  retain(inUse: ReadonlySet<AccessLogSink>): void {
    for (const [path, s] of this.sinks) {
      if (inUse.has(s)) continue;
      this.sinks.delete(path);
      void s.close();
    }
  }

  async close(): Promise<void> {
    const all = [...this.sinks.values()];
    this.sinks.clear();
    await Promise.all(all.map((s) => s.close()));
  }
}

/**
 * Compiles an HCM's `access_log` list.
 * @throws AccessLogConfigError naming the entry's field.
 */
export function compileAccessLogs(logs: readonly EnvoyAccessLog[] | undefined, sinks: AccessLogSinks): AccessLogger[] {
  if (logs === undefined || logs.length === 0) return [];
  return logs.map((log, i) => {
    const path = `access_log[${i}]`;
    const config = log.typed_config;
    if (log.name !== FILE_ACCESS_LOG && config?.['@type'] !== ACCESS_LOG_TYPE_URL.file) {
      throw new AccessLogConfigError(`${path}.name`, `only ${FILE_ACCESS_LOG} is supported, got ${JSON.stringify(log.name)}`);
    }
    if (config?.path === undefined || config.path === '') throw new AccessLogConfigError(`${path}.typed_config.path`, 'required');
    return {
      filter: log.filter === undefined ? undefined : compileFilter(log.filter, `${path}.filter`),
      format: compileFormat(config, path),
      sink: sinks.get(config.path),
    };
  });
}

/** Writes one entry to every logger whose filter passes it. */
export function writeAccessLogs(loggers: readonly AccessLogger[], entry: AccessLogEntry): void {
  for (const l of loggers) {
    if (l.filter !== undefined && !l.filter(entry)) continue;
    l.sink.write(l.format(entry));
  }
}
