/**
 * Watches the config directory (fs.watch, debounced) and keeps the last good
 * set of validated Istio resources. A directory that stops validating keeps
 * the previous set serving; the error is logged and kept for /debug/status.
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { MeshConfigError } from '../errors.js';
import { listConfigFiles, parseYaml, readConfigFile } from '../config/load.js';
import { parseResources } from '../config/resources.js';
import { meshConfigFromDocuments, type MeshConfigOptions } from '../config/mesh-config.js';
import type { IstioResource } from '../config/istio-types.js';

/** A config problem, as /debug/status shows it. */
export interface ConfigProblem {
  message: string;
  kind?: string;
  resource?: string;
  path?: string;
  reason?: string;
  at: string;
}

interface ParsedFile {
  text: string;
  resources: IstioResource[];
  /** The `istio` ConfigMap's MeshConfig, when this file has it. */
  meshConfig: MeshConfigOptions | undefined;
}

/** Options of {@link ConfigWatcher}. */
export interface ConfigWatcherOptions {
  dir: string;
  debounceMs: number;
  /** Called after a load produced a new good set. */
  onChange(): void;
  /** Called for a load error (the previous set stays). */
  onError(problem: ConfigProblem): void;
}

/** The directory's last good resources. */
export class ConfigWatcher {
  /** Last good resources (empty until a load succeeds). */
  resources: IstioResource[] = [];
  /** The MeshConfig of the `istio` ConfigMap in `istio-system`, when the directory has one (as istiod reads it). */
  meshConfig: MeshConfigOptions | undefined;
  /** The last load error; cleared by the next good load. */
  error: ConfigProblem | undefined;
  /** Successful loads so far. */
  loads = 0;
  /** When the last good set was loaded. */
  loadedAt: string | undefined;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private loading: Promise<void> | undefined;
  private dirty = false;
  private closed = false;
  /** Parsed files by path, with the text they were parsed from. */
  private files = new Map<string, ParsedFile>();

  constructor(private readonly options: ConfigWatcherOptions) {}

  /** Loads once, then watches. Throws when the directory does not exist. */
  async start(): Promise<void> {
    const info = await stat(this.options.dir).catch(() => undefined);
    if (!info) throw new MeshConfigError('ControlPlane', this.options.dir, 'config', 'no such file or directory');
    await this.reload();
    this.watcher = watch(this.options.dir, { persistent: false }, () => this.schedule());
    this.watcher.on('error', (err) => this.report(new Error(`watch failed: ${err.message}`)));
  }

  /** Reloads now (coalescing with a load in progress). */
  reload(): Promise<void> {
    if (this.loading) {
      this.dirty = true;
      return this.loading;
    }
    this.loading = this.load().finally(() => {
      this.loading = undefined;
      if (this.dirty && !this.closed) {
        this.dirty = false;
        void this.reload();
      }
    });
    return this.loading;
  }

  /** Stops watching. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.watcher?.close();
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    // editors write a file in several steps; one reload for the burst
    this.timer = setTimeout(() => void this.reload(), this.options.debounceMs);
    this.timer.unref();
  }

  private async load(): Promise<void> {
    let resources: IstioResource[];
    try {
      resources = await this.loadFiles();
    } catch (err) {
      this.report(err as Error);
      return;
    }
    if (this.closed) return;
    this.resources = resources;
    this.error = undefined;
    this.loads++;
    this.loadedAt = new Date().toISOString();
    this.options.onChange();
  }

  /**
   * Reads every config file but parses and validates only those whose text
   * changed since the last load: YAML parsing dominates a reload, and an
   * unchanged file keeps its resource objects, which lets the translation and
   * encoding caches recognise them by identity.
   */
  private async loadFiles(): Promise<IstioResource[]> {
    const dir = this.options.dir;
    const info = await stat(dir);
    const paths = info.isDirectory() ? await listConfigFiles(dir) : [dir];
    const texts = await Promise.all(paths.map(readConfigFile));
    const files = new Map<string, ParsedFile>();
    const out: IstioResource[] = [];
    const seen = new Set<string>();
    let meshConfig: MeshConfigOptions | undefined;
    paths.forEach((path, i) => {
      const text = texts[i]!;
      let parsed = this.files.get(path);
      if (parsed?.text !== text) {
        const docs = parseYaml(text, path);
        parsed = { text, resources: parseResources(docs), meshConfig: meshConfigFromDocuments(docs) };
      }
      files.set(path, parsed);
      if (parsed.meshConfig !== undefined) meshConfig = parsed.meshConfig;
      for (const r of parsed.resources) {
        const key = `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`;
        if (seen.has(key)) throw new MeshConfigError(r.kind, `${r.metadata.namespace}/${r.metadata.name}`, 'metadata.name', `duplicate resource: the same kind, namespace and name appear twice (again in ${path})`);
        seen.add(key);
        out.push(r);
      }
    });
    // only a fully good load replaces the parse cache
    this.files = files;
    this.meshConfig = meshConfig;
    return out;
  }

  private report(err: Error): void {
    const problem: ConfigProblem = { message: err.message, at: new Date().toISOString() };
    if (err instanceof MeshConfigError) Object.assign(problem, { kind: err.kind, resource: err.resource, path: err.path, reason: err.reason });
    this.error = problem;
    this.options.onError(problem);
  }
}
