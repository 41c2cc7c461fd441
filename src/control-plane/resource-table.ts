import type { EncodedResource } from './encoding-cache.js';

/**
 * One type's resources of a snapshot: names and encodings aligned with the
 * translation's array, and a name → index map. A patched translation keeps
 * unchanged resources at their index, so the next snapshot copies the two
 * arrays natively, fixes the few entries that changed, and shares the index
 * while no name moved — a push costs the changed resources, not a rebuilt
 * map of every cluster in each namespace.
 */
export class ResourceTable implements Iterable<[string, EncodedResource]> {
  constructor(readonly names: readonly string[], readonly encodings: readonly EncodedResource[], private readonly index: ReadonlyMap<string, number> = indexOf(names)) {}

  /** A table with entries `at` replaced; the index is shared when no name changed. */
  with(at: readonly number[], names: string[], encodings: EncodedResource[]): ResourceTable {
    const renamed = at.some((i) => names[i] !== this.names[i]);
    return new ResourceTable(names, encodings, renamed ? undefined : this.index);
  }

  /** Distinct names (the last resource of a repeated name wins, as in a Map). */
  get size(): number {
    return this.index.size;
  }

  get(name: string): EncodedResource | undefined {
    const i = this.index.get(name);
    return i === undefined ? undefined : this.encodings[i];
  }

  has(name: string): boolean {
    return this.index.has(name);
  }

  *[Symbol.iterator](): IterableIterator<[string, EncodedResource]> {
    for (const [name, i] of this.index) yield [name, this.encodings[i]!];
  }

  /** Whether both tables hold the same encodings under the same names. */
  sameAs(other: ResourceTable): boolean {
    if (other.size !== this.size) return false;
    for (const [name, i] of this.index) if (other.get(name) !== this.encodings[i]) return false;
    return true;
  }
}

function indexOf(names: readonly string[]): Map<string, number> {
  const index = new Map<string, number>();
  for (let i = 0; i < names.length; i++) index.set(names[i]!, i);
  return index;
}
