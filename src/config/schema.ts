/**
 * A tiny schema language for Istio resources: enough to reject unknown
 * fields and wrong types with the exact JSON path, as istioctl validate does.
 * Semantic checks (weights total 100, durations, …) live with each resource.
 */
import { MAX_DURATION_MS, parseDuration } from '../core/duration.js';
import { SliceBudget, type Sliced } from '../core/slices.js';

/** One validation problem: where and why. */
export interface ConfigIssue {
  path: string;
  reason: string;
}

export type Schema =
  | { t: 'string'; values?: readonly string[] }
  | { t: 'number'; integer?: boolean; min?: number; max?: number }
  | { t: 'boolean' }
  | { t: 'duration' }
  | { t: 'list'; item: Schema }
  | { t: 'map'; value: Schema }
  | { t: 'object'; fields: Record<string, Schema>; required?: readonly string[]; oneOf?: readonly string[] }
  | { t: 'any' };

export const str = (values?: readonly string[]): Schema => (values ? { t: 'string', values } : { t: 'string' });
export const int = (min = 0, max?: number): Schema => (max === undefined ? { t: 'number', integer: true, min } : { t: 'number', integer: true, min, max });
export const num = (min?: number, max?: number): Schema => ({ t: 'number', ...(min !== undefined && { min }), ...(max !== undefined && { max }) });
export const bool: Schema = { t: 'boolean' };
export const duration: Schema = { t: 'duration' };
export const any: Schema = { t: 'any' };
export const list = (item: Schema): Schema => ({ t: 'list', item });
export const map = (value: Schema): Schema => ({ t: 'map', value });
export const obj = (fields: Record<string, Schema>, opts: { required?: readonly string[]; oneOf?: readonly string[] } = {}): Schema => ({ t: 'object', fields, ...opts });

/** Validates `value` against `schema`, appending every problem to `issues`. */
export function check(schema: Schema, value: unknown, path: string, issues: ConfigIssue[]): void {
  checkAt(schema, value, { root: path, segments: [], issues });
}

/**
 * Where the walk is: the path as a stack of segments (field names, list
 * indices), formatted only when a problem is reported. Every document passes
 * through here field by field, so building a path string per field dominated.
 */
interface Walk {
  readonly root: string;
  readonly segments: Array<string | number>;
  readonly issues: ConfigIssue[];
}

function pathOf(walk: Walk, extra?: string): string {
  let path = walk.root;
  for (const s of walk.segments) path += typeof s === 'number' ? `[${s}]` : `.${s}`;
  return extra === undefined ? path : `${path}.${extra}`;
}

function report(walk: Walk, reason: string, field?: string): void {
  walk.issues.push({ path: pathOf(walk, field), reason });
}

function checkAt(schema: Schema, value: unknown, walk: Walk): void {
  if (value === undefined || value === null) return;
  switch (schema.t) {
    case 'any':
      return;
    case 'string':
      if (typeof value !== 'string') report(walk, `must be a string, got ${typeOf(value)}`);
      else if (schema.values && !schema.values.includes(value)) report(walk, `must be one of ${schema.values.join(', ')}, got "${value}"`);
      return;
    case 'number':
      if (typeof value !== 'number' || Number.isNaN(value)) report(walk, `must be a number, got ${typeOf(value)}`);
      else if (schema.integer && !Number.isInteger(value)) report(walk, `must be an integer, got ${value}`);
      else if (schema.min !== undefined && value < schema.min) report(walk, `must be ≥ ${schema.min}, got ${value}`);
      else if (schema.max !== undefined && value > schema.max) report(walk, `must be ≤ ${schema.max}, got ${value}`);
      return;
    case 'boolean':
      if (typeof value !== 'boolean') report(walk, `must be true or false, got ${typeOf(value)}`);
      return;
    case 'duration': {
      const ms = typeof value === 'string' ? parseDuration(value) : 'must be a duration string such as "2s"';
      if (typeof ms === 'string') report(walk, ms);
      else if (ms < 1) report(walk, `duration must be at least 1ms, got "${String(value)}"`);
      else if (ms > MAX_DURATION_MS) report(walk, `duration "${String(value)}" is out of range (Istio parses durations as Go's time.Duration, at most ~2562047h)`);
      return;
    }
    case 'list':
      if (!Array.isArray(value)) {
        report(walk, `must be a list, got ${typeOf(value)}`);
        return;
      }
      for (let i = 0; i < value.length; i++) checkItem(schema.item, value, i, walk);
      return;
    case 'map': {
      if (!isPlainObject(value)) {
        report(walk, `must be a map, got ${typeOf(value)}`);
        return;
      }
      // Indexed loops over Object.keys: several times faster than Object.entries in code that runs cold.
      const keys = Object.keys(value);
      for (let i = 0; i < keys.length; i++) {
        walk.segments.push(keys[i]!);
        if (value[keys[i]!] === null && schema.value.t !== 'any') report(walk, 'must not be null');
        else checkAt(schema.value, value[keys[i]!], walk);
        walk.segments.pop();
      }
      return;
    }
    case 'object':
      if (!isPlainObject(value)) {
        report(walk, `must be an object, got ${typeOf(value)}`);
        return;
      }
      checkFields(schema, value, walk);
      checkObjectRules(schema, value, walk);
      return;
  }
}

/** Item `i` of a list. A null field reads as unset (as Kubernetes prunes it), but a null list item is no value at all. */
function checkItem(item: Schema, list: readonly unknown[], i: number, walk: Walk): void {
  walk.segments.push(i);
  if (list[i] === null || list[i] === undefined) report(walk, 'must not be null');
  else checkAt(item, list[i], walk);
  walk.segments.pop();
}

type ObjectSchema = Extract<Schema, { t: 'object' }>;

/** An object's fields in key order: unknown ones reported, known ones checked. */
function checkFields(schema: ObjectSchema, value: Record<string, unknown>, walk: Walk): void {
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) checkField(schema, value, keys[i]!, walk);
}

function checkField(schema: ObjectSchema, value: Record<string, unknown>, k: string, walk: Walk): void {
  const field = schema.fields[k];
  if (!field) return report(walk, `unknown field "${k}"`, k);
  walk.segments.push(k);
  checkAt(field, value[k], walk);
  walk.segments.pop();
}

/** An object's required and oneOf rules, after its fields. */
function checkObjectRules(schema: ObjectSchema, value: Record<string, unknown>, walk: Walk): void {
  if (schema.required) {
    for (const k of schema.required) {
      if (value[k] === undefined || value[k] === null || value[k] === '') report(walk, 'is required', k);
    }
  }
  if (schema.oneOf) {
    const set = schema.oneOf.filter((k) => value[k] !== undefined);
    if (set.length > 1) report(walk, `only one of ${schema.oneOf.join(', ')} may be set, got ${set.join(' and ')}`);
  }
}

/**
 * {@link check} in slices: the same problems in the same order, but the
 * items of a top-level list (a ServiceEntry's endpoints) are checked a slice
 * at a time, so a 20,000-endpoint document does not hold the event loop.
 */
export function* checkSliced(schema: Schema, value: unknown, path: string, issues: ConfigIssue[], budget: SliceBudget = new SliceBudget()): Sliced<void> {
  const walk: Walk = { root: path, segments: [], issues };
  if (schema.t !== 'object' || !isPlainObject(value)) return checkAt(schema, value, walk);
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const field = schema.fields[k];
    const v = value[k];
    if (field?.t !== 'list' || !Array.isArray(v) || v.length < budget.size) {
      checkField(schema, value, k, walk);
      continue;
    }
    walk.segments.push(k);
    for (let j = 0; j < v.length; j++) {
      checkItem(field.item, v, j, walk);
      if (budget.spend()) yield;
    }
    walk.segments.pop();
  }
  checkObjectRules(schema, value, walk);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function typeOf(value: unknown): string {
  return Array.isArray(value) ? 'a list' : typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`;
}
