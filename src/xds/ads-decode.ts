/**
 * Decoding one ADS response for the client (ads-client.ts): resources a
 * slice at a time, the same bytes as the accepted copy kept as the same
 * object, names checked against what was asked for.
 */
import type { AdsUpdate, WireState } from './ads-wire.js';
import { checkResourceSliced, decodeResourceSliced, resourceName } from './resources.js';
import { peekName } from './decode-sliced.js';
import { isHostPortName } from '../core/listener-role.js';
import { SliceBudget, type Sliced } from '../core/slices.js';

/** One xDS type's subscription and accepted resources. */
export interface TypeState extends WireState {
  resources: Map<string, Record<string, unknown>>;
  /** the wire bytes each accepted resource was decoded from: the same bytes again keep the same object */
  raw: Map<string, Uint8Array>;
}

/** A decoded response. */
export interface Decoded {
  resources: Map<string, Record<string, unknown>>;
  versions: Map<string, string>;
  raw: Map<string, Uint8Array>;
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && a.length === b.length && Buffer.compare(a, b) === 0;
}

/**
 * Decodes and checks a response's resources, in slices of endpoints. A
 * resource whose bytes equal the accepted one's keeps its object (not
 * decoded again), so the compile reuses the cluster built from it.
 */
export function* decodeUpdate(state: TypeState, res: AdsUpdate): Sliced<Decoded | string> {
  const out = new Map<string, Record<string, unknown>>();
  const versions = new Map<string, string>();
  const raw = new Map<string, Uint8Array>();
  const budget = new SliceBudget();
  for (let i = 0; i < res.resources.length; i++) {
    const { any, version } = res.resources[i]!;
    const bytes = !('@type' in any) && any.type_url === state.type.typeUrl ? any.value : undefined;
    const known = bytes !== undefined ? peekName(bytes) : undefined;
    const same = bytes !== undefined && known ? (sameBytes(state.raw.get(known), bytes) ? state.resources.get(known) : undefined) : undefined;
    let resource: Record<string, unknown>;
    if (same) resource = same;
    else {
      try {
        resource = yield* decodeResourceSliced(state.type, any, budget);
      } catch (err) {
        return `${state.type.kind} resources[${i}]: cannot decode: ${(err as Error).message}`;
      }
    }
    const name = resourceName(state.type, resource);
    if (!same) {
      const problem = yield* checkResourceSliced(state.type, name, resource, budget);
      if (problem) return problem;
    }
    if (out.has(name)) return `${state.type.kind} ${name}: duplicate resource name in one response`;
    // Named subscriptions: ignore what we did not ask for (a server may send more).
    if (!state.wildcard && !asked(state, name)) continue;
    out.set(name, resource);
    if (bytes) raw.set(name, bytes);
    if (version !== undefined) versions.set(name, version);
  }
  return { resources: out, versions, raw };
}

/** Whether a named subscription covers `name`; a bare host asks istiod for `host:<every port>` (grpcgen/lds.go). */
function asked(state: TypeState, name: string): boolean {
  if (state.names.has(name)) return true;
  return state.type.key === 'listeners' && isHostPortName(name) && state.names.has(name.slice(0, name.lastIndexOf(':')));
}
