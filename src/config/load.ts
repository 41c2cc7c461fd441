/**
 * Reads configuration documents from wherever the user keeps them: a file, a
 * directory of YAML/JSON files, a YAML string (multi-document), or objects.
 * Every document read from YAML remembers its file and index
 * ({@link documentSource}) so an error can point at it.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { type ConfigSourceRef, MeshConfigError } from '../errors.js';

/** Where configuration comes from (DESIGN.md §3). */
export type ConfigSource = string | object | object[];

const configExtensions = new Set(['.yaml', '.yml', '.json']);

/**
 * yaml's own guard against alias expansion ("billion laughs"): a document
 * whose aliases expand past this many nodes is refused. 100 is the library's
 * default and more than any Istio YAML uses.
 */
const MAX_ALIAS_COUNT = 100;

const sources = new WeakMap<object, ConfigSourceRef>();

/** The file and document index a loaded document came from (undefined for objects passed in). */
export function documentSource(doc: object): ConfigSourceRef | undefined {
  return sources.get(doc);
}

/** Loads every document of a source, dropping empty ones (`---` separators, comments). */
export async function loadDocuments(source: ConfigSource): Promise<object[]> {
  if (Array.isArray(source)) return source.filter((d) => d != null);
  if (typeof source === 'object' && source !== null) return [source];
  if (typeof source !== 'string') throw new MeshConfigError('Config', '-', 'config', 'must be a path, a YAML string or an array of objects');
  if (looksLikeYaml(source)) return parseYaml(source, '<string>');
  const info = await stat(source).catch(() => undefined);
  if (!info) throw new MeshConfigError('Config', source, 'config', 'no such file or directory');
  if (!info.isDirectory()) return parseYaml(await readConfigFile(source), source);
  const docs: object[] = [];
  for (const path of await listConfigFiles(source)) docs.push(...parseYaml(await readConfigFile(path), path));
  return docs;
}

/**
 * The config files of a directory, sorted by name. Like `kubectl apply -f dir`, a config directory is
 * not read recursively; an entry with a config extension that is not a readable file (a folder named
 * x.yaml, a dangling link) is an error, not something to skip quietly.
 */
export async function listConfigFiles(dir: string): Promise<string[]> {
  const entries = await listConfigEntries(dir);
  const bad = entries.find((e) => e.error);
  if (bad) throw bad.error;
  return entries.map((e) => e.path);
}

/** The config entries of a directory, each a readable file or the error that says why not (see {@link listConfigFiles}). */
export async function listConfigEntries(dir: string): Promise<Array<{ path: string; error?: MeshConfigError }>> {
  const names = (await readdir(dir)).filter((n) => configExtensions.has(extname(n))).sort();
  const out: Array<{ path: string; error?: MeshConfigError }> = [];
  for (const name of names) {
    const path = join(dir, name);
    const entry = await stat(path).catch(() => undefined);
    if (!entry) out.push({ path, error: new MeshConfigError('Config', path, 'config', 'cannot be read: a dangling link or a file removed while reading') });
    else if (!entry.isFile()) out.push({ path, error: new MeshConfigError('Config', path, 'config', 'is a directory, not a YAML file (config directories are not read recursively)') });
    else out.push({ path });
  }
  return out;
}

/** Reads a config file; a failure is a MeshConfigError naming the file. */
export async function readConfigFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new MeshConfigError('Config', path, 'config', `cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Parses a (multi-document) YAML or JSON text; throws the first bad document's error. */
export function parseYaml(text: string, origin: string): object[] {
  const { docs, errors } = parseYamlDocuments(text, origin);
  if (errors.length > 0) throw errors[0];
  return docs;
}

/**
 * Parses a (multi-document) YAML or JSON text document by document: a
 * document that does not parse is an error of its own, its neighbours are
 * still read (the control plane serves them, as kubectl applies them).
 * `firstDocument` numbers the documents of a text that is a slice of a
 * file; `documents` counts the YAML documents read (empty ones included).
 */
export function parseYamlDocuments(text: string, origin: string, firstDocument = 0): { docs: object[]; errors: MeshConfigError[]; documents: number } {
  const docs: object[] = [];
  const errors: MeshConfigError[] = [];
  let index = firstDocument;
  for (const doc of parseAllDocuments(text)) {
    const document = index++;
    if (doc.errors.length > 0) {
      const err = doc.errors[0]!;
      errors.push(new MeshConfigError('Config', origin, `line ${(err.linePos?.[0]?.line ?? 0)}`, err.message.split('\n')[0]!, { file: origin, document }));
      continue;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      // yaml throws ReferenceError for alias bombs and unresolved aliases.
      errors.push(new MeshConfigError('Config', origin, 'document', (err as Error).message, { file: origin, document }));
      continue;
    }
    if (value == null) continue;
    const push = (item: unknown) => {
      // A list item that is not a mapping is still returned, so validation names it; only objects carry a source.
      if (typeof item === 'object' && item !== null) sources.set(item, { file: origin, document });
      docs.push(item as object);
    };
    if (Array.isArray(value)) value.forEach(push);
    else if (typeof value === 'object' && (value as { kind?: unknown }).kind === 'List') {
      const items = (value as { items?: unknown }).items;
      if (items != null && !Array.isArray(items)) errors.push(new MeshConfigError('List', origin, 'items', 'must be a list', { file: origin, document }));
      else (items ?? []).forEach(push);
    } else push(value);
  }
  return { docs, errors, documents: index - firstDocument };
}

function looksLikeYaml(text: string): boolean {
  return text.includes('\n') || /^\s*(apiVersion|kind|---|\{|\[)/.test(text);
}
