/**
 * The last-known-good file: every set the consumer accepted is written to
 * disk (atomically: temp file + rename), so a workload can start on it while
 * the control plane is down.
 */
import { readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import type { EnvoyResources } from '../config/envoy.js';

/** What the file holds. */
export interface LastKnownGood {
  version: string;
  savedAt: string;
  resources: EnvoyResources;
}

/** Reads the file; undefined when it is missing or unreadable (a bad file must not stop startup). */
export function readLastKnownGood(path: string): LastKnownGood | undefined {
  try {
    const doc = JSON.parse(readFileSync(path, 'utf8')) as LastKnownGood;
    const r = doc.resources;
    if (!r || !Array.isArray(r.listeners) || !Array.isArray(r.routes) || !Array.isArray(r.clusters) || !Array.isArray(r.endpoints)) return undefined;
    return doc;
  } catch {
    return undefined;
  }
}

/** Serialises writes to one path so an older set never overwrites a newer one. */
export class LastKnownGoodWriter {
  private chain: Promise<void> = Promise.resolve();
  private seq = 0;

  constructor(private readonly path: string, private readonly onError: (err: Error) => void) {}

  /** Queues a write of `resources` at `version`. */
  save(resources: EnvoyResources, version: string): void {
    const body = JSON.stringify({ version, savedAt: new Date().toISOString(), resources } satisfies LastKnownGood);
    const tmp = `${this.path}.${process.pid}.${++this.seq}.tmp`;
    this.chain = this.chain
      .then(async () => {
        await writeFile(tmp, body);
        await rename(tmp, this.path);
      })
      .catch((err: Error) => this.onError(err));
  }

  /** Resolves when every queued write finished. */
  flush(): Promise<void> {
    return this.chain;
  }
}
