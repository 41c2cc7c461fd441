/**
 * Which path normalization a snapshot asks for: the `normalize_path`,
 * `merge_slashes` and `path_with_escaped_slashes_action` fields of its
 * `virtual_inbound` listener's HttpConnectionManager — what istiod writes for
 * a sidecar from `meshConfig.pathNormalization`, and what meshlet's
 * translator writes from the same setting. An HCM that sets none of them
 * (istiod's proxyless gRPC listeners) leaves the mesh's own setting in force,
 * so a control plane that says nothing never turns normalization off.
 */
import { inboundListener } from './listener-role.js';
import { VIRTUAL_INBOUND, inboundConnectionManager, type InboundHttpConnectionManager } from '../config/translate-inbound.js';
import { MeshConfigError } from '../errors.js';
import type { InboundPolicySource } from './inbound-policy.js';
import type { EscapedSlashesAction, PathNormalizationSettings } from './path-normalization.js';

const HCM_PATH = 'filter_chains[0].filters[0].typed_config';

/** Envoy's enum by name and by number (proto-loader gives names; JSON may give either). */
const ESCAPED_SLASHES: Readonly<Record<string, EscapedSlashesAction>> = {
  IMPLEMENTATION_SPECIFIC_DEFAULT: 'KEEP_UNCHANGED', 0: 'KEEP_UNCHANGED',
  KEEP_UNCHANGED: 'KEEP_UNCHANGED', 1: 'KEEP_UNCHANGED',
  REJECT_REQUEST: 'REJECT_REQUEST', 2: 'REJECT_REQUEST',
  UNESCAPE_AND_REDIRECT: 'UNESCAPE_AND_REDIRECT', 3: 'UNESCAPE_AND_REDIRECT',
  UNESCAPE_AND_FORWARD: 'UNESCAPE_AND_FORWARD', 4: 'UNESCAPE_AND_FORWARD',
};

function bool(value: unknown, field: string): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'object' && typeof (value as { value?: unknown }).value === 'boolean') return (value as { value: boolean }).value;
  if (typeof value === 'object' && (value as { value?: unknown }).value === undefined) return false; // BoolValue with the default omitted
  throw new MeshConfigError('Listener', VIRTUAL_INBOUND, `${HCM_PATH}.${field}`, 'must be a boolean');
}

/**
 * The settings an HCM carries, Envoy's defaults for the fields it leaves
 * unset; undefined when it sets none of the three.
 * @throws MeshConfigError for a value Envoy would refuse.
 */
export function hcmPathNormalization(hcm: InboundHttpConnectionManager | undefined): PathNormalizationSettings | undefined {
  if (hcm === undefined) return undefined;
  const normalizePath = bool(hcm.normalize_path, 'normalize_path');
  const mergeSlashes = bool(hcm.merge_slashes, 'merge_slashes');
  const action = hcm.path_with_escaped_slashes_action;
  if (normalizePath === undefined && mergeSlashes === undefined && action === undefined) return undefined;
  const escapedSlashes = action === undefined ? 'KEEP_UNCHANGED' : ESCAPED_SLASHES[String(action)];
  if (escapedSlashes === undefined) {
    throw new MeshConfigError('Listener', VIRTUAL_INBOUND, `${HCM_PATH}.path_with_escaped_slashes_action`, `unknown action ${JSON.stringify(action)}`);
  }
  return { normalizePath: normalizePath ?? false, mergeSlashes: mergeSlashes ?? false, escapedSlashes };
}

/** Checks a snapshot's inbound path settings when it is applied (a bad one is NACKed with the rest). */
export function validateInboundPath(source: InboundPolicySource): void {
  hcmPathNormalization(inboundConnectionManager(inboundListener(source.resources.listeners)));
}

/** The path settings of each snapshot, read once per snapshot. */
export class InboundPathSettings {
  private readonly cache = new WeakMap<InboundPolicySource, PathNormalizationSettings>();

  /** @param fallback the mesh's own setting, for snapshots whose HCM says nothing */
  constructor(readonly fallback: PathNormalizationSettings) {}

  forSnapshot(snapshot: InboundPolicySource): PathNormalizationSettings {
    let settings = this.cache.get(snapshot);
    if (settings === undefined) {
      const listener = inboundListener(snapshot.resources.listeners);
      settings = hcmPathNormalization(inboundConnectionManager(listener)) ?? this.fallback;
      this.cache.set(snapshot, settings);
    }
    return settings;
  }
}
