/**
 * The sidecar's request normalization on a node request, run once at the
 * start of every inbound request by every adapter (mesh.createServer,
 * Express, Fastify, the gateway): Istio's method rule and the path
 * normalization of core/path-normalization. The request is rewritten in
 * place — `req.url` becomes the normalized path plus the original query, as
 * Envoy forwards it — so AuthorizationPolicy, routing and the app all read
 * the same path. A request the sidecar would have refused gets its local
 * reply instead: 400 `path_normalization_failed` (404 `absolute_path` for a
 * target that is not a path; 307 for Envoy's UNESCAPE_AND_REDIRECT action).
 */
import type { InboundLocalReply } from '../core/inbound-policy.js';
import { isUpperCaseMethod, normalizePath, type PathNormalizationSettings } from '../core/path-normalization.js';

/**
 * The flag meshlet records on a request refused for its path or method.
 * Envoy sets no response flag here (its details say why); DPE, Envoy's
 * "downstream protocol error", names the same kind of refusal.
 */
export const PATH_REJECTED_FLAG = 'DPE';
/** The response code details for a method that is not upper case (Envoy's header validator's). */
export const INVALID_METHOD = 'uhv.invalid_method';

/**
 * Each request's outcome, kept beside the request rather than on it: adding a
 * property to a request whose prototype a framework replaced (Express's
 * `Object.setPrototypeOf(req, app.request)`) costs microseconds and gives
 * every request its own hidden class, slowing the framework's code after it.
 */
const normalized = new WeakMap<object, InboundLocalReply | null>();

/** What the helper reads and writes on node's IncomingMessage or Http2ServerRequest (and Express's / Fastify's `originalUrl`). */
interface NormalizableRequest {
  url?: string;
  method?: string;
  originalUrl?: string;
}

function localReply(status: number, details: string, headers: ReadonlyArray<readonly [string, string]> = []): InboundLocalReply {
  return { status, flags: PATH_REJECTED_FLAG, details, body: '', headers, source: 'http_connection_manager' };
}

const replies = new Map<string, InboundLocalReply>();

function cachedReply(status: number, details: string): InboundLocalReply {
  const key = `${status} ${details}`;
  let reply = replies.get(key);
  if (reply === undefined) replies.set(key, (reply = Object.freeze(localReply(status, details))));
  return reply;
}

/**
 * Normalizes `req` in place and returns the local reply to send when the
 * sidecar would have answered it itself; undefined lets it through. Runs
 * once per request: a second call (Fastify's rewriteUrl, then its onRequest
 * hook) returns the first call's outcome.
 */
export function normalizeRequest(req: object, settings: PathNormalizationSettings): InboundLocalReply | undefined {
  const done = normalized.get(req);
  if (done !== undefined) return done ?? undefined;
  const reply = normalizeOnce(req as NormalizableRequest, settings);
  normalized.set(req, reply ?? null);
  return reply;
}

/** True once {@link normalizeRequest} ran on `req`. */
export function isNormalized(req: object): boolean {
  return normalized.has(req);
}

function normalizeOnce(r: NormalizableRequest, settings: PathNormalizationSettings): InboundLocalReply | undefined {
  if (!isUpperCaseMethod(r.method ?? 'GET')) return cachedReply(400, INVALID_METHOD);
  const raw = r.url ?? '/';
  const result = normalizePath(raw, settings);
  if ('reject' in result) {
    if (result.reject === 307) return localReply(307, result.details, [['location', result.location!]]);
    return cachedReply(result.reject, result.details);
  }
  if (!result.changed) return undefined;
  const url = result.url;
  // Express and Fastify copy the raw URL to originalUrl before any middleware: the app must not see it there either.
  if (r.originalUrl === raw) r.originalUrl = url;
  r.url = url;
  return undefined;
}
