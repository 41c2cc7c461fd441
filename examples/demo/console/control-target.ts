/**
 * Scenario config into the control plane: the YAML is validated with the
 * same translator the control plane runs (so a bad file is refused with a
 * MeshConfigError and nothing is written), written into the control plane's
 * config directory, and the apply resolves once every connected workload
 * has ACKed the push — so the next request already meets the new config.
 */
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ControlPlane } from '../../../src/control-plane/index.js';
import { loadDocuments } from '../../../src/config/load.js';
import { parseResources } from '../../../src/config/resources.js';
import { translate } from '../../../src/config/translate.js';
import type { MeshConfigTarget } from '../client/scenario-switch.js';

/** The file the demo owns in the config directory. */
export const MESH_FILE = 'mesh.yaml';

/** A {@link MeshConfigTarget} writing to a control plane's directory. */
export class ControlPlaneTarget implements MeshConfigTarget {
  constructor(private readonly cp: ControlPlane, private readonly dir: string, private readonly syncTimeoutMs = 5000) {}

  async apply(yaml: string): Promise<void> {
    translate(parseResources(await loadDocuments(yaml)), { name: 'demo', namespace: 'default', labels: {} });
    const file = join(this.dir, MESH_FILE);
    // Written aside and renamed: the watcher never reads half a file (.tmp is not *.yaml).
    await writeFile(`${file}.tmp`, yaml);
    await rename(`${file}.tmp`, file);
    await this.cp.reload();
    const problem = this.cp.status().configError;
    if (problem) throw new Error(`control plane refused the config: ${problem.message}`);
    await this.synced();
  }

  /** Resolves when every connected workload ACKed what it was sent last (bounded). */
  async synced(): Promise<void> {
    const deadline = Date.now() + this.syncTimeoutMs;
    for (;;) {
      const pending = this.cp.syncz().filter((c) => Object.values(c.types).some((t) => t.sent !== undefined && t.acked !== t.sent));
      if (pending.length === 0) return;
      if (Date.now() > deadline) throw new Error(`workloads not in sync after ${this.syncTimeoutMs} ms: ${pending.map((c) => c.node).join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
