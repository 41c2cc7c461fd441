/**
 * Watches the config directory (fs.watch, debounced) and keeps the validated
 * Istio resources it holds, admitted one document at a time as Kubernetes
 * admits them: a bad document (or unreadable file) is rejected alone — the
 * other documents and files keep serving, and the rejected resource keeps its
 * last good version when it had one — and is reported per resource
 * (`statuses`, /debug/config_status). Only a directory that cannot be read
 * at all keeps the whole previous set.
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { MeshConfigError, type ConfigSourceRef } from '../errors.js';
import { listConfigEntries, parseYamlDocuments, readConfigFile } from '../config/load.js';
import { admitResources, rejectedStatus, type ResourceStatus } from '../config/admission.js';
import { meshConfigFromDocuments, type MeshConfigOptions } from '../config/mesh-config.js';
import type { IstioResource } from '../config/istio-types.js';
import { resourceSource } from '../config/resources.js';

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
  /** One status per Istio document of the file (rejected ones included), in order. */
  statuses: ResourceStatus[];
  /** The errors of the rejected documents. */
  errors: MeshConfigError[];
  /** The `istio` ConfigMap's MeshConfig, when this file has a good one. */
  meshConfig: MeshConfigOptions | undefined;
  /** Parsed documents by `<index>\0<text>`, to re-parse only the documents an edit touched. */
  chunks: Map<string, object[]>;
}

/** One read of the directory. */
interface Loaded {
  resources: IstioResource[];
  statuses: ResourceStatus[];
  errors: MeshConfigError[];
  meshConfig: MeshConfigOptions | undefined;
  files: Map<string, ParsedFile>;
}

/** Options of {@link ConfigWatcher}. */
export interface ConfigWatcherOptions {
  dir: string;
  debounceMs: number;
  /** Called after a load produced a new good set. */
  onChange(): void;
  /**
   * Called when a read of the directory is done, before it is published (the
   * debounce may still be running, and a later read may replace it): what a
   * push will then serve unless the directory changes again.
   */
  onRead?(read: { resources: readonly IstioResource[]; meshConfig: MeshConfigOptions | undefined }): void;
  /** Called when the directory cannot be read at all (the previous set stays). */
  onError(problem: ConfigProblem): void;
}

/** The directory's last good resources. */
export class ConfigWatcher {
  /** The resources served: every admitted document, and the last good version of a rejected one. */
  resources: IstioResource[] = [];
  /** One status per Istio document of the directory (see admission.ts). */
  statuses: ResourceStatus[] = [];
  /** The MeshConfig of the `istio` ConfigMap in `istio-system`, when the directory has one (as istiod reads it). */
  meshConfig: MeshConfigOptions | undefined;
  /** The first rejection of the last load (or why the directory could not be read); undefined when all is good. */
  error: ConfigProblem | undefined;
  /** Loads so far (each one admitted what it could). */
  loads = 0;
  /** When the last good set was loaded. */
  loadedAt: string | undefined;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The read in progress; another follows it when `dirty` (a change arrived while reading). */
  private reading: Promise<void> | undefined;
  private dirty = false;
  /** The latest read, not yet published. */
  private pending: Loaded | Error | undefined;
  private closed = false;
  /** Parsed files by path, with the text they were parsed from: the published set's and the latest read's. */
  private files = new Map<string, ParsedFile>();
  private readFiles = new Map<string, ParsedFile>();

  constructor(private readonly options: ConfigWatcherOptions) {}

  /** Loads once, then watches. Throws when the directory does not exist. */
  async start(): Promise<void> {
    const info = await stat(this.options.dir).catch(() => undefined);
    if (!info) throw new MeshConfigError('ControlPlane', this.options.dir, 'config', 'no such file or directory');
    await this.reload();
    this.watcher = watch(this.options.dir, { persistent: false }, () => this.schedule());
    this.watcher.on('error', (err) => this.report(new Error(`watch failed: ${err.message}`)));
  }

  /** Reads the directory now and publishes what it holds (after a read in progress, and the one it queued). */
  reload(): Promise<void> {
    void this.read();
    return this.publish();
  }

  /** Stops watching. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.watcher?.close();
  }

  /**
   * A change is read, parsed and admitted at once, and published (pushed)
   * once the directory has been quiet for the debounce — as istiod's config
   * store takes an event when it comes and its push waits out
   * PILOT_DEBOUNCE_AFTER. Editors write a file in several steps: each step
   * reads again, and only the read after the last one is published.
   */
  private schedule(): void {
    if (this.closed) return;
    void this.read();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.publish(), this.options.debounceMs);
    this.timer.unref();
  }

  /** Reads the directory into `pending` (a read in progress queues one more). */
  private read(): Promise<void> {
    if (this.reading) {
      this.dirty = true;
      return this.reading;
    }
    this.reading = this.loadFiles().then((loaded) => {
      this.pending = loaded;
      if (!this.closed) this.options.onRead?.(loaded);
    }, (err: unknown) => { this.pending = err as Error; }).finally(() => {
      this.reading = undefined;
      if (this.dirty && !this.closed) {
        this.dirty = false;
        void this.read();
      }
    });
    return this.reading;
  }

  /** Waits for the reads in progress, then publishes the latest one. */
  private async publish(): Promise<void> {
    while (this.reading) await this.reading;
    const loaded = this.pending;
    this.pending = undefined;
    if (this.closed || loaded === undefined) return;
    if (loaded instanceof Error) {
      this.report(loaded);
      return;
    }
    this.resources = loaded.resources;
    this.statuses = loaded.statuses;
    this.meshConfig = loaded.meshConfig;
    this.files = loaded.files;
    // Rejections are logged once per resource by the control plane's status log, not per load.
    this.error = loaded.errors.length > 0 ? problemOf(loaded.errors[0]!) : undefined;
    this.loads++;
    this.loadedAt = new Date().toISOString();
    this.options.onChange();
  }

  /**
   * Reads every config file but parses and validates only those whose text
   * changed since the last load: YAML parsing dominates a reload, and an
   * unchanged file keeps its resource objects, which lets the translation and
   * encoding caches recognise them by identity. A rejected document whose
   * kind/namespace/name was served before keeps that version (an update
   * Kubernetes refuses leaves the stored object as it was).
   */
  private async loadFiles(): Promise<Loaded> {
    const dir = this.options.dir;
    const info = await stat(dir);
    const entries = info.isDirectory() ? await listConfigEntries(dir) : [{ path: dir }];
    const texts = await Promise.all(entries.map((e) => (e.error ? Promise.resolve(e.error) : readConfigFile(e.path).catch((err: unknown) => err as MeshConfigError))));
    const previous = this.publishedByKey();
    const files = new Map<string, ParsedFile>();
    const resources: IstioResource[] = [];
    const statuses: ResourceStatus[] = [];
    const errors: MeshConfigError[] = [];
    const seen = new Set<string>();
    let meshConfig = this.meshConfig;
    entries.forEach(({ path }, i) => {
      const text = texts[i]!;
      if (typeof text !== 'string') {
        errors.push(text);
        statuses.push(rejectedStatus({}, text, 'MESHLET_INVALID'));
        return;
      }
      const published = this.files.get(path), read = this.readFiles.get(path);
      let parsed = published?.text === text ? published : read?.text === text ? read : undefined;
      // the chunks of both: a read in the middle of an editor's write holds only part of the file
      parsed ??= keepUnchanged(parseFile(text, path, chunksOf(published, read)), previous);
      files.set(path, parsed);
      if (parsed.meshConfig !== undefined) meshConfig = parsed.meshConfig;
      errors.push(...parsed.errors);
      let admitted = 0;
      for (const status of parsed.statuses) {
        if (status.status === 'rejected') {
          const kept = previous.get(`${status.kind}/${status.namespace}/${status.name}`);
          if (kept && !seen.has(keyOf(kept))) {
            seen.add(keyOf(kept));
            resources.push(kept);
            statuses.push({ ...status, warnings: status.warnings.map((w) => ({ ...w, message: `${w.message} (the last good version keeps serving)` })) });
          } else {
            statuses.push(status);
          }
          continue;
        }
        const r = parsed.resources[admitted++]!;
        const key = keyOf(r);
        if (seen.has(key)) {
          const error = new MeshConfigError(r.kind, `${r.metadata.namespace}/${r.metadata.name}`, 'metadata.name', `duplicate resource: the same kind, namespace and name appear twice (again in ${path})`, status.source);
          errors.push(error);
          statuses.push({ ...rejectedStatus(r, error, 'MESHLET_DUPLICATE'), ...(status.source && { source: status.source }) });
          continue;
        }
        seen.add(key);
        resources.push(r);
        statuses.push(status);
      }
    });
    this.readFiles = files;
    return { resources, statuses, errors, meshConfig, files };
  }

  /** The published resources by kind/namespace/name (once per published set: a change may be read several times). */
  private publishedByKey(): ReadonlyMap<string, IstioResource> {
    if (this.byKey?.resources !== this.resources) this.byKey = { resources: this.resources, map: new Map(this.resources.map((r) => [keyOf(r), r])) };
    return this.byKey.map;
  }

  private byKey: { resources: readonly IstioResource[]; map: ReadonlyMap<string, IstioResource> } | undefined;

  private report(err: Error): void {
    this.error = problemOf(err);
    this.options.onError(this.error);
  }
}

function chunksOf(a: ParsedFile | undefined, b: ParsedFile | undefined): ReadonlyMap<string, object[]> | undefined {
  if (!a || !b || a === b) return (a ?? b)?.chunks;
  return new Map([...a.chunks, ...b.chunks]);
}

function keyOf(r: IstioResource): string {
  return `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`;
}

/**
 * Parses a file document by document, reusing the documents whose text and
 * position did not change (YAML parsing dominates a reload; a one-document
 * edit of a 300-document file re-parses one). A file is cut at its `---`
 * lines; anything that could make the slices read differently from the
 * whole — a directive, a `...` end marker, a slice that is not exactly one
 * document, a syntax error — parses the whole file instead, so documents are
 * numbered and errors located exactly as before.
 */
function parseDocuments(text: string, path: string, previous: ReadonlyMap<string, object[]> | undefined, chunks: Map<string, object[]>): { docs: object[]; errors: MeshConfigError[] } {
  const whole = () => { chunks.clear(); return parseYamlDocuments(text, path); };
  if (/^(%|\.\.\.(\s|$))/m.test(text)) return whole();
  const slices = text.split(/^(?=---(?:[ \t]|$))/m);
  // a preface of comments or blank lines belongs to the first document, as the whole-file parse reads it
  if (slices.length > 1 && slices[0]!.split('\n').every((line) => /^\s*(#.*)?$/.test(line))) slices.splice(0, 2, slices[0]! + slices[1]!);
  const docs: object[] = [];
  for (const [index, slice] of slices.entries()) {
    const key = `${index}\0${slice}`;
    let parsed = previous?.get(key);
    if (!parsed) {
      const result = parseYamlDocuments(slice, path, index);
      if (result.errors.length > 0 || result.documents !== 1) return whole();
      parsed = result.docs;
    }
    chunks.set(key, parsed);
    docs.push(...parsed);
  }
  return { docs, errors: [] };
}

/**
 * A changed file's resources that equal the ones served before (same
 * kind/namespace/name, same place in the same file, same content) are
 * replaced by those: editing one document of a 100-service file then
 * re-translates and re-encodes one service, not a hundred, in every
 * namespace (the caches downstream recognise resources by identity).
 */
function keepUnchanged(parsed: ParsedFile, previous: ReadonlyMap<string, IstioResource>): ParsedFile {
  const resources = parsed.resources.map((r) => {
    const old = previous.get(keyOf(r));
    if (!old || !sameSource(resourceSource(old), resourceSource(r)) || !sameValue(old, r)) return r;
    return old;
  });
  return { ...parsed, resources };
}

function sameSource(a: ConfigSourceRef | undefined, b: ConfigSourceRef | undefined): boolean {
  return a?.file === b?.file && a?.document === b?.document;
}

/** Deep equality of parsed YAML values (plain objects, arrays, scalars). */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k) || !sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

/** Parses and admits one file, document by document; a bad `istio` ConfigMap is a rejection of its own. */
function parseFile(text: string, path: string, previousChunks?: ReadonlyMap<string, object[]>): ParsedFile {
  const chunks = new Map<string, object[]>();
  const { docs, errors: syntax } = parseDocuments(text, path, previousChunks, chunks);
  const admission = admitResources(docs, 'control-plane');
  const statuses = [...syntax.map((e) => rejectedStatus({}, e, 'MESHLET_INVALID')), ...admission.statuses];
  const errors = [...syntax, ...admission.errors];
  let meshConfig: MeshConfigOptions | undefined;
  try {
    meshConfig = meshConfigFromDocuments(docs);
  } catch (err) {
    if (!(err instanceof MeshConfigError)) throw err;
    errors.push(err);
    statuses.push(rejectedStatus({ kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' } }, err, 'MESHLET_INVALID'));
  }
  return { text, resources: admission.resources, statuses, errors, meshConfig, chunks };
}

function problemOf(err: Error): ConfigProblem {
  const problem: ConfigProblem = { message: err.message, at: new Date().toISOString() };
  if (err instanceof MeshConfigError) Object.assign(problem, { kind: err.kind, resource: err.resource, path: err.path, reason: err.reason });
  return problem;
}
