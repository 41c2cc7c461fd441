/**
 * Reads rate-limit configuration from wherever it is given — a file, a
 * directory of files, a YAML string, or plain objects — into sourced
 * documents, then compiles them. Several domains: several files, or several
 * YAML documents (`---`) in one file.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { MeshConfigError } from '../errors.js';
import { compileRateLimitConfig, type RateLimitConfig, type RateLimitConfigDocument, type SourcedDocument } from './config.js';

/**
 * Configuration as users give it: a path to a `.yaml` file or a directory of
 * them, a YAML string, one document object, a list of them, or an already
 * compiled {@link RateLimitConfig}.
 */
export type RateLimitConfigInput = string | RateLimitConfigDocument | readonly RateLimitConfigDocument[] | RateLimitConfig;

/**
 * Loads and compiles rate-limit configuration.
 * @throws MeshConfigError for unreadable files, YAML syntax errors and invalid documents.
 */
export function loadRateLimitConfig(input: RateLimitConfigInput): RateLimitConfig {
  if (isCompiled(input)) return input;
  return compileRateLimitConfig(readDocuments(input));
}

/** Turns any accepted input into documents labelled with their source. */
export function readDocuments(input: Exclude<RateLimitConfigInput, RateLimitConfig>): SourcedDocument[] {
  if (typeof input !== 'string') {
    const list = Array.isArray(input) ? input : [input];
    return list.map((document, i) => ({ source: `inline#${i}`, document }));
  }
  if (looksLikePath(input)) {
    if (!existsSync(input)) throw new MeshConfigError('RateLimitConfig', input, '$', 'no such file or directory');
    const files = statSync(input).isDirectory()
      ? readdirSync(input).filter((n) => /\.ya?ml$/i.test(n)).sort().map((n) => join(input, n))
      : [input];
    return files.flatMap((file) => parseYaml(readFileSync(file, 'utf8'), file));
  }
  return parseYaml(input, 'inline');
}

function parseYaml(text: string, source: string): SourcedDocument[] {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) return []; // an empty stream
  const many = docs.length > 1;
  return docs.map((doc, i) => {
    const label = many || source === 'inline' ? `${source}#${i}` : source;
    if (doc.errors.length > 0) {
      throw new MeshConfigError('RateLimitConfig', label, '$', `YAML syntax error: ${doc.errors[0]!.message}`);
    }
    return { source: label, document: doc.toJS() as unknown };
  });
}

/** A single-line string without a YAML `key:` is a path; anything with a newline or `: ` is YAML. */
function looksLikePath(text: string): boolean {
  if (text.includes('\n')) return false;
  if (existsSync(text)) return true;
  return !/:\s|^\s*\{/.test(text);
}

function isCompiled(input: RateLimitConfigInput): input is RateLimitConfig {
  return typeof input === 'object' && input !== null && !Array.isArray(input) && (input as RateLimitConfig).domains instanceof Map;
}
