/**
 * AuthorizationPolicy in the request path. The policies of a config are
 * compiled once per config (cached by the resource list's identity) and
 * narrowed to this workload; each request is one `evaluate` over a reused
 * attribute object. A denial answers as Envoy's RBAC filter: HTTP 403
 * `RBAC: access denied` (details `rbac_access_denied_matched_policy[…]`),
 * gRPC PERMISSION_DENIED with the same message.
 *
 * Entry points for the adapters:
 *  - {@link authorizationFilterFactory} → `InboundPolicyOptions.authorization`
 *    (Express, Fastify, anything on the inbound chain);
 *  - {@link MeshAuthorization.authorizeHttp} for a raw node request;
 *  - {@link MeshAuthorization.authorizeGrpc} for a gRPC server interceptor.
 */
import type { IncomingMessage } from 'node:http';
import type { InboundFilter, InboundLocalReply, InboundRequestView } from '../core/inbound-policy.js';
import { type AuthorizationDecision, type AuthorizationEvaluator, type AuthorizationPolicyResource, type RequestAttributes, compileAuthorizationPolicies } from './authorization.js';
import { joinedHeader } from '../http/headers.js';
import { peerIdentity } from './tls.js';

/** Envoy RBAC's local-reply body. */
export const RBAC_ACCESS_DENIED = 'RBAC: access denied';
/** The response flag meshlet records for an authorization denial (Envoy sets none; details carry the policy). */
export const RBAC_FLAG = 'RBAC';
/** gRPC status PERMISSION_DENIED. */
export const GRPC_PERMISSION_DENIED = 7;
/** The Envoy filter name the authorization filter stands in for. */
export const RBAC_FILTER = 'envoy.filters.http.rbac';

/** Options of {@link MeshAuthorization}. */
export interface MeshAuthorizationOptions {
  /** Istio's root namespace (mesh-wide policies), default `istio-system`. */
  rootNamespace?: string;
  /** Called when an AUDIT policy matches (Istio logs these). */
  onAudit?: (decision: AuthorizationDecision, request: RequestAttributes) => void;
}

/** What an authorization check returns: the decision plus the reply to send when denied. */
export interface AuthorizationResult {
  readonly allowed: boolean;
  /** `namespace/name` of the deciding policy, when one decided. */
  readonly policy: string | undefined;
  readonly reason: string;
}

/** Envoy's response code details for a denial. */
export function rbacDetails(decision: AuthorizationDecision): string {
  return `rbac_access_denied_matched_policy[${decision.policy !== undefined ? decision.policy.replace('/', '.') : 'none'}]`;
}

/** The inbound local reply for a denial (shape of core/inbound-policy's InboundLocalReply). */
export function rbacDeniedReply(decision: AuthorizationDecision): InboundLocalReply {
  return { status: 403, flags: RBAC_FLAG, details: rbacDetails(decision), body: RBAC_ACCESS_DENIED, headers: [], source: decision.policy ?? 'none' };
}

/** Reused per call: evaluation is synchronous, so one scratch object per mesh is safe. */
interface Scratch extends RequestAttributes {
  headers: Record<string, string | string[] | undefined> | undefined;
  rawHeaders: readonly string[] | undefined;
}

/** Istio: header names match case-insensitively, a repeated header as its values joined with `,`. */
function headerOf(this: Scratch, name: string): string | undefined {
  return this.headers === undefined ? undefined : joinedHeader(this as { headers: Record<string, string | string[] | undefined>; rawHeaders?: readonly string[] }, name);
}

/** The workload's authorization: policies from the current config, evaluated per request. */
export class MeshAuthorization {
  private cachedFor: readonly unknown[] | undefined;
  private cached: AuthorizationEvaluator | undefined;
  private readonly scratch: Scratch = { method: '', path: '', headers: undefined, rawHeaders: undefined, header: headerOf };

  constructor(
    private readonly workload: { namespace: string; labels?: Readonly<Record<string, string>> },
    private readonly resources: () => readonly unknown[] | undefined,
    private readonly options: MeshAuthorizationOptions = {},
  ) {}

  /**
   * Compiles and checks the policies of a config (throws MeshConfigError) and
   * returns the evaluator for this workload; undefined when none applies.
   */
  compile(resources: readonly unknown[]): AuthorizationEvaluator | undefined {
    const policies = (resources as AuthorizationPolicyResource[]).filter((r) => r?.kind === 'AuthorizationPolicy');
    if (policies.length === 0) return undefined;
    const evaluator = compileAuthorizationPolicies(policies, this.options.rootNamespace !== undefined ? { rootNamespace: this.options.rootNamespace } : {}).forWorkload(this.workload);
    return evaluator.empty ? undefined : evaluator;
  }

  /** Installs an evaluator compiled by {@link compile} for `resources` (avoids compiling twice). */
  install(resources: readonly unknown[], evaluator: AuthorizationEvaluator | undefined): void {
    this.cachedFor = resources;
    this.cached = evaluator;
  }

  /** The evaluator of the current config, or undefined when no policy applies. */
  get evaluator(): AuthorizationEvaluator | undefined {
    const resources = this.resources();
    if (resources !== this.cachedFor) this.install(resources ?? [], resources ? this.compile(resources) : undefined);
    return this.cached;
  }

  /** Decides one request. */
  evaluate(request: RequestAttributes): AuthorizationResult {
    const evaluator = this.evaluator;
    if (evaluator === undefined) return ALLOWED;
    const decision = evaluator.evaluate(request);
    if (decision.audit !== undefined) this.options.onAudit?.(decision, request);
    return decision as AuthorizationResult;
  }

  /** Decides a node HTTP request (http, https, the mesh server); `undefined` means allowed. */
  authorizeHttp(req: IncomingMessage): InboundLocalReply | undefined {
    const evaluator = this.evaluator;
    if (evaluator === undefined) return undefined;
    const s = this.scratch;
    const socket = req.socket;
    const url = req.url ?? '/';
    s.method = req.method ?? 'GET';
    s.path = url;
    s.host = req.headers.host ?? (req.headers[':authority'] as string | undefined);
    s.port = socket?.localPort;
    s.headers = req.headers;
    s.rawHeaders = req.rawHeaders;
    s.sourcePrincipal = peerIdentity(socket as Parameters<typeof peerIdentity>[0]);
    s.sourceIp = socket?.remoteAddress;
    s.destinationIp = socket?.localAddress;
    const decision = evaluator.evaluate(s);
    if (decision.audit !== undefined) this.options.onAudit?.(decision, { ...s });
    s.headers = undefined;
    s.rawHeaders = undefined;
    return decision.allowed ? undefined : rbacDeniedReply(decision);
  }

  /**
   * Decides a gRPC call: `path` is `/package.Service/Method`, `metadata`
   * the call's metadata as a plain map. Returns the status to end the call
   * with, or undefined when allowed.
   */
  authorizeGrpc(call: { path: string; authority?: string; port?: number; metadata?: Record<string, string | string[] | undefined>; sourcePrincipal?: string; sourceIp?: string }): { code: number; details: string; policy: string | undefined } | undefined {
    const evaluator = this.evaluator;
    if (evaluator === undefined) return undefined;
    const s = this.scratch;
    s.method = 'POST';
    s.path = call.path;
    s.host = call.authority;
    s.port = call.port;
    s.headers = call.metadata;
    s.rawHeaders = undefined;
    s.sourcePrincipal = call.sourcePrincipal;
    s.sourceIp = call.sourceIp;
    s.destinationIp = undefined;
    const decision = evaluator.evaluate(s);
    if (decision.audit !== undefined) this.options.onAudit?.(decision, { ...s });
    s.headers = undefined;
    return decision.allowed ? undefined : { code: GRPC_PERMISSION_DENIED, details: RBAC_ACCESS_DENIED, policy: decision.policy };
  }

  /** A filter for the inbound chain (core/inbound-policy); undefined when no policy applies. */
  filter(): InboundFilter | undefined {
    const evaluator = this.evaluator;
    if (evaluator === undefined) return undefined;
    return new AuthorizationFilter(evaluator, this.options.onAudit);
  }
}

const ALLOWED: AuthorizationResult = Object.freeze({ allowed: true, policy: undefined, reason: 'no AuthorizationPolicy applies to the workload' });

/** The inbound-chain filter over an InboundRequestView. */
class AuthorizationFilter implements InboundFilter {
  readonly name = RBAC_FILTER;
  private readonly scratch: RequestAttributes = { method: '', path: '' };

  constructor(private readonly evaluator: AuthorizationEvaluator, private readonly onAudit: MeshAuthorizationOptions['onAudit']) {}

  decodeHeaders(request: InboundRequestView): InboundLocalReply | undefined {
    const s = this.scratch;
    s.method = request.method;
    s.path = request.path;
    s.header = (name) => request.header(name);
    s.host = request.header('host') ?? request.header(':authority');
    // The view may carry the local port (ports / destination.port rules).
    s.port = (request as InboundRequestView & { destinationPort?: number }).destinationPort;
    s.sourcePrincipal = request.sourcePrincipal;
    s.sourceIp = request.sourceIp;
    const decision = this.evaluator.evaluate(s);
    if (decision.audit !== undefined) this.onAudit?.(decision, { ...s });
    s.header = undefined;
    return decision.allowed ? undefined : rbacDeniedReply(decision);
  }
}

/**
 * For `new InboundPolicyCompiler({ authorization: authorizationFilterFactory(auth) })`:
 * the authorization filter of the current config, run before rate limits.
 */
export function authorizationFilterFactory(auth: MeshAuthorization): (snapshot: unknown) => InboundFilter | undefined {
  return () => auth.filter();
}
