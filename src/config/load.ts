/**
 * Reads configuration documents from wherever the user keeps them: a file, a
 * directory of YAML/JSON files, a YAML string (multi-document), or objects.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { MeshConfigError } from '../errors.js';

/** Where configuration comes from (DESIGN.md §3). */
export type ConfigSource = string | object | object[];

const configExtensions = new Set(['.yaml', '.yml', '.json']);

/** Loads every document of a source, dropping empty ones (`---` separators, comments). */
export async function loadDocuments(source: ConfigSource): Promise<object[]> {
  if (Array.isArray(source)) return source.filter((d) => d != null);
  if (typeof source === 'object' && source !== null) return [source];
  if (typeof source !== 'string') throw new MeshConfigError('Config', '-', 'config', 'must be a path, a YAML string or an array of objects');
  if (looksLikeYaml(source)) return parseYaml(source, '<string>');
  const info = await stat(source).catch(() => undefined);
  if (!info) throw new MeshConfigError('Config', source, 'config', 'no such file or directory');
  if (!info.isDirectory()) return parseYaml(await readFile(source, 'utf8'), source);
  const names = (await readdir(source)).filter((n) => configExtensions.has(extname(n))).sort();
  const docs: object[] = [];
  for (const name of names) docs.push(...parseYaml(await readFile(join(source, name), 'utf8'), join(source, name)));
  return docs;
}

/** Parses a (multi-document) YAML or JSON text. */
export function parseYaml(text: string, origin: string): object[] {
  const docs: object[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) {
      const err = doc.errors[0]!;
      throw new MeshConfigError('Config', origin, `line ${(err.linePos?.[0]?.line ?? 0)}`, err.message.split('\n')[0]!);
    }
    const value: unknown = doc.toJS();
    if (value == null) continue;
    if (Array.isArray(value)) docs.push(...(value as object[]));
    else if (typeof value === 'object' && (value as { kind?: unknown }).kind === 'List') docs.push(...(((value as { items?: object[] }).items) ?? []));
    else docs.push(value as object);
  }
  return docs;
}

function looksLikeYaml(text: string): boolean {
  return text.includes('\n') || /^\s*(apiVersion|kind|---|\{|\[)/.test(text);
}
