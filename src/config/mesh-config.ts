/**
 * The part of Istio's MeshConfig meshlet reads, from where istiod reads it —
 * the `istio` ConfigMap in `istio-system`, its `data.mesh` YAML — or from
 * `createMesh({ meshConfig })`: `pathNormalization`, which ends up on the
 * inbound listener's HttpConnectionManager (normalize_path, merge_slashes,
 * path_with_escaped_slashes_action) as istiod writes it for a sidecar, and the
 * access-log fields (`accessLogFile`, `accessLogEncoding`, `accessLogFormat`,
 * `envoyFileAccessLog` extensionProviders, `defaultProviders.accessLogging`),
 * which end up as the HCMs' `access_log`, and the exportTo defaults
 * (`defaultServiceExportTo`, `defaultVirtualServiceExportTo`,
 * `defaultDestinationRuleExportTo`) — so embedded mode and xDS mode
 * enforce the same thing.
 */
import { parse as parseYamlText } from 'yaml';
import { MeshConfigError } from '../errors.js';
import { PATH_NORMALIZATION_TYPES, type PathNormalizationType } from '../core/path-normalization.js';
import type { AccessLogMeshConfig, FileAccessLogProvider } from './translate-access-log.js';
import type { ExportToDefaults } from './export-to.js';

/** `meshConfig` (Istio's MeshConfig field names): what meshlet applies of it. */
export interface MeshConfigOptions extends AccessLogMeshConfig, ExportToDefaults {
  /**
   * How inbound request paths are normalized before authorization, routing
   * and the app (Istio's `meshConfig.pathNormalization`). Default `BASE`.
   */
  pathNormalization?: { normalization?: PathNormalizationType };
}

/** The ConfigMap istiod reads its MeshConfig from. */
export const MESH_CONFIG_MAP = { name: 'istio', namespace: 'istio-system' } as const;

/**
 * Checks a MeshConfig object (from the option or a ConfigMap).
 * Fields other than `pathNormalization` and the access-log ones are Istio's and are left to Istio:
 * a ConfigMap copied from a cluster keeps working.
 * @throws MeshConfigError naming `kind`/`name` and the bad field.
 */
export function checkMeshConfig(value: unknown, kind: string, name: string, path: string): MeshConfigOptions {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new MeshConfigError(kind, name, path, 'must be an object');
  const out: MeshConfigOptions = { ...checkAccessLog(value as Record<string, unknown>, kind, name, path), ...checkExportToDefaults(value as Record<string, unknown>, kind, name, path) };
  const pn = (value as { pathNormalization?: unknown }).pathNormalization;
  if (pn === undefined || pn === null) return out;
  if (typeof pn !== 'object' || Array.isArray(pn)) throw new MeshConfigError(kind, name, `${path}.pathNormalization`, 'must be an object');
  for (const key of Object.keys(pn)) {
    if (key !== 'normalization') throw new MeshConfigError(kind, name, `${path}.pathNormalization.${key}`, 'unknown field');
  }
  const normalization = (pn as { normalization?: unknown }).normalization;
  if (normalization === undefined) return { ...out, pathNormalization: {} };
  if (typeof normalization !== 'string' || !PATH_NORMALIZATION_TYPES.includes(normalization as PathNormalizationType)) {
    throw new MeshConfigError(kind, name, `${path}.pathNormalization.normalization`, `must be one of ${PATH_NORMALIZATION_TYPES.join(', ')}, got ${JSON.stringify(normalization)}`);
  }
  return { ...out, pathNormalization: { normalization: normalization as PathNormalizationType } };
}

/** `defaultServiceExportTo`, `defaultVirtualServiceExportTo`, `defaultDestinationRuleExportTo`: lists of `.`, `*` or namespaces. */
function checkExportToDefaults(mc: Record<string, unknown>, kind: string, name: string, path: string): ExportToDefaults {
  const out: { -readonly [K in keyof ExportToDefaults]: ExportToDefaults[K] } = {};
  for (const field of ['defaultServiceExportTo', 'defaultVirtualServiceExportTo', 'defaultDestinationRuleExportTo'] as const) {
    const v = mc[field];
    if (v === undefined || v === null) continue;
    if (!Array.isArray(v)) throw new MeshConfigError(kind, name, `${path}.${field}`, 'must be a list');
    v.forEach((e: unknown, i) => {
      if (typeof e !== 'string' || !/^(\.|\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$/.test(e)) throw new MeshConfigError(kind, name, `${path}.${field}[${i}]`, 'must be ., * or a namespace name');
    });
    out[field] = v as string[];
  }
  return out;
}

/** The access-log fields of a MeshConfig; extension providers of other kinds (tracing, metrics) are Istio's and skipped. */
function checkAccessLog(mc: Record<string, unknown>, kind: string, name: string, path: string): AccessLogMeshConfig {
  const out: { -readonly [K in keyof AccessLogMeshConfig]: AccessLogMeshConfig[K] } = {};
  const str = (field: string): string | undefined => {
    const v = mc[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new MeshConfigError(kind, name, `${path}.${field}`, 'must be a string');
    return v;
  };
  const file = str('accessLogFile');
  if (file !== undefined) out.accessLogFile = file;
  const format = str('accessLogFormat');
  if (format !== undefined) out.accessLogFormat = format;
  const encoding = str('accessLogEncoding');
  if (encoding !== undefined) {
    if (encoding !== 'TEXT' && encoding !== 'JSON') throw new MeshConfigError(kind, name, `${path}.accessLogEncoding`, `must be TEXT or JSON, got ${JSON.stringify(encoding)}`);
    out.accessLogEncoding = encoding;
  }
  const providers = mc.extensionProviders;
  if (providers !== undefined && providers !== null) {
    if (!Array.isArray(providers)) throw new MeshConfigError(kind, name, `${path}.extensionProviders`, 'must be a list');
    const files: FileAccessLogProvider[] = [];
    providers.forEach((p: unknown, i) => {
      const at = `${path}.extensionProviders[${i}]`;
      if (typeof p !== 'object' || p === null) throw new MeshConfigError(kind, name, at, 'must be an object');
      const { name: pname, envoyFileAccessLog: f } = p as { name?: unknown; envoyFileAccessLog?: unknown };
      if (typeof pname !== 'string' || pname === '') throw new MeshConfigError(kind, name, `${at}.name`, 'required');
      if (f === undefined) return;
      if (typeof f !== 'object' || f === null) throw new MeshConfigError(kind, name, `${at}.envoyFileAccessLog`, 'must be an object');
      const { path: fpath, logFormat, ...rest } = f as { path?: unknown; logFormat?: { text?: unknown; labels?: unknown }; [k: string]: unknown };
      const unknown = Object.keys(rest)[0];
      if (unknown !== undefined) throw new MeshConfigError(kind, name, `${at}.envoyFileAccessLog.${unknown}`, 'not supported (path and logFormat are)');
      if (fpath !== undefined && typeof fpath !== 'string') throw new MeshConfigError(kind, name, `${at}.envoyFileAccessLog.path`, 'must be a string');
      if (logFormat?.text !== undefined && typeof logFormat.text !== 'string') throw new MeshConfigError(kind, name, `${at}.envoyFileAccessLog.logFormat.text`, 'must be a string');
      const labels = logFormat?.labels;
      if (labels !== undefined && (typeof labels !== 'object' || labels === null || Object.values(labels).some((v) => typeof v !== 'string'))) {
        throw new MeshConfigError(kind, name, `${at}.envoyFileAccessLog.logFormat.labels`, 'must map names to format strings');
      }
      files.push({
        name: pname,
        envoyFileAccessLog: {
          ...(fpath !== undefined && { path: fpath as string }),
          ...(logFormat !== undefined && { logFormat: { ...(logFormat.text !== undefined && { text: logFormat.text as string }), ...(labels !== undefined && { labels: labels as Record<string, string> }) } }),
        },
      });
    });
    out.extensionProviders = files;
  }
  const defaults = (mc.defaultProviders as { accessLogging?: unknown } | undefined)?.accessLogging;
  if (defaults !== undefined) {
    if (!Array.isArray(defaults) || defaults.some((d) => typeof d !== 'string')) throw new MeshConfigError(kind, name, `${path}.defaultProviders.accessLogging`, 'must be a list of provider names');
    out.defaultProviders = { accessLogging: defaults as string[] };
  }
  return out;
}

/**
 * The MeshConfig of a set of documents: the `istio` ConfigMap in
 * `istio-system` when one is there (its `data.mesh` is YAML), else undefined.
 */
export function meshConfigFromDocuments(docs: readonly object[]): MeshConfigOptions | undefined {
  for (const doc of docs) {
    const d = doc as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown }; data?: Record<string, unknown> };
    if (d.apiVersion !== 'v1' || d.kind !== 'ConfigMap') continue;
    if (d.metadata?.name !== MESH_CONFIG_MAP.name || d.metadata?.namespace !== MESH_CONFIG_MAP.namespace) continue;
    const resource = `${MESH_CONFIG_MAP.namespace}/${MESH_CONFIG_MAP.name}`;
    const text = d.data?.mesh;
    if (text === undefined) return {};
    if (typeof text !== 'string') throw new MeshConfigError('ConfigMap', resource, 'data.mesh', 'must be a YAML string');
    let value: unknown;
    try {
      value = parseYamlText(text);
    } catch (err) {
      throw new MeshConfigError('ConfigMap', resource, 'data.mesh', `invalid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
    return checkMeshConfig(value, 'ConfigMap', resource, 'data.mesh');
  }
  return undefined;
}
