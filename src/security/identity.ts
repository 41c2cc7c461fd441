/**
 * SPIFFE workload identities as Istio issues them:
 * `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`. Parsing is
 * strict — exactly that shape, SPIFFE's character set, the expected trust
 * domain — because the result decides who may call whom.
 */
import { MeshError } from '../errors.js';

/** Istio's default trust domain. */
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

/** A parsed SPIFFE id. */
export interface SpiffeId {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** The canonical URI form. */
  readonly uri: string;
}

/** A SPIFFE id that is malformed or belongs to the wrong trust domain. */
export class SpiffeIdError extends MeshError {
  /** The offending input. */
  readonly input: string;
  constructor(input: string, reason: string) {
    super('MESH_SPIFFE_ID_INVALID', `invalid SPIFFE id ${JSON.stringify(input)}: ${reason}`);
    this.input = input;
  }
}

const SCHEME = 'spiffe://';
// SPIFFE spec: trust domain chars are lowercase letters, digits, '.', '-', '_'.
const trustDomainPattern = /^[a-z0-9._-]+$/;
// SPIFFE spec path segment chars; '.' and '..' are excluded separately.
const segmentPattern = /^[A-Za-z0-9._-]+$/;
const MAX_URI_LENGTH = 2048;
const MAX_TRUST_DOMAIN_LENGTH = 255;

/** Why a trust domain is unacceptable, or undefined when it is fine. */
export function checkTrustDomain(trustDomain: string): string | undefined {
  if (typeof trustDomain !== 'string' || trustDomain.length === 0) return 'trust domain is empty';
  if (trustDomain.length > MAX_TRUST_DOMAIN_LENGTH) return `trust domain is longer than ${MAX_TRUST_DOMAIN_LENGTH} characters`;
  if (!trustDomainPattern.test(trustDomain)) return `trust domain "${trustDomain}" may only contain a-z, 0-9, '.', '-', '_'`;
  return undefined;
}

function checkSegment(value: string, what: string): string | undefined {
  if (value.length === 0) return `${what} is empty`;
  if (value === '.' || value === '..') return `${what} may not be "${value}"`;
  if (!segmentPattern.test(value)) return `${what} "${value}" may only contain A-Z, a-z, 0-9, '.', '-', '_'`;
  return undefined;
}

/**
 * Builds the SPIFFE id of a workload.
 * @throws SpiffeIdError when a part contains characters SPIFFE forbids.
 */
export function formatSpiffeId(parts: { trustDomain?: string; namespace: string; serviceAccount: string }): string {
  const trustDomain = parts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const uri = `${SCHEME}${trustDomain}/ns/${parts.namespace}/sa/${parts.serviceAccount}`;
  const reason = checkTrustDomain(trustDomain) ?? checkSegment(parts.namespace, 'namespace') ?? checkSegment(parts.serviceAccount, 'service account');
  if (reason) throw new SpiffeIdError(uri, reason);
  return uri;
}

/**
 * Parses a SPIFFE id without throwing.
 * @param options.trustDomain when given, the id must belong to it.
 * @returns the id, or a string saying why the input was rejected.
 */
export function tryParseSpiffeId(input: string, options: { trustDomain?: string } = {}): SpiffeId | string {
  if (typeof input !== 'string') return 'not a string';
  if (input.length > MAX_URI_LENGTH) return `longer than ${MAX_URI_LENGTH} characters`;
  if (!input.startsWith(SCHEME)) return 'must start with "spiffe://"';
  const rest = input.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  if (slash < 0) return 'has no path (expected /ns/<namespace>/sa/<serviceAccount>)';
  const trustDomain = rest.slice(0, slash);
  const tdReason = checkTrustDomain(trustDomain);
  if (tdReason) return tdReason;
  const segments = rest.slice(slash + 1).split('/');
  if (segments.length !== 4 || segments[0] !== 'ns' || segments[2] !== 'sa') {
    return 'path must be exactly /ns/<namespace>/sa/<serviceAccount>';
  }
  const namespace = segments[1]!;
  const serviceAccount = segments[3]!;
  const reason = checkSegment(namespace, 'namespace') ?? checkSegment(serviceAccount, 'service account');
  if (reason) return reason;
  if (options.trustDomain !== undefined && trustDomain !== options.trustDomain) {
    return `trust domain "${trustDomain}" is not the expected "${options.trustDomain}"`;
  }
  return { trustDomain, namespace, serviceAccount, uri: input };
}

/**
 * Parses a SPIFFE id strictly.
 * @throws SpiffeIdError saying what is wrong.
 */
export function parseSpiffeId(input: string, options: { trustDomain?: string } = {}): SpiffeId {
  const result = tryParseSpiffeId(input, options);
  if (typeof result === 'string') throw new SpiffeIdError(String(input), result);
  return result;
}
