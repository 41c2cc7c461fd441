/**
 * The part of Istio's MeshConfig meshlet reads, from where istiod reads it —
 * the `istio` ConfigMap in `istio-system`, its `data.mesh` YAML — or from
 * `createMesh({ meshConfig })`. Today that is `pathNormalization`; it ends up
 * on the inbound listener's HttpConnectionManager (normalize_path,
 * merge_slashes, path_with_escaped_slashes_action) as istiod writes it for a
 * sidecar, so embedded mode and xDS mode enforce the same thing.
 */
import { parse as parseYamlText } from 'yaml';
import { MeshConfigError } from '../errors.js';
import { PATH_NORMALIZATION_TYPES, type PathNormalizationType } from '../core/path-normalization.js';

/** `meshConfig` (Istio's MeshConfig field names): what meshlet applies of it. */
export interface MeshConfigOptions {
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
 * Fields other than `pathNormalization` are Istio's and are left to Istio:
 * a ConfigMap copied from a cluster keeps working.
 * @throws MeshConfigError naming `kind`/`name` and the bad field.
 */
export function checkMeshConfig(value: unknown, kind: string, name: string, path: string): MeshConfigOptions {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new MeshConfigError(kind, name, path, 'must be an object');
  const pn = (value as { pathNormalization?: unknown }).pathNormalization;
  if (pn === undefined || pn === null) return {};
  if (typeof pn !== 'object' || Array.isArray(pn)) throw new MeshConfigError(kind, name, `${path}.pathNormalization`, 'must be an object');
  for (const key of Object.keys(pn)) {
    if (key !== 'normalization') throw new MeshConfigError(kind, name, `${path}.pathNormalization.${key}`, 'unknown field');
  }
  const normalization = (pn as { normalization?: unknown }).normalization;
  if (normalization === undefined) return { pathNormalization: {} };
  if (typeof normalization !== 'string' || !PATH_NORMALIZATION_TYPES.includes(normalization as PathNormalizationType)) {
    throw new MeshConfigError(kind, name, `${path}.pathNormalization.normalization`, `must be one of ${PATH_NORMALIZATION_TYPES.join(', ')}, got ${JSON.stringify(normalization)}`);
  }
  return { pathNormalization: { normalization: normalization as PathNormalizationType } };
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
