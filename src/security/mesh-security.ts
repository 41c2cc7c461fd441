/**
 * The security side of one mesh: its workload identity (certificates from a
 * directory, a development CA or the control plane's CA), the servers it
 * builds, and the peer identity handlers see. The mTLS mode and the
 * authorization it enforces come from the snapshot's inbound listeners
 * (filter chains, RBAC filters; {@link InboundSecuritySource}), whatever sent them. `Mesh` delegates
 * its identity methods here.
 */
import { JwksCache } from './jwks.js';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TlsOptions, TLSSocket } from 'node:tls';
import { parseDuration } from '../core/duration.js';
import { MeshConfigError } from '../errors.js';
import { openCaDir } from './ca-dir.js';
import { certDirIdentity } from './cert-dir.js';
import { controlPlaneIdentity } from './ca-service.js';
import { DEFAULT_TRUST_DOMAIN, formatSpiffeId, tryParseSpiffeId } from './identity.js';
import { EMPTY_INBOUND_POLICY, type InboundLocalReply, type InboundPolicy } from '../core/inbound-policy.js';
import { MeshAuthorization } from './inbound-authz.js';
import type { AnyRequestListener, MeshRequestListener } from './mesh-http2.js';
import { type MeshServer, createMeshServer } from './mesh-server.js';
import type { ServerTimeouts } from './server-timeouts.js';
import type { MtlsMode } from './peer-authentication.js';
import type { FileWatcherProvider } from '../xds/bootstrap.js';
import { enforcePeerTrustDomain, peerIdentity, serverTlsOptions } from './tls.js';
import { type Disposable, type WorkloadIdentity, identityFromCa } from './workload-identity.js';

/** Where the workload's certificates come from (`createMesh` options). */
export interface MeshIdentityOptions {
  /** Istio's /etc/certs layout: cert-chain.pem, key.pem, root-cert.pem; reloaded when they change. */
  certs?: { dir: string };
  /**
   * A development CA kept in `dir` (every mesh with the same dir trusts the
   * others), or the control plane's CA (Istio CSR API) at `server` (default:
   * the xds server), trusted through `root` (PEM or a file path) and the
   * pinned `identity`, first authenticated with a single-use bootstrap `token`.
   */
  ca?: { dir: string; ttl?: string | number } | RemoteCaOptions;
  /** SPIFFE trust domain (default `cluster.local`). */
  trustDomain?: string;
}

/** `createMesh({ ca })` for a control plane's CA. */
export interface RemoteCaOptions {
  /** host:port of the CA (default: `xds.server`). */
  server?: string;
  /** PEM (or a file path) of the root the CA's certificate must chain to. */
  root: string;
  /** Bootstrap token for the first certificate; single-use. */
  token?: string;
  /**
   * A token file sent with every CSR, renewals included, and re-read each
   * time (istiod: the projected service-account token,
   * `/var/run/secrets/tokens/istio-token`). Without `identity`, the CA is then
   * pinned by DNS name as istio-agent does: the host of `server`
   * (`istiod.istio-system.svc` for localhost or an IP), env ISTIOD_SAN first.
   */
  tokenFile?: string;
  /** Sent as `ClusterID` with each CSR (istio-agent's ISTIO_META_CLUSTER_ID); default the mesh's cluster id. */
  clusterId?: string;
  /** Requested certificate validity (`24h`, or ms). */
  ttl?: string | number;
  /**
   * The CA's identity, pinned for the first request and every renewal: a
   * `spiffe://` id its certificate must carry as a URI SAN, or a DNS name
   * it must carry as a DNS SAN. Default
   * `spiffe://<trustDomain>/ns/istio-system/sa/istiod` (meshlet's control
   * plane); for Istio's istiod set `istiod.istio-system.svc`.
   */
  identity?: string;
}

/** A pinnable DNS name: dot-separated LDH labels (no wildcard, no IP address). */
const DNS_NAME = /^(?=.{1,253}\.?$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

/** Why `ca.identity` cannot be pinned, or undefined when it can. */
function pinProblem(pin: unknown): string | undefined {
  if (typeof pin !== 'string' || pin.length === 0) return 'must be a non-empty string';
  if (pin.startsWith('spiffe://')) {
    const id = tryParseSpiffeId(pin);
    return typeof id === 'string' ? id : undefined;
  }
  if (/^\d+(\.\d+){3}$/.test(pin)) return `${pin} is an IP address; pin a DNS name or a spiffe:// id`;
  return DNS_NAME.test(pin) ? undefined : `${pin} is neither a spiffe:// id nor a DNS name`;
}

/** The workload as security sees it. */
export interface SecurityWorkload {
  namespace: string;
  labels: Readonly<Record<string, string>>;
  serviceAccount?: string;
}

function ttlMs(ttl: string | number | undefined): number | undefined {
  if (ttl === undefined) return undefined;
  const ms = typeof ttl === 'number' ? ttl : parseDuration(ttl);
  if (typeof ms === 'string' || !(ms > 0)) throw new TypeError(`ca.ttl: ${typeof ms === 'string' ? ms : 'must be positive'}`);
  return ms;
}

/**
 * The mesh's inbound chain around a request: starts telemetry, runs the
 * inbound filters and calls `serve` inside the request's context, or answers
 * with the chain's local reply.
 */
export type InboundChain = (req: Parameters<MeshRequestListener>[0], res: Parameters<MeshRequestListener>[1], serve: MeshRequestListener) => void;

/**
 * Where security reads the snapshot's inbound listeners: the mTLS mode their
 * filter chains say for a port, and the compiled inbound policy (RBAC filters) for it.
 */
export interface InboundSecuritySource {
  modeFor(port: number | undefined): MtlsMode;
  policyFor(port: number | undefined): InboundPolicy;
}

/** Before a mesh wires its snapshot in: Istio's default (PERMISSIVE), no policy. */
const NO_INBOUND: InboundSecuritySource = { modeFor: () => 'PERMISSIVE', policyFor: () => EMPTY_INBOUND_POLICY };

/** One mesh's identity, policies and servers. */
export class MeshSecurity {
  /** The workload identity; undefined until {@link start}, and when no certificate source is configured. */
  identity: WorkloadIdentity | undefined;
  /** The Istio resources of the current embedded config (empty in control-plane mode); informational — policy is read from the snapshot. */
  resources: readonly unknown[] = [];
  /** AuthorizationPolicy enforcement (the snapshot's RBAC filters) for adapters outside the HTTP chain. */
  readonly authorization: MeshAuthorization;
  /** Remote JWKS keys of the inbound jwt_authn filters (RequestAuthentication jwksUri). */
  readonly jwks = new JwksCache();
  readonly trustDomain: string;
  private readonly inbound: InboundSecuritySource;

  /** The sidecar's request normalization, run before authorization (http/normalize-request via the mesh's inbound server). */
  private readonly normalize: ((req: object) => InboundLocalReply | undefined) | undefined;

  constructor(private readonly workload: SecurityWorkload, options: { trustDomain?: string; inbound?: InboundSecuritySource; normalize?: (req: object) => InboundLocalReply | undefined } = {}) {
    this.trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    this.normalize = options.normalize;
    const inbound = options.inbound ?? NO_INBOUND;
    this.inbound = inbound;
    this.authorization = new MeshAuthorization((port) => inbound.policyFor(port));
  }

  /** The workload's SPIFFE id. */
  get spiffeId(): string {
    return formatSpiffeId({ trustDomain: this.trustDomain, namespace: this.workload.namespace, serviceAccount: this.workload.serviceAccount ?? 'default' });
  }

  /**
   * Obtains the first certificate (awaited) and starts rotation: from
   * `certs`, `ca`, or else the xDS bootstrap's `default` certificate provider.
   */
  async start(options: MeshIdentityOptions, xdsServer?: string, clusterId?: string, provider?: FileWatcherProvider): Promise<void> {
    const td = this.trustDomain;
    if (options.certs) {
      this.identity = await certDirIdentity(options.certs.dir, { trustDomain: td });
    } else if (provider !== undefined && !options.ca) {
      // The bootstrap's `default` file_watcher (istio's grpc-agent writes key, chain and root there and rotates them).
      this.identity = await certDirIdentity(dirname(provider.certificateFile), {
        trustDomain: td, files: { certChain: provider.certificateFile, key: provider.privateKeyFile, root: provider.caCertificateFile },
      });
    } else if (options.ca && 'dir' in options.ca) {
      const ca = await openCaDir(options.ca.dir, { trustDomain: td });
      const ms = ttlMs(options.ca.ttl);
      this.identity = await identityFromCa(ca, this.spiffeId, ms !== undefined ? { ttlMs: ms } : {});
    } else if (options.ca) {
      const target = options.ca.server ?? xdsServer;
      if (target === undefined) throw new TypeError('ca.server is required without xds.server');
      const root = options.ca.root.includes('-----BEGIN') ? options.ca.root : readFileSync(options.ca.root, 'utf8');
      const ms = ttlMs(options.ca.ttl);
      const pin = options.ca.identity;
      const problem = pin === undefined ? undefined : pinProblem(pin);
      if (problem !== undefined) throw new MeshConfigError('MeshOptions', 'createMesh', 'ca.identity', problem);
      this.identity = await controlPlaneIdentity({
        target, root, spiffeId: this.spiffeId, trustDomain: td,
        ...(pin !== undefined && { serverIdentity: pin }),
        ...(options.ca.token !== undefined && { token: options.ca.token }),
        ...(options.ca.tokenFile !== undefined && { tokenFile: options.ca.tokenFile }),
        ...((options.ca.clusterId ?? clusterId) !== undefined && { clusterId: options.ca.clusterId ?? clusterId }),
        ...(ms !== undefined && { ttlMs: ms }),
      });
    }
  }

  /** Records the Istio resources of the embedded config in force (`mesh.resources`). */
  install(resources: readonly unknown[]): void {
    this.resources = resources;
  }

  /** The mode for connections to local `port`, from the snapshot's inbound filter chains. */
  modeFor(port: number | undefined): MtlsMode {
    return this.inbound.modeFor(port);
  }

  /**
   * An HTTP server speaking mTLS / TLS / plaintext per PeerAuthentication on
   * each port, normalizing the request as the sidecar does (method, path;
   * `req.url` rewritten) and enforcing AuthorizationPolicy (403 `RBAC: access
   * denied`) on the normalized request before `handler` runs. With `http2`, also HTTP/2 (ALPN h2 on TLS, h2c on
   * plaintext); the guard reads h2 requests the same way (`:authority` as host).
   */
  createServer(handler: AnyRequestListener, options: { http2?: boolean; timeouts?: ServerTimeouts; inbound?: InboundChain } = {}): MeshServer {
    const authz = this.authorization;
    const normalize = this.normalize;
    const serve = handler as MeshRequestListener;
    const inbound = options.inbound;
    // The mesh's inbound chain (telemetry, then normalization and every inbound filter, authorization
    // included) when given; else this server's own normalization and authorization guard.
    const guarded: MeshRequestListener = inbound !== undefined ? (req, res) => inbound(req, res, serve) : (req, res) => {
      // Http2ServerRequest has what these read: method, url (settable), headers, rawHeaders, socket (a proxy of the session's).
      const denied = normalize?.(req) ?? authz.authorizeHttp(req as IncomingMessage);
      if (denied === undefined) return serve(req, res);
      const headers: Record<string, string | number> = { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(denied.body), 'x-meshlet-flags': denied.flags };
      for (const [name, value] of denied.headers) headers[name] = value;
      (res as ServerResponse).writeHead(denied.status, headers);
      res.end(denied.body);
    };
    return createMeshServer(guarded, {
      identity: this.identity, modeFor: (port) => this.modeFor(port), trustDomain: this.trustDomain, http2: options.http2 === true,
      ...(options.timeouts !== undefined && { timeouts: options.timeouts }),
    });
  }

  /**
   * TLS options for a server the app builds (https, http2, Express, Fastify).
   * Default mode: STRICT when the workload's PeerAuthentication says so, else
   * PERMISSIVE (client certificate requested, not required).
   * @throws Error without an identity.
   */
  serverTls(options: { mode?: 'STRICT' | 'PERMISSIVE' } = {}): TlsOptions {
    if (this.identity === undefined) throw new Error('the mesh has no workload identity: createMesh({ certs | ca }) or a control-plane CA');
    return serverTlsOptions(this.identity, { mode: options.mode ?? (this.modeFor(undefined) === 'STRICT' ? 'STRICT' : 'PERMISSIVE') });
  }

  /**
   * Keeps an app-built TLS server in step with the identity (new certificate
   * on rotation) and refuses peers of another trust domain.
   */
  secure(server: { setSecureContext(options: TlsOptions): void; on(event: 'secureConnection', l: (s: TLSSocket) => void): unknown; off(event: 'secureConnection', l: (s: TLSSocket) => void): unknown }, options: { mode?: 'STRICT' | 'PERMISSIVE' } = {}): Disposable {
    const identity = this.identity;
    if (identity === undefined) throw new Error('the mesh has no workload identity');
    const trust = enforcePeerTrustDomain(server, this.trustDomain);
    const rotation = identity.onRotate((m) => server.setSecureContext(serverTlsOptions(m, { mode: options.mode ?? (this.modeFor(undefined) === 'STRICT' ? 'STRICT' : 'PERMISSIVE') })));
    return { dispose: () => { trust.dispose(); rotation.dispose(); } };
  }

  /** The caller's SPIFFE id for a request (or socket), when it authenticated with mTLS. */
  peerOf(req: IncomingMessage | { socket?: unknown } | TLSSocket): string | undefined {
    const socket = (req as { socket?: unknown }).socket ?? req;
    return peerIdentity(socket as Parameters<typeof peerIdentity>[0]);
  }

  /** Stops rotation / certificate watching. */
  async close(): Promise<void> {
    this.jwks.close();
    await this.identity?.close();
  }
}
