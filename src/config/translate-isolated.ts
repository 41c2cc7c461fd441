/**
 * Translation that one resource cannot take down: when a resource validates
 * but fails to translate (a RateLimit whose fillInterval Envoy refuses, an
 * EnvoyFilter whose typed_config does not decode, a Gateway TLS mode meshlet
 * cannot serve), it is left out, reported, and the rest is translated — as
 * istiod skips a resource it cannot build rather than push an empty config
 * (issue #16: a control plane restarted on one bad file served nothing).
 */
import { MeshConfigError } from '../errors.js';
import type { EnvoyResources } from './envoy.js';
import type { IstioResource } from './istio-types.js';
import { translate, type ProxyInfo, type TranslateCache } from './translate.js';

/** A resource left out of a translation, and why. */
export interface DroppedResource {
  readonly resource: IstioResource;
  readonly error: Error;
}

/** Past this many resources of a kind, an error that names no resource is not searched for by elimination. */
const MAX_ELIMINATION = 64;

/**
 * Translates `resources` for `proxy`, dropping each resource whose
 * translation throws. The culprit is the resource the MeshConfigError names;
 * an error that names none is found by translating without each candidate of
 * the kind it names (bounded). An error no single resource explains throws.
 */
export function translateIsolated(resources: readonly IstioResource[], proxy: ProxyInfo, cache?: TranslateCache): { envoy: EnvoyResources; dropped: DroppedResource[] } {
  let current = resources;
  const dropped: DroppedResource[] = [];
  for (;;) {
    let error: Error;
    try {
      return { envoy: translate(current, proxy, cache), dropped };
    } catch (err) {
      error = err as Error;
    }
    const culprit = named(current, error) ?? eliminate(current, error, proxy);
    if (!culprit) throw error;
    dropped.push({ resource: culprit, error });
    current = current.filter((r) => r !== culprit);
  }
}

/** The resource a MeshConfigError names by kind and `namespace/name`. */
function named(resources: readonly IstioResource[], error: Error): IstioResource | undefined {
  if (!(error instanceof MeshConfigError)) return undefined;
  return resources.find((r) => r.kind === error.kind && `${r.metadata.namespace}/${r.metadata.name}` === error.resource);
}

/** The resource without which this error goes away (of the error's kind when it names one). */
function eliminate(resources: readonly IstioResource[], error: Error, proxy: ProxyInfo): IstioResource | undefined {
  const kind = error instanceof MeshConfigError ? error.kind : undefined;
  const candidates = resources.filter((r) => kind === undefined || r.kind === kind);
  if (candidates.length === 0 || candidates.length > MAX_ELIMINATION) return undefined;
  for (const candidate of candidates) {
    try {
      translate(resources.filter((r) => r !== candidate), proxy);
      return candidate;
    } catch (err) {
      // Another error without it: it caused this one, and a second resource is bad too.
      if ((err as Error).message !== error.message) return candidate;
    }
  }
  return undefined;
}
