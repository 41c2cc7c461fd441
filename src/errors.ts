/**
 * Every error meshlet raises is a {@link MeshError}: it carries a stable `code`
 * and, for local replies, the Envoy response `flag`. Detection goes through a
 * `Symbol.for` brand so two copies of the package still recognise each other.
 */

const brand = Symbol.for('meshlet.error');

/** Envoy response flags meshlet answers with (DESIGN.md §3, contract). */
export type ResponseFlag = 'UT' | 'FI' | 'DI' | 'UH' | 'UO' | 'RL' | 'URX' | 'UF' | 'UC' | 'NR' | 'NC' | 'DC' | 'RLSE';

/** Base class of every meshlet error. */
export class MeshError extends Error {
  /** Stable machine-readable code, e.g. `MESH_TIMEOUT`. */
  readonly code: string;
  /** The Envoy response flag of a local reply, when there is one. */
  readonly flag: ResponseFlag | undefined;
  /** The HTTP status a local reply would carry. */
  readonly status: number | undefined;

  constructor(code: string, message: string, flag?: ResponseFlag, status?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.flag = flag;
    this.status = status;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== MeshError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
  }
}
Object.defineProperty(MeshError.prototype, brand, { value: true });

/** Where a configuration document came from: a file (or `<string>`) and its index in that file. */
export interface ConfigSourceRef {
  readonly file: string;
  /** 0-based index of the YAML document within the file. */
  readonly document: number;
}

/** A configuration document that failed validation; names the resource and the bad field. */
export class MeshConfigError extends MeshError {
  /** Resource kind, e.g. `VirtualService`. */
  readonly kind: string;
  /** `namespace/name` of the resource. */
  readonly resource: string;
  /** JSON path of the offending field, e.g. `spec.http[0].route[1].weight`. */
  readonly path: string;
  /** Why the field was rejected. */
  readonly reason: string;
  /** The file and document the resource was read from, when it came from YAML. */
  readonly source: ConfigSourceRef | undefined;

  constructor(kind: string, resource: string, path: string, reason: string, source?: ConfigSourceRef) {
    super('MESH_CONFIG_INVALID', `${kind} ${resource}: ${path}: ${reason}${source ? ` (${source.file}, document ${source.document})` : ''}`);
    this.kind = kind;
    this.resource = resource;
    this.path = path;
    this.reason = reason;
    this.source = source;
  }
}

interface LocalReplyErrorSpec {
  code: string;
  flag: ResponseFlag;
  status: number;
  message: string;
}

/** The table of local-reply errors; one factory below builds a class for each. */
const localReplies = {
  MeshTimeoutError: { code: 'MESH_TIMEOUT', flag: 'UT', status: 504, message: 'upstream request timeout' },
  MeshFaultAbortError: { code: 'MESH_FAULT_ABORT', flag: 'FI', status: 503, message: 'fault filter abort' },
  MeshNoHealthyUpstreamError: { code: 'MESH_NO_HEALTHY_UPSTREAM', flag: 'UH', status: 503, message: 'no healthy upstream' },
  MeshOverflowError: { code: 'MESH_OVERFLOW', flag: 'UO', status: 503, message: 'upstream connect error or disconnect/reset before headers. reset reason: overflow' },
  MeshRateLimitedError: { code: 'MESH_RATE_LIMITED', flag: 'RL', status: 429, message: 'local_rate_limited' },
  MeshRateLimitServiceError: { code: 'MESH_RATELIMIT_SERVICE', flag: 'RLSE', status: 500, message: 'rate_limiter_error' },
  MeshRetriesExhaustedError: { code: 'MESH_RETRIES_EXHAUSTED', flag: 'URX', status: 503, message: 'upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection failure' },
  MeshUpstreamConnectError: { code: 'MESH_UPSTREAM_CONNECT', flag: 'UF', status: 503, message: 'upstream connect error or disconnect/reset before headers. reset reason: connection failure' },
  MeshNoRouteError: { code: 'MESH_NO_ROUTE', flag: 'NR', status: 502, message: 'no route to host' },
  MeshNoClusterError: { code: 'MESH_NO_CLUSTER', flag: 'NC', status: 503, message: 'no cluster' },
} as const satisfies Record<string, LocalReplyErrorSpec>;

type LocalReplyName = keyof typeof localReplies;
/** A local-reply error class: `new MeshTimeoutError()` or with a more precise message. */
export type LocalReplyErrorClass = new (message?: string, status?: number, options?: { cause?: unknown }) => MeshError;

/** One factory builds every local-reply base class from the table. */
function localReply(name: LocalReplyName): LocalReplyErrorClass {
  const spec: LocalReplyErrorSpec = localReplies[name];
  return class extends MeshError {
    constructor(message?: string, status?: number, options?: { cause?: unknown }) {
      super(spec.code, message ?? spec.message, spec.flag, status ?? spec.status, options);
    }
  };
}

/** Route or request timeout: 504 `UT`. */
export class MeshTimeoutError extends localReply('MeshTimeoutError') {}
/** Fault-injection abort: configured status, `FI`. */
export class MeshFaultAbortError extends localReply('MeshFaultAbortError') {}
/** No healthy endpoint, or all ejected: 503 `UH`. */
export class MeshNoHealthyUpstreamError extends localReply('MeshNoHealthyUpstreamError') {}
/** Connection-pool overflow or open circuit: 503 `UO`. */
export class MeshOverflowError extends localReply('MeshOverflowError') {}
/** Rate limited, local or global: 429 `RL`. */
export class MeshRateLimitedError extends localReply('MeshRateLimitedError') {}
/** The rate-limit service failed and `failure_mode_deny` rejects: `status_on_error` (500) `RLSE`. */
export class MeshRateLimitServiceError extends localReply('MeshRateLimitServiceError') {}
/** Retries exhausted on connect failure: 503 `URX`. */
export class MeshRetriesExhaustedError extends localReply('MeshRetriesExhaustedError') {}
/** Upstream connection failure without retries: 503 `UF`. */
export class MeshUpstreamConnectError extends localReply('MeshUpstreamConnectError') {}
/** No route for the host under REGISTRY_ONLY: 502 `NR`. */
export class MeshNoRouteError extends localReply('MeshNoRouteError') {}
/** The route's cluster is unknown or its resource never arrived: 503 `NC`. */
export class MeshNoClusterError extends localReply('MeshNoClusterError') {}

/** Looks up the local-reply class for a response flag. */
export function localReplyErrorFor(flag: ResponseFlag): LocalReplyErrorClass | undefined {
  return byFlag.get(flag);
}

const byFlag = new Map<ResponseFlag, LocalReplyErrorClass>([
  ['UT', MeshTimeoutError], ['FI', MeshFaultAbortError], ['UH', MeshNoHealthyUpstreamError],
  ['UO', MeshOverflowError], ['RL', MeshRateLimitedError], ['RLSE', MeshRateLimitServiceError], ['URX', MeshRetriesExhaustedError],
  ['UF', MeshUpstreamConnectError], ['NR', MeshNoRouteError], ['NC', MeshNoClusterError],
]);
