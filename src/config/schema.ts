/**
 * A tiny schema language for Istio resources: enough to reject unknown
 * fields and wrong types with the exact JSON path, as istioctl validate does.
 * Semantic checks (weights total 100, durations, …) live with each resource.
 */
import { parseDuration } from '../core/duration.js';

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
  if (value === undefined || value === null) return;
  switch (schema.t) {
    case 'any':
      return;
    case 'string':
      if (typeof value !== 'string') issues.push({ path, reason: `must be a string, got ${typeOf(value)}` });
      else if (schema.values && !schema.values.includes(value)) issues.push({ path, reason: `must be one of ${schema.values.join(', ')}, got "${value}"` });
      return;
    case 'number':
      if (typeof value !== 'number' || Number.isNaN(value)) issues.push({ path, reason: `must be a number, got ${typeOf(value)}` });
      else if (schema.integer && !Number.isInteger(value)) issues.push({ path, reason: `must be an integer, got ${value}` });
      else if (schema.min !== undefined && value < schema.min) issues.push({ path, reason: `must be ≥ ${schema.min}, got ${value}` });
      else if (schema.max !== undefined && value > schema.max) issues.push({ path, reason: `must be ≤ ${schema.max}, got ${value}` });
      return;
    case 'boolean':
      if (typeof value !== 'boolean') issues.push({ path, reason: `must be true or false, got ${typeOf(value)}` });
      return;
    case 'duration': {
      const ms = typeof value === 'string' ? parseDuration(value) : 'must be a duration string such as "2s"';
      if (typeof ms === 'string') issues.push({ path, reason: ms });
      else if (ms < 1) issues.push({ path, reason: `duration must be at least 1ms, got "${String(value)}"` });
      return;
    }
    case 'list':
      if (!Array.isArray(value)) {
        issues.push({ path, reason: `must be a list, got ${typeOf(value)}` });
        return;
      }
      value.forEach((item, i) => check(schema.item, item, `${path}[${i}]`, issues));
      return;
    case 'map':
      if (!isPlainObject(value)) {
        issues.push({ path, reason: `must be a map, got ${typeOf(value)}` });
        return;
      }
      for (const [k, v] of Object.entries(value)) check(schema.value, v, `${path}.${k}`, issues);
      return;
    case 'object': {
      if (!isPlainObject(value)) {
        issues.push({ path, reason: `must be an object, got ${typeOf(value)}` });
        return;
      }
      for (const [k, v] of Object.entries(value)) {
        const field = schema.fields[k];
        if (!field) issues.push({ path: `${path}.${k}`, reason: `unknown field "${k}"` });
        else check(field, v, `${path}.${k}`, issues);
      }
      for (const k of schema.required ?? []) {
        if (value[k] === undefined || value[k] === null || value[k] === '') issues.push({ path: `${path}.${k}`, reason: 'is required' });
      }
      if (schema.oneOf) {
        const set = schema.oneOf.filter((k) => value[k] !== undefined);
        if (set.length > 1) issues.push({ path, reason: `only one of ${schema.oneOf.join(', ')} may be set, got ${set.join(' and ')}` });
      }
      return;
    }
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function typeOf(value: unknown): string {
  return Array.isArray(value) ? 'a list' : typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`;
}
