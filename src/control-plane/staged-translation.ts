/**
 * Translating a config read while its push waits out the debounce. istiod
 * takes a config event into its store when it comes and pushes once the
 * store has been quiet for PILOT_DEBOUNCE_AFTER; meshlet reads and admits a
 * change when it comes too (config-watcher.ts), and here also translates it
 * for every translation key clients use, in the idle debounce window, one
 * key per turn of the event loop, and encodes what is new. The push then
 * finds each key's translation done — the incremental translator returns its
 * last translation when handed the very same resource array, which
 * `combined` makes sure of — and its encodings made (they are kept by object).
 *
 * Nothing here decides what is served: a staged translation is a cache
 * entry. A read that is never published (the file changed again) only costs
 * the work; the push translates whatever it publishes, from whatever the
 * translator last saw, with the same result (translate-incremental.ts).
 */
import type { IstioResource } from '../config/istio-types.js';
import type { MeshConfigOptions } from '../config/mesh-config.js';
import type { ProxyInfo } from '../config/translate.js';
import type { IncrementalTranslator } from '../config/translate-incremental.js';
import type { WorkloadRegistry } from './registry.js';
import type { SnapshotCache } from './snapshot-cache.js';

interface Staged {
  /** The watcher's resources the stage was made from. */
  configured: readonly IstioResource[];
  /** The registry's WorkloadEntries then. */
  registered: readonly IstioResource[];
  /** Both, as one array: the one the staged translations were made with. */
  resources: IstioResource[];
}

/** The translations of the latest read, made before the read is published. */
export class StagedTranslation {
  private staged: Staged | undefined;
  /** Bumped by every stage and by cancel: a stage in progress that sees another number stops. */
  private run = 0;

  constructor(
    private readonly translator: IncrementalTranslator,
    private readonly cache: () => SnapshotCache,
    private readonly registry: WorkloadRegistry,
    private readonly proxyFor: (key: string, meshConfig: MeshConfigOptions) => ProxyInfo,
  ) {}

  /**
   * The array a push translates for the watcher's `configured` resources: the
   * staged one when it was made from exactly these resources and the same
   * registered workloads (so every staged translation is found done), else a new one.
   */
  combined(configured: readonly IstioResource[]): IstioResource[] {
    const registered = this.registry.resources(configured);
    const s = this.staged;
    if (s && s.configured === configured && sameItems(s.registered, registered)) return s.resources;
    return [...configured, ...registered];
  }

  /** Translates `configured` for every key that has a snapshot, one key per turn of the event loop. */
  stage(configured: readonly IstioResource[], meshConfig: MeshConfigOptions): void {
    const run = ++this.run;
    this.staged = undefined;
    let registered: IstioResource[];
    try {
      registered = this.registry.resources(configured);
    } catch {
      return; // the push evaluates the registry itself and reports what fails
    }
    const staged: Staged = { configured, registered, resources: [...configured, ...registered] };
    this.staged = staged;
    const cache = this.cache();
    const keys = [...cache.keys()];
    const next = (i: number): void => {
      if (run !== this.run || i >= keys.length) return;
      try {
        // The translator keeps the result for the push (which finds dropped resources again); its new resources are encoded now.
        const { envoy } = this.translator.translate(keys[i]!, staged.resources, this.proxyFor(keys[i]!, meshConfig), cache.translations);
        cache.prepare(keys[i]!, envoy);
      } catch {
        // Left to the push, which translates the key itself and keeps the last good snapshot if it fails (snapshot-cache.ts).
        return;
      }
      setImmediate(next, i + 1);
    };
    setImmediate(next, 0);
  }

  /** Stops a stage in progress (the control plane is closing). */
  cancel(): void {
    this.run++;
    this.staged = undefined;
  }
}

function sameItems(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
