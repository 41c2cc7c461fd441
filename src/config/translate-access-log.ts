/**
 * Telemetry `accessLogging` and meshConfig `accessLogFile` → the Envoy
 * `access_log` entries istiod writes on a sidecar's HttpConnectionManagers
 * (pilot/pkg/model/telemetry.go mergeLogs, telemetry_logging.go,
 * pilot/pkg/networking/core/accesslog.go; istio/istio 86c9f01f): CLIENT logs on
 * the outbound api_listeners, SERVER logs on the inbound listener. The mesh
 * reads them back from the listeners (telemetry/access-log.ts), as it would
 * from an xDS server.
 */
import { MeshConfigError } from '../errors.js';
import { AccessLogFilterError, compileAccessLogFilter } from '../telemetry/access-log-filter.js';
import { AccessLogFormatError, compileJsonFormat, compileTextFormat, ISTIO_JSON_FORMAT, ISTIO_TEXT_FORMAT } from '../telemetry/access-log-format.js';
import { ACCESS_LOG_TYPE_URL, CEL_FILTER, FILE_ACCESS_LOG, type EnvoyAccessLog, type FileAccessLog } from '../telemetry/access-log.js';
import { telemetryLevels, type TelemetryResource } from '../telemetry/telemetry-policy.js';
import { TYPE_URL, type Listener } from './envoy.js';
import { fromStruct, toStruct } from './struct.js';

/** An `envoyFileAccessLog` extension provider (MeshConfig.ExtensionProvider). */
export interface FileAccessLogProvider {
  name: string;
  envoyFileAccessLog: { path?: string; logFormat?: { text?: string; labels?: Record<string, string> } };
}

/** The access-log part of MeshConfig (Istio's field names). */
export interface AccessLogMeshConfig {
  /** Legacy mesh-wide access log: a path (`/dev/stdout`); empty or unset writes none. */
  accessLogFile?: string;
  /** `TEXT` (default) or `JSON`. */
  accessLogEncoding?: 'TEXT' | 'JSON';
  /** A text format, or for JSON a JSON object of labels; default Istio's. */
  accessLogFormat?: string;
  /** Providers Telemetry `accessLogging[].providers` name; `envoy` (stdout) is built in, as in Istio's defaults. */
  extensionProviders?: readonly FileAccessLogProvider[];
  /** `defaultProviders.accessLogging`: providers used when a Telemetry names none. */
  defaultProviders?: { accessLogging?: readonly string[] };
}

/** The access logs of one workload: outbound (CLIENT) and inbound (SERVER). */
export interface WorkloadAccessLogs {
  client: EnvoyAccessLog[];
  server: EnvoyAccessLog[];
}

const BUILTIN_ENVOY = 'envoy';

function fileLog(path: string, logFormat: FileAccessLog['log_format']): EnvoyAccessLog {
  return { name: FILE_ACCESS_LOG, typed_config: { '@type': ACCESS_LOG_TYPE_URL.file, path, log_format: logFormat } };
}

function textFormat(text: string | undefined): FileAccessLog['log_format'] {
  const format = text === undefined || text === '' ? ISTIO_TEXT_FORMAT : text.endsWith('\n') ? text : `${text}\n`;
  return { text_format_source: { inline_string: format } };
}

/** FileAccessLogFromMeshConfig: the mesh-wide format and encoding. */
function meshConfigLog(path: string, mesh: AccessLogMeshConfig): EnvoyAccessLog {
  if (mesh.accessLogEncoding === 'JSON') {
    let labels: Record<string, unknown> = { ...ISTIO_JSON_FORMAT };
    if (mesh.accessLogFormat !== undefined && mesh.accessLogFormat !== '') {
      try {
        labels = JSON.parse(mesh.accessLogFormat) as Record<string, unknown>;
      } catch {
        throw new MeshConfigError('MeshConfig', 'mesh', 'accessLogFormat', 'with accessLogEncoding JSON it must be a JSON object of labels');
      }
    }
    return fileLog(path, { json_format: toStruct(labels) as Record<string, unknown> });
  }
  return fileLog(path, textFormat(mesh.accessLogFormat));
}

function providerLog(p: FileAccessLogProvider, mesh: AccessLogMeshConfig): EnvoyAccessLog {
  const f = p.envoyFileAccessLog;
  const path = f.path === undefined || f.path === '' ? '/dev/stdout' : f.path;
  // The built-in provider without a format of its own takes the mesh's (telemetry_logging.go).
  if (p.name === BUILTIN_ENVOY && f.logFormat === undefined) return meshConfigLog(path, mesh);
  if (f.logFormat?.labels !== undefined && Object.keys(f.logFormat.labels).length > 0) return fileLog(path, { json_format: toStruct({ ...f.logFormat.labels }) as Record<string, unknown> });
  return fileLog(path, textFormat(f.logFormat?.text));
}

type Spec = { filter?: string; disabled?: boolean };
type AccessLoggingRule = NonNullable<NonNullable<TelemetryResource['spec']>['accessLogging']>[number];

const modeMatches = (rule: AccessLoggingRule, mode: 'CLIENT' | 'SERVER'): boolean => {
  const m = rule.match?.mode;
  return m === undefined || m === 'CLIENT_AND_SERVER' || m === mode;
};

/** mergeLogs: provider name → its filter (or disabled), for one mode, from the levels mesh → namespace → workload. */
function mergeLogs(levels: readonly TelemetryResource[], defaults: readonly string[], mode: 'CLIENT' | 'SERVER'): Map<string, Spec> {
  const out = new Map<string, Spec>();
  const logging = levels.filter((l) => (l.spec?.accessLogging?.length ?? 0) > 0);
  if (logging.length === 0) {
    for (const p of defaults) out.set(p, {});
    return out;
  }
  let providerNames: readonly string[] = defaults;
  const filters = new Map<string, Spec>();
  for (const level of logging) {
    const names = new Set<string>();
    for (const rule of level.spec!.accessLogging!) {
      if (!modeMatches(rule, mode)) continue;
      for (const p of rule.providers ?? []) {
        if (p.name === undefined) continue;
        names.add(p.name);
        filters.set(p.name, rule.filter?.expression !== undefined ? { filter: rule.filter.expression } : {});
      }
    }
    if (names.size > 0) providerNames = [...names];
  }
  const inScope = new Set(providerNames);
  let parent: readonly string[] = defaults;
  for (const level of logging) {
    for (const rule of level.spec!.accessLogging!) {
      let names = (rule.providers ?? []).map((p) => p.name).filter((n): n is string => n !== undefined);
      if (names.length === 0) names = [...parent];
      parent = names;
      for (const name of names) {
        if (!inScope.has(name) || !modeMatches(rule, mode)) continue;
        out.set(name, rule.disabled === true ? { disabled: true } : (filters.get(name) ?? {}));
      }
    }
  }
  return out;
}

function celFilter(expression: string): EnvoyAccessLog['filter'] {
  return { extension_filter: { name: CEL_FILTER, typed_config: { '@type': ACCESS_LOG_TYPE_URL.cel, expression } } };
}

/**
 * The access logs istiod would configure for this workload.
 * @throws MeshConfigError for a filter expression or format meshlet cannot evaluate.
 */
export function accessLogsFor(
  resources: readonly unknown[],
  workload: { namespace: string; labels?: Readonly<Record<string, string>> },
  mesh: AccessLogMeshConfig = {},
): WorkloadAccessLogs {
  const levels = telemetryLevels(resources, workload);
  const defaults = mesh.defaultProviders?.accessLogging ?? [];
  const logging = levels.some((l) => (l.spec?.accessLogging?.length ?? 0) > 0);
  if (!logging && defaults.length === 0) {
    // No Telemetry API logging: the legacy meshConfig.accessLogFile, on both sides.
    if (mesh.accessLogFile === undefined || mesh.accessLogFile === '') return { client: [], server: [] };
    const log = meshConfigLog(mesh.accessLogFile, mesh);
    checkFormat(log, 'MeshConfig', 'mesh', 'accessLogFormat');
    return { client: [log], server: [log] };
  }
  for (const level of levels) checkFilters(level);
  const providers = new Map<string, FileAccessLogProvider>([[BUILTIN_ENVOY, { name: BUILTIN_ENVOY, envoyFileAccessLog: { path: '/dev/stdout' } }]]);
  for (const p of mesh.extensionProviders ?? []) providers.set(p.name.toLowerCase(), p);
  const side = (mode: 'CLIENT' | 'SERVER'): EnvoyAccessLog[] => {
    const merged = [...mergeLogs(levels, defaults, mode)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const logs: EnvoyAccessLog[] = [];
    for (const [name, spec] of merged) {
      // A provider that is not an envoyFileAccessLog (OpenTelemetry, ALS …) writes nothing here; support.ts says so.
      const p = providers.get(name.toLowerCase());
      if (p === undefined || spec.disabled) continue;
      const log = providerLog(p, mesh);
      checkFormat(log, 'MeshConfig', 'mesh', `extensionProviders[${name}].envoyFileAccessLog.logFormat`);
      logs.push(spec.filter === undefined ? log : { ...log, filter: celFilter(spec.filter) });
    }
    return logs;
  };
  return { client: side('CLIENT'), server: side('SERVER') };
}

function checkFilters(t: TelemetryResource): void {
  (t.spec?.accessLogging ?? []).forEach((rule, i) => {
    const expression = rule.filter?.expression;
    if (expression === undefined) return;
    try {
      compileAccessLogFilter(expression);
    } catch (err) {
      if (!(err instanceof AccessLogFilterError)) throw err;
      throw new MeshConfigError('Telemetry', `${t.metadata.namespace ?? 'default'}/${t.metadata.name}`, `spec.accessLogging[${i}].filter.expression`, err.message);
    }
  });
}

function checkFormat(log: EnvoyAccessLog, kind: string, name: string, path: string): void {
  const lf = log.typed_config?.log_format;
  try {
    if (lf?.json_format !== undefined) compileJsonFormat(fromStruct(lf.json_format));
    else compileTextFormat(lf?.text_format_source?.inline_string ?? ISTIO_TEXT_FORMAT);
  } catch (err) {
    if (!(err instanceof AccessLogFormatError)) throw err;
    throw new MeshConfigError(kind, name, path, err.message);
  }
}

/**
 * The listeners with the access logs on their HCMs: `client` on every
 * outbound api_listener, `server` on the listener named `inbound`. Listeners
 * are copied, never changed in place (the translator caches them).
 */
export function withAccessLogs(listeners: readonly Listener[], logs: WorkloadAccessLogs, inbound: string): Listener[] {
  if (logs.client.length === 0 && logs.server.length === 0) return [...listeners];
  return listeners.map((l) => {
    if (l.api_listener !== undefined) {
      if (logs.client.length === 0) return l;
      return { ...l, api_listener: { api_listener: { ...l.api_listener.api_listener, access_log: logs.client } } };
    }
    if (l.name !== inbound || logs.server.length === 0) return l;
    const chains = (l as { filter_chains?: Array<{ filters?: Array<{ name?: string; typed_config?: { '@type'?: string } }> }> }).filter_chains;
    if (chains === undefined) return l;
    return {
      ...l,
      filter_chains: chains.map((c) => ({
        ...c,
        filters: c.filters?.map((f) => (f.typed_config?.['@type'] === TYPE_URL.httpConnectionManager ? { ...f, typed_config: { ...f.typed_config, access_log: logs.server } } : f)),
      })),
    } as Listener;
  });
}
