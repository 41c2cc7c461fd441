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

/** A node request as an InboundRequestView, re-pointed per request (evaluation is synchronous). */
class NodeRequestView implements InboundRequestView {
  req: IncomingMessage | undefined;

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

  setRequestHeader(): void {}
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
      return denied === undefined ? undefined : { code: GRPC_PERMISSION_DENIED, details: RBAC_ACCESS_DENIED, policy: denied.source };
    } finally {
      v.call = undefined;
    }
  }
}
