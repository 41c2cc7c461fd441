/**
 * The envoyproxy/ratelimit descriptor configuration: validation of its YAML
 * documents and compilation into an immutable descriptor tree per domain.
 *
 * ```yaml
 * domain: pets
 * descriptors:
 *   - key: generic_key
 *     value: gateway
 *     rate_limit: { unit: minute, requests_per_unit: 5 }
 *     shadow_mode: false
 *     descriptors: [ ... ]        # nested: matched against the next request entry
 * ```
 *
 * Validation follows envoyproxy/ratelimit (unknown fields, bad units, duplicate
 * keys and duplicate domains are errors), and every error names the source
 * document and the JSON path of the bad field.
 */
import { MeshConfigError } from '../errors.js';

/** Units of a rate limit, as `RateLimitResponse.RateLimit.Unit` names them. */
export type RateLimitUnit = 'SECOND' | 'MINUTE' | 'HOUR' | 'DAY' | 'MONTH' | 'YEAR';

/** Window length of each unit in seconds (envoyproxy/ratelimit's `UnitToDivider`). */
export const UNIT_SECONDS: Readonly<Record<RateLimitUnit, number>> = {
  SECOND: 1, MINUTE: 60, HOUR: 3600, DAY: 86_400, MONTH: 2_592_000, YEAR: 31_536_000,
};

/** One configuration document as written in YAML (snake_case, as envoyproxy/ratelimit). */
export interface RateLimitConfigDocument {
  domain: string;
  descriptors?: RateLimitDescriptorConfig[];
}

/** A descriptor rule in a configuration document. */
export interface RateLimitDescriptorConfig {
  key: string;
  /** Exact value, or a prefix ending in `*`; absent = the default for every value of `key`. */
  value?: string;
  rate_limit?: {
    unit?: string;
    requests_per_unit?: number;
    unlimited?: boolean;
    name?: string;
    replaces?: Array<{ name: string }>;
  };
  shadow_mode?: boolean;
  detailed_metric?: boolean;
  value_to_metric?: boolean;
  descriptors?: RateLimitDescriptorConfig[];
}

/** A compiled limit: what a matching request descriptor is counted against. */
export interface RateLimitPolicy {
  readonly requestsPerUnit: number;
  readonly unit: RateLimitUnit;
  /** Window length in seconds. */
  readonly unitSeconds: number;
  /** `domain.key_value.key_value`: the rule's identity, for logs and stats. */
  readonly fullKey: string;
  readonly name: string | undefined;
  /** Matches are answered OK without counting. */
  readonly unlimited: boolean;
  /** Counted, but never answered OVER_LIMIT. */
  readonly shadowMode: boolean;
  /** Names of other limits this one replaces when both match in one request. */
  readonly replaces: readonly string[];
}

/** A node of the compiled descriptor tree. */
export interface DescriptorNode {
  readonly limit: RateLimitPolicy | undefined;
  /** key → value → node, for rules with an exact value. */
  readonly byValue: ReadonlyMap<string, ReadonlyMap<string, DescriptorNode>>;
  /** key → node, for rules without a value (the per-key default). */
  readonly byKey: ReadonlyMap<string, DescriptorNode>;
  /** Rules whose value ends in `*`, longest prefix first. */
  readonly wildcards: ReadonlyArray<{ readonly key: string; readonly prefix: string; readonly node: DescriptorNode }>;
}

/** The compiled configuration: one descriptor tree per domain; immutable. */
export interface RateLimitConfig {
  readonly domains: ReadonlyMap<string, DescriptorNode>;
}

/** A document together with where it came from, for error messages. */
export interface SourcedDocument {
  /** A file path (with `#n` for the n-th YAML document) or `inline#n`. */
  readonly source: string;
  readonly document: unknown;
}

const KIND = 'RateLimitConfig';
const documentKeys = new Set(['domain', 'descriptors']);
const descriptorKeys = new Set(['key', 'value', 'rate_limit', 'shadow_mode', 'detailed_metric', 'value_to_metric', 'descriptors']);
const rateLimitKeys = new Set(['unit', 'requests_per_unit', 'unlimited', 'name', 'replaces']);
const emptyNode: DescriptorNode = { limit: undefined, byValue: new Map(), byKey: new Map(), wildcards: [] };

/**
 * Validates and compiles configuration documents into a {@link RateLimitConfig}.
 * @throws MeshConfigError naming the source and field of the first bad value; nothing is half-applied.
 */
export function compileRateLimitConfig(documents: readonly SourcedDocument[]): RateLimitConfig {
  const domains = new Map<string, DescriptorNode>();
  const seenIn = new Map<string, string>();
  for (const { source, document } of documents) {
    if (document === null || document === undefined) continue; // an empty YAML document
    const fail = (path: string, reason: string): never => {
      throw new MeshConfigError(KIND, source, path, reason);
    };
    if (!isObject(document)) fail('$', 'a rate-limit config document must be a mapping with `domain` and `descriptors`');
    const doc = document as Record<string, unknown>;
    checkKeys(doc, documentKeys, '', fail);
    if (typeof doc.domain !== 'string' || doc.domain.length === 0) fail('domain', 'must be a non-empty string');
    const domain = doc.domain as string;
    const previous = seenIn.get(domain);
    if (previous !== undefined) fail('domain', `duplicate domain "${domain}" (already defined in ${previous})`);
    seenIn.set(domain, source);
    domains.set(domain, compileLevel(doc.descriptors, 'descriptors', domain, fail));
  }
  return { domains };
}

type Fail = (path: string, reason: string) => never;

function compileLevel(list: unknown, path: string, parentKey: string, fail: Fail): DescriptorNode {
  if (list === undefined || list === null) return emptyNode;
  if (!Array.isArray(list)) fail(path, 'must be a list of descriptors');
  const byValue = new Map<string, Map<string, DescriptorNode>>();
  const byKey = new Map<string, DescriptorNode>();
  const wildcards: Array<{ key: string; prefix: string; node: DescriptorNode }> = [];
  const seen = new Set<string>();
  (list as unknown[]).forEach((item, i) => {
    const at = `${path}[${i}]`;
    if (!isObject(item)) fail(at, 'a descriptor must be a mapping with `key`');
    const d = item as Record<string, unknown>;
    checkKeys(d, descriptorKeys, `${at}.`, fail);
    if (typeof d.key !== 'string' || d.key.length === 0) fail(`${at}.key`, 'must be a non-empty string');
    if (d.value !== undefined && typeof d.value !== 'string') fail(`${at}.value`, 'must be a string');
    for (const flag of ['shadow_mode', 'detailed_metric', 'value_to_metric'] as const) {
      if (d[flag] !== undefined && typeof d[flag] !== 'boolean') fail(`${at}.${flag}`, 'must be true or false');
    }
    const key = d.key as string;
    const value = d.value as string | undefined;
    const composite = value === undefined || value === '' ? key : `${key}_${value}`;
    if (seen.has(composite)) fail(at, `duplicate descriptor composite key "${parentKey}.${composite}"`);
    seen.add(composite);
    const fullKey = `${parentKey}.${composite}`;
    const limit = d.rate_limit === undefined ? undefined : compilePolicy(d.rate_limit, `${at}.rate_limit`, fullKey, d.shadow_mode === true, fail);
    const child = compileLevel(d.descriptors, `${at}.descriptors`, fullKey, fail);
    const node: DescriptorNode = { ...child, limit };
    if (value === undefined || value === '') {
      byKey.set(key, node);
    } else if (value.endsWith('*')) {
      wildcards.push({ key, prefix: value.slice(0, -1), node });
    } else {
      let values = byValue.get(key);
      if (!values) byValue.set(key, (values = new Map()));
      values.set(value, node);
    }
  });
  // The longest prefix is the most specific wildcard.
  wildcards.sort((a, b) => b.prefix.length - a.prefix.length);
  return { limit: undefined, byValue, byKey, wildcards };
}

function compilePolicy(raw: unknown, path: string, fullKey: string, shadowMode: boolean, fail: Fail): RateLimitPolicy {
  if (!isObject(raw)) fail(path, 'must be a mapping with `unit` and `requests_per_unit`');
  const r = raw as Record<string, unknown>;
  checkKeys(r, rateLimitKeys, `${path}.`, fail);
  if (r.unlimited !== undefined && typeof r.unlimited !== 'boolean') fail(`${path}.unlimited`, 'must be true or false');
  if (r.name !== undefined && (typeof r.name !== 'string' || r.name.length === 0)) fail(`${path}.name`, 'must be a non-empty string');
  const replaces: string[] = [];
  if (r.replaces !== undefined) {
    if (!Array.isArray(r.replaces)) fail(`${path}.replaces`, 'must be a list of { name }');
    (r.replaces as unknown[]).forEach((item, i) => {
      const name = isObject(item) ? (item as Record<string, unknown>).name : undefined;
      if (typeof name !== 'string' || name.length === 0) fail(`${path}.replaces[${i}].name`, 'must be a non-empty string');
      replaces.push(name as string);
    });
  }
  const unlimited = r.unlimited === true;
  let unit: RateLimitUnit = 'SECOND';
  let requestsPerUnit = 0;
  if (unlimited) {
    if (r.unit !== undefined) fail(`${path}.unit`, 'must not be set together with `unlimited: true`');
    if (r.requests_per_unit !== undefined) fail(`${path}.requests_per_unit`, 'must not be set together with `unlimited: true`');
  } else {
    const u = typeof r.unit === 'string' ? r.unit.toUpperCase() : undefined;
    if (u === undefined || !(u in UNIT_SECONDS)) {
      fail(`${path}.unit`, `must be one of second, minute, hour, day, month, year (got ${JSON.stringify(r.unit)})`);
    }
    unit = u as RateLimitUnit;
    const rpu = r.requests_per_unit;
    if (typeof rpu !== 'number' || !Number.isInteger(rpu) || rpu < 0 || rpu > 0xffff_ffff) {
      fail(`${path}.requests_per_unit`, `must be an integer from 0 to 4294967295 (got ${JSON.stringify(rpu)})`);
    }
    requestsPerUnit = rpu as number;
  }
  return {
    requestsPerUnit, unit, unitSeconds: UNIT_SECONDS[unit], fullKey,
    name: r.name as string | undefined, unlimited, shadowMode, replaces,
  };
}

function checkKeys(obj: Record<string, unknown>, allowed: Set<string>, prefix: string, fail: Fail): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.has(k)) fail(`${prefix}${k}`, `unknown field (allowed: ${[...allowed].join(', ')})`);
  }
}

function isObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
