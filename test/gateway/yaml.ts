/** Parses a multi-document YAML string into plain objects (test input for the translator). */
import { parseAllDocuments } from 'yaml';

export function parseYaml(text: string): object[] {
  return parseAllDocuments(text).map((d) => d.toJS() as object).filter((d) => d != null);
}
