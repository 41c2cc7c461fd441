/**
 * The config status a mesh (or control plane) keeps for the config in force:
 * one {@link ResourceStatus} per Istio resource, and each warning logged once
 * (a config re-applied with the same unsupported field does not log it again).
 */
import type { ResourceStatus } from './admission.js';
import type { DroppedResource } from './translate-isolated.js';
import { MeshConfigError } from '../errors.js';
import { resourceSource } from './resources.js';

/** Where warnings go: a logger, or console.warn. `status` says whether the resource was rejected or partial. */
export type WarningSink = (message: string, status: ResourceStatus['status']) => void;

/**
 * Keeps the statuses in force and logs each warning when it appears: a
 * warning already in force is not logged again when the same config is
 * re-applied; one that went away and came back is.
 */
export class ConfigStatusLog {
  private statuses: readonly ResourceStatus[] = [];
  private inForce = new Set<string>();

  constructor(private readonly sink: WarningSink = (m) => console.warn(m)) {}

  /** The statuses in force (copies: callers may keep or change them). */
  list(): ResourceStatus[] {
    return this.statuses.map((s) => ({ ...s, warnings: s.warnings.map((w) => ({ ...w })) }));
  }

  /** Replaces the statuses in force and logs every warning that was not in force. */
  update(statuses: readonly ResourceStatus[]): void {
    this.statuses = statuses;
    const next = new Set<string>();
    for (const s of statuses) {
      if (s.warnings.length === 0) continue; // most of thousands: no lines, no array per push
      for (const line of warningLines([s])) {
        next.add(line);
        if (!this.inForce.has(line)) this.sink(line, s.status);
      }
    }
    this.inForce = next;
  }
}

/** One line per warning: `meshlet: <status> Kind ns/name: path: CODE: message (file, document n)`. */
export function warningLines(statuses: readonly ResourceStatus[]): string[] {
  const lines: string[] = [];
  for (const s of statuses) {
    const where = s.source ? ` (${s.source.file}, document ${s.source.document})` : '';
    const id = s.namespace ? `${s.namespace}/${s.name}` : s.name;
    for (const w of s.warnings) lines.push(`meshlet: ${s.status} ${s.kind} ${id}: ${w.path || '(resource)'}: ${w.code}: ${w.message}${where}`);
  }
  return lines;
}

/**
 * Statuses with the resources a translation left out marked `rejected`
 * (MESHLET_TRANSLATION_FAILED), `scope` saying for whom (`for namespace shop`).
 */
export function withDropped(statuses: readonly ResourceStatus[], dropped: readonly DroppedResource[], scope = ''): ResourceStatus[] {
  if (dropped.length === 0) return [...statuses];
  const byKey = new Map(dropped.map((d) => [`${d.resource.kind}/${d.resource.metadata.namespace}/${d.resource.metadata.name}`, d]));
  return statuses.map((s) => {
    const d = s.status === 'rejected' ? undefined : byKey.get(`${s.kind}/${s.namespace}/${s.name}`);
    if (!d) return s;
    const path = d.error instanceof MeshConfigError ? d.error.path : '';
    const reason = d.error instanceof MeshConfigError ? d.error.reason : d.error.message;
    const source = s.source ?? resourceSource(d.resource);
    return {
      ...s,
      ...(source && { source }),
      status: 'rejected',
      warnings: [...s.warnings, { path, code: 'MESHLET_TRANSLATION_FAILED', message: `left out of the translation${scope ? ` ${scope}` : ''}, the rest is served: ${reason}` }],
    };
  });
}
