/**
 * Authorization for adapters outside the HTTP inbound chain: a raw node
 * request (the gateway, the mesh server's own guard) and a gRPC call. Both
 * run the RBAC filters of the snapshot's inbound listener — the very filters
 * Express, Fastify and mesh.createServer run in their chain — so a policy
 * from YAML, from meshlet's control plane or from istiod is enforced the same
 * way everywhere. A denial answers as Envoy's RBAC filter: HTTP 403
 * `RBAC: access denied` (details `rbac_access_denied_matched_policy[…]`),
 * gRPC PERMISSION_DENIED with the same message.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { InboundLocalReply, InboundPolicy, InboundRequestView } from '../core/inbound-policy.js';
import { RBAC_ACCESS_DENIED, RBAC_FLAG, rbacDeniedReply } from '../core/rbac-filter.js';
import { joinedHeader } from '../http/headers.js';
import { peerIdentity } from './tls.js';

export { RBAC_ACCESS_DENIED, RBAC_FLAG, rbacDeniedReply };
/** gRPC status PERMISSION_DENIED. */
export const GRPC_PERMISSION_DENIED = 7;
/** gRPC status UNAUTHENTICATED (a JWT that fails verification). */
export const GRPC_UNAUTHENTICATED = 16;
/** The Envoy filter name istiod gives its ALLOW RBAC filter. */
export const RBAC_FILTER = 'envoy.filters.http.rbac';

/** A gRPC call as authorization sees it. */
export interface GrpcCallAttributes {
  /** `/package.Service/Method`. */
  path: string;
  authority?: string;
  /** The local port and address the call arrived on. */
  port?: number;
  localAddress?: string;
  metadata?: Record<string, string | string[] | undefined>;
  sourcePrincipal?: string;
  sourceIp?: string;
}

/** Runs only the authorization filters of a policy (rate limits belong to the HTTP chain). */
function authorize(policy: InboundPolicy, view: InboundRequestView): InboundLocalReply | undefined {
  const filters = policy.authorization;
  for (let i = 0; i < filters.length; i++) {
    const reply = filters[i]!.decodeHeaders(view);
    if (reply !== undefined) return reply;
  }
  return undefined;
}

/** Dynamic metadata the inbound filters wrote for a node request (the gateway's routes match JWT claims on it). */
const requestMetadata = new WeakMap<IncomingMessage, Record<string, Record<string, unknown>>>();

/** Every filter's dynamic metadata for a request authorized by {@link MeshAuthorization.authorizeHttp}. */
export function dynamicMetadataOf(req: IncomingMessage): Readonly<Record<string, Readonly<Record<string, unknown>>>> | undefined {
  return requestMetadata.get(req);
}

/** The dynamic metadata of `filter` for a request authorized by {@link MeshAuthorization.authorizeHttp}. */
export function metadataOf(req: IncomingMessage, filter: string): Record<string, unknown> | undefined {
  return requestMetadata.get(req)?.[filter];
}

/** Sets (or, without a value, removes) a header in both of Node's views: the gateway forwards rawHeaders. */
function replaceHeader(req: IncomingMessage, name: string, value: string | undefined): void {
  const raw = req.rawHeaders;
  for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.toLowerCase() === name) raw.splice(i, 2);
  if (value === undefined) delete req.headers[name];
  else {
    raw.push(name, value);
    req.headers[name] = value;
  }
}

/** A node request as an InboundRequestView, re-pointed per request (evaluation is synchronous). */
class NodeRequestView implements InboundRequestView {
  req: IncomingMessage | undefined;
  get url(): string { return this.req!.url ?? '/'; }

  get method(): string { return this.req!.method ?? 'GET'; }
  get path(): string {
    const url = this.req!.url ?? '/';
    const q = url.indexOf('?');
    return q < 0 ? url : url.slice(0, q);
  }

  header(name: string): string | undefined {
    if (name === ':path') return this.req!.url;
    return joinedHeader(this.req!, name);
  }

  get sourcePrincipal(): string | undefined { return peerIdentity(this.req!.socket as Parameters<typeof peerIdentity>[0]); }
  get sourceIp(): string | undefined { return this.req!.socket?.remoteAddress; }
  get destinationIp(): string | undefined { return this.req!.socket?.localAddress; }
  get destinationPort(): number | undefined { return this.req!.socket?.localPort; }
  get requestedServerName(): string | undefined {
    const name = (this.req!.socket as TLSSocket & { servername?: string | false }).servername;
    return typeof name === 'string' ? name : undefined;
  }

  metadata(filter: string): Record<string, unknown> | undefined { return metadataOf(this.req!, filter); }
  setMetadata(filter: string, value: Record<string, unknown>): void {
    const req = this.req!;
    requestMetadata.set(req, { ...requestMetadata.get(req), [filter]: value });
  }

  // jwt_authn's header changes reach what the mesh server's handler and the gateway's upstream see.
  setRequestHeader(name: string, value: string): void { replaceHeader(this.req!, name, value); }
  removeRequestHeader(name: string): void { replaceHeader(this.req!, name, undefined); }
  addResponseHeader(): void {}
}

/** A gRPC call as an InboundRequestView. */
class GrpcCallView implements InboundRequestView {
  call: GrpcCallAttributes | undefined;
  readonly method = 'POST';
  get path(): string { return this.call!.path; }

  header(name: string): string | undefined {
    const c = this.call!;
    if (name === ':authority' || name === 'host') return c.authority ?? single(c.metadata?.[':authority']);
    if (name === ':path') return c.path;
    if (name === 'content-type') return single(c.metadata?.['content-type']) ?? 'application/grpc';
    const v = c.metadata?.[name];
    return Array.isArray(v) ? v.join(',') : v;
  }

  get sourcePrincipal(): string | undefined { return this.call!.sourcePrincipal; }
  get sourceIp(): string | undefined { return this.call!.sourceIp; }
  get destinationIp(): string | undefined { return this.call!.localAddress; }
  get destinationPort(): number | undefined { return this.call!.port; }

  /** Per call: jwt_authn's payload for the RBAC filters after it. */
  dynamic: Record<string, Record<string, unknown>> | undefined;
  metadata(filter: string): Record<string, unknown> | undefined { return this.dynamic?.[filter]; }
  setMetadata(filter: string, value: Record<string, unknown>): void { this.dynamic = { ...this.dynamic, [filter]: value }; }

  // The handler reads grpc-js's own Metadata: header changes (token removal, claim headers) do not reach it.
  setRequestHeader(): void {}
  addResponseHeader(): void {}
}

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

/** The workload's authorization: the RBAC filters of the snapshot in force, for a port. */
export class MeshAuthorization {
  private readonly node = new NodeRequestView();
  private readonly grpc = new GrpcCallView();

  /** @param policyFor the inbound policy serving local `port` under the current snapshot */
  constructor(private readonly policyFor: (port: number | undefined) => InboundPolicy) {}

  /** Decides a node HTTP request (http, https, the mesh server); `undefined` means allowed. */
  authorizeHttp(req: IncomingMessage): InboundLocalReply | undefined {
    const policy = this.policyFor(req.socket?.localPort);
    if (policy.authorization.length === 0) return undefined;
    const v = this.node;
    v.req = req;
    try {
      return authorize(policy, v);
    } finally {
      v.req = undefined;
    }
  }

  /**
   * Decides a gRPC call. Returns the status to end the call with, or
   * undefined when allowed.
   */
  authorizeGrpc(call: GrpcCallAttributes): { code: number; details: string; policy: string | undefined } | undefined {
    const policy = this.policyFor(call.port);
    if (policy.authorization.length === 0) return undefined;
    const v = this.grpc;
    v.call = call;
    try {
      const denied = authorize(policy, v);
      if (denied === undefined) return undefined;
      // Envoy's gRPC mapping of a local reply: 401 UNAUTHENTICATED (jwt_authn), 403 PERMISSION_DENIED.
      if (denied.status === 401) return { code: GRPC_UNAUTHENTICATED, details: denied.body, policy: denied.source };
      return { code: GRPC_PERMISSION_DENIED, details: denied.flags === RBAC_FLAG ? RBAC_ACCESS_DENIED : denied.body, policy: denied.source };
    } finally {
      v.call = undefined;
      v.dynamic = undefined;
    }
  }
}
