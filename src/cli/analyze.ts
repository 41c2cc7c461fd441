/**
 * `meshlet analyze <files|dirs> [-o json|yaml]`: istioctl analyze for
 * meshlet. Per resource: applied, partial (warnings name what meshlet does
 * not apply) or rejected (errors), then cross-resource checks with Istio's
 * analyzer codes (analyze-checks.ts). Exits 1 when there is an error.
 */
import { stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { admitResources, type ResourceStatus } from '../config/admission.js';
import type { IstioResource } from '../config/istio-types.js';
import { listConfigEntries, parseYamlDocuments, readConfigFile } from '../config/load.js';
import { isPlainObject } from '../config/schema.js';
import { translateIsolated } from '../config/translate-isolated.js';
import { withDropped } from '../config/config-status.js';
import { MeshConfigError } from '../errors.js';
import { crossResourceChecks, originOf, type AnalysisMessage, type AnalyzedDoc } from './analyze-checks.js';

/** What `meshlet analyze` found. */
export interface AnalysisReport {
  /** One status per Istio resource (as mesh.configStatus()). */
  readonly resources: ResourceStatus[];
  /** Errors and warnings, istioctl style: per-resource ones first, then cross-resource checks. */
  readonly messages: AnalysisMessage[];
}

/** Analyzes files and directories (directories: their top-level *.yaml, *.yml, *.json). */
export async function analyze(paths: readonly string[]): Promise<AnalysisReport> {
  const docs: object[] = [];
  const unreadable: MeshConfigError[] = [];
  for (const path of paths) {
    const info = await stat(path).catch(() => undefined);
    if (!info) { unreadable.push(new MeshConfigError('Config', path, 'config', 'no such file or directory')); continue; }
    const entries = info.isDirectory() ? await listConfigEntries(path) : [{ path }];
    for (const entry of entries) {
      if (entry.error) { unreadable.push(entry.error); continue; }
      try {
        const parsed = parseYamlDocuments(await readConfigFile(entry.path), entry.path);
        docs.push(...parsed.docs);
        unreadable.push(...parsed.errors);
      } catch (err) {
        if (!(err instanceof MeshConfigError)) throw err;
        unreadable.push(err);
      }
    }
  }
  const admission = admitResources(docs, 'analyze');
  const statuses = withDropped(admission.statuses, translationFailures(admission.resources));
  const messages: AnalysisMessage[] = unreadable.map((e) => ({ code: 'IST0106', type: 'SchemaValidationError', level: 'Error', origin: `Config ${e.resource}`, message: e.message, analyzer: 'schema.ValidationAnalyzer' }));
  const written = writtenNamespaces(docs);
  for (const s of statuses) {
    const origin = originOf({ kind: s.kind, name: s.name, writtenNamespace: written.get(`${s.kind}/${s.namespace}/${s.name}`) });
    for (const w of s.warnings) {
      const schema = w.code === 'MESHLET_INVALID';
      messages.push({
        code: schema ? 'IST0106' : w.code,
        type: schema ? 'SchemaValidationError' : w.code,
        level: s.status === 'rejected' && w.code !== 'MESHLET_UNSUPPORTED_FIELD' && w.code !== 'MESHLET_UNSUPPORTED_VALUE' ? 'Error' : 'Warning',
        origin,
        message: `${w.path ? `${w.path}: ` : ''}${w.message}`,
        analyzer: schema ? 'schema.ValidationAnalyzer' : 'meshlet',
      });
    }
  }
  messages.push(...crossResourceChecks(analyzedDocs(docs)));
  return { resources: statuses, messages };
}

/** Resources that validate but fail translation, for a workload in each namespace and each gateway. */
function translationFailures(resources: readonly IstioResource[]) {
  const proxies = new Map<string, { name: string; namespace: string; labels: Record<string, string> }>();
  for (const r of resources) {
    proxies.set(r.metadata.namespace, { name: 'analyze', namespace: r.metadata.namespace, labels: {} });
    const selector = r.kind === 'Gateway' ? (r.spec as { selector?: Record<string, string> }).selector : undefined;
    if (selector) proxies.set(`${r.metadata.namespace}\0${JSON.stringify(selector)}`, { name: 'analyze-gateway', namespace: r.metadata.namespace, labels: selector });
  }
  const dropped = new Map<IstioResource, { resource: IstioResource; error: Error }>();
  for (const proxy of proxies.values()) {
    for (const d of translateIsolated(resources, proxy).dropped) if (!dropped.has(d.resource)) dropped.set(d.resource, d);
  }
  return [...dropped.values()];
}

/** kind/namespace/name → the namespace as written in the YAML (istioctl's origins omit an unwritten one). */
function writtenNamespaces(docs: readonly object[]): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  for (const d of docs) {
    const m = isPlainObject(d) && isPlainObject(d.metadata) ? d.metadata : undefined;
    if (!m || typeof m.name !== 'string') continue;
    const ns = typeof m.namespace === 'string' ? m.namespace : undefined;
    out.set(`${String((d as { kind?: unknown }).kind)}/${ns ?? 'default'}/${m.name}`, ns);
  }
  return out;
}

/** Every named document (Istio kinds meshlet refuses, such as Sidecar, and Kubernetes Services too) for the cross checks. */
function analyzedDocs(docs: readonly object[]): AnalyzedDoc[] {
  const out: AnalyzedDoc[] = [];
  for (const d of docs) {
    if (!isPlainObject(d) || !isPlainObject(d.metadata) || typeof d.metadata.name !== 'string' || typeof d.kind !== 'string') continue;
    const writtenNamespace = typeof d.metadata.namespace === 'string' ? d.metadata.namespace : undefined;
    out.push({ kind: d.kind, name: d.metadata.name, writtenNamespace, namespace: writtenNamespace ?? 'default', spec: isPlainObject(d.spec) ? d.spec : {}, ...(isPlainObject(d.metadata.annotations) && { annotations: d.metadata.annotations }) });
  }
  return out;
}

/** The text report: one line per resource, then one per message. */
export function formatReport(report: AnalysisReport): string {
  const lines = report.resources.map((s) => `${s.status.padEnd(8)} ${s.kind} ${s.namespace ? `${s.namespace}/` : ''}${s.name}${s.source ? `  (${s.source.file}, document ${s.source.document})` : ''}`);
  if (report.messages.length === 0) lines.push('', '✔ No validation issues found.');
  else lines.push('', ...report.messages.map((m) => `${m.level} [${m.code}] (${m.origin}) ${m.message}`));
  return lines.join('\n');
}

/** The CLI: prints the report, returns the exit code (1 on errors, 2 on usage). */
export async function runAnalyze(args: readonly string[], io: { out(s: string): void; err(s: string): void }): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...args], allowPositionals: true, options: { output: { type: 'string', short: 'o', default: 'text' } } });
  if (positionals.length === 0 || !['text', 'json', 'yaml'].includes(values.output)) {
    io.err('usage: meshlet analyze <files|dirs…> [-o json|yaml]');
    return 2;
  }
  const report = await analyze(positionals);
  io.out(values.output === 'json' ? JSON.stringify(report, null, 2) : values.output === 'yaml' ? stringify(report) : formatReport(report));
  return report.messages.some((m) => m.level === 'Error') ? 1 : 0;
}
