/**
 * A replayed istiod: serves test/fixtures/istiod/bookinfo.json over ADS
 * (State of the World) the way istiod's grpc generator and stream rules do,
 * read from istio/istio 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c:
 *
 * - pkg/xds/server.go ShouldRespond: a NACK (error_detail) gets no response;
 *   an empty RDS/EDS request unsubscribes; the first request of a type (no
 *   nonce) is answered; a stale nonce is ignored; an ACK with the same names
 *   is not answered; for RDS/EDS only added names are, for LDS/CDS any change;
 * - grpcgen/lds.go: wildcard LDS → every outbound listener (named host:port);
 *   named LDS → those names, short names expanded (tryFindFQDN), a bare host
 *   for all its ports, `xds.istio.io/grpc/lds/inbound/<ip>:<port>` → the
 *   inbound listener for a port the workload serves;
 * - grpcgen/rds.go, cds.go: by name only; CDS without names builds nothing;
 * - EDS (pilot/pkg/xds/eds.go): by name; pod IPs are mapped to the loopback
 *   servers the test runs (the test plays the Kubernetes registry).
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { TYPE_URL } from '../../src/config/envoy.js';
import { encodeAny, loadGrpcPackage } from '../../src/xds/protos.js';

const INBOUND_PREFIX = 'xds.istio.io/grpc/lds/inbound/';
const WILDCARD_TYPES = new Set<string>([TYPE_URL.listener, TYPE_URL.cluster]);

interface Fixture {
  namespace: string;
  listeners: Array<Record<string, unknown> & { name: string }>;
  inboundListeners: Array<Record<string, unknown> & { name: string; address: { socket_address: { port_value: number } } }>;
  routes: Array<Record<string, unknown> & { name: string }>;
  clusters: Array<Record<string, unknown> & { name: string }>;
  endpoints: Array<{ cluster_name: string; endpoints: Array<{ lb_endpoints: Array<{ endpoint: { address: { socket_address: { address: string; port_value: number } } } }> }> }>;
}

/** Every DiscoveryRequest the fake saw. */
export interface SeenRequest {
  type_url: string;
  resource_names: string[];
  response_nonce: string;
  version_info: string;
  error_detail?: { message?: string };
  node?: { id?: string; metadata?: unknown };
}

export interface FakeIstiod {
  port: number;
  requests: SeenRequest[];
  /** What it answered: type → resource names, in order. */
  responses: Array<{ type_url: string; names: string[] }>;
  close(): Promise<void>;
}

interface Watch { names: Set<string>; nonceSent: string }

/** Loads the fixture. */
export function loadBookinfo(): Fixture {
  return JSON.parse(readFileSync(new URL('../fixtures/istiod/bookinfo.json', import.meta.url), 'utf8')) as Fixture;
}

/**
 * Starts the fake on 127.0.0.1. `pods` maps a fixture pod IP to the loopback
 * port of the server playing that pod.
 */
export async function startFakeIstiod(pods: Record<string, number>, fixture = loadBookinfo()): Promise<FakeIstiod> {
  const pkg = loadGrpcPackage(['envoy/service/discovery/v3/ads.proto']) as unknown as {
    envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: grpc.ServiceClientConstructor } } } };
  };
  const server = new grpc.Server();
  const state: FakeIstiod = { port: 0, requests: [], responses: [], close: async () => undefined };
  const streams = new Set<grpc.ServerDuplexStream<unknown, unknown>>();
  let nonce = 0;

  const generate = (typeUrl: string, names: string[]): Array<Record<string, unknown>> => {
    switch (typeUrl) {
      case TYPE_URL.listener: return listenersFor(fixture, names);
      case TYPE_URL.route: return fixture.routes.filter((r) => names.includes(r.name));
      // grpcgen/cds.go BuildClusters: only the names asked for ("did not generate any cds … no names provided")
      case TYPE_URL.cluster: return fixture.clusters.filter((c) => names.includes(c.name));
      case TYPE_URL.endpoint: return fixture.endpoints.filter((e) => names.includes(e.cluster_name)).map((e) => withPods(e, pods));
      default: return [];
    }
  };

  server.addService(pkg.envoy.service.discovery.v3.AggregatedDiscoveryService.service, {
    StreamAggregatedResources: (call: grpc.ServerDuplexStream<SeenRequest, unknown>) => {
      streams.add(call);
      const watches = new Map<string, Watch>();
      const respond = (typeUrl: string, names: string[]) => {
        const resources = generate(typeUrl, names);
        const n = `${++nonce}`;
        watches.get(typeUrl)!.nonceSent = n;
        state.responses.push({ type_url: typeUrl, names: resources.map((r) => String(r.name ?? r.cluster_name)) });
        call.write({ version_info: '2026-12-02T00:00:00Z/1', type_url: typeUrl, nonce: n, resources: resources.map((r) => encodeAny(typeUrl, r)) });
      };
      call.on('data', (req: SeenRequest) => {
        const r: SeenRequest = { ...req, resource_names: req.resource_names ?? [], response_nonce: req.response_nonce ?? '', version_info: req.version_info ?? '' };
        state.requests.push(r);
        const should = shouldRespond(watches, r);
        if (should) respond(r.type_url, [...watches.get(r.type_url)!.names]);
      });
      call.on('error', () => undefined);
      call.on('end', () => call.end());
      call.on('close', () => streams.delete(call));
    },
    DeltaAggregatedResources: (call: grpc.ServerDuplexStream<unknown, unknown>) => call.emit('error', { code: grpc.status.UNIMPLEMENTED }),
  });
  state.port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  state.close = async () => {
    for (const s of streams) s.end();
    server.forceShutdown();
  };
  return state;
}

/** pkg/xds/server.go ShouldRespond, per stream. */
function shouldRespond(watches: Map<string, Watch>, req: SeenRequest): boolean {
  if (req.error_detail) return false;
  const wildcardType = WILDCARD_TYPES.has(req.type_url);
  if (req.resource_names.length === 0 && !wildcardType) {
    watches.delete(req.type_url);
    return false;
  }
  const previous = watches.get(req.type_url);
  if (req.response_nonce === '' || !previous) {
    watches.set(req.type_url, { names: new Set(req.resource_names), nonceSent: '' });
    return true;
  }
  if (req.response_nonce !== previous.nonceSent) return false;
  const cur = new Set(req.resource_names);
  const added = [...cur].filter((n) => !previous.names.has(n));
  const removed = [...previous.names].filter((n) => !cur.has(n));
  previous.names = cur;
  if (added.length === 0 && removed.length === 0) return false;
  if (!wildcardType && added.length === 0) return false;
  return true;
}

/** grpcgen/lds.go BuildListeners with newListenerNameFilter. */
function listenersFor(fixture: Fixture, names: string[]): Array<Record<string, unknown>> {
  if (names.length === 0) return fixture.listeners;
  const out: Array<Record<string, unknown>> = [];
  for (const name of names) {
    if (name.startsWith(INBOUND_PREFIX)) {
      const port = Number(name.slice(name.lastIndexOf(':') + 1));
      const inbound = fixture.inboundListeners.find((l) => l.address.socket_address.port_value === port);
      // "has no service instance for port": nothing for that name
      if (inbound) out.push({ ...inbound, name });
      continue;
    }
    const colon = name.lastIndexOf(':');
    const hasPort = colon > 0 && /^\d+$/.test(name.slice(colon + 1));
    const requested = hasPort ? name.slice(0, colon) : name;
    const host = tryFindFqdn(requested, fixture.namespace) ?? requested;
    for (const l of fixture.listeners) {
      const [lhost, lport] = [l.name.slice(0, l.name.lastIndexOf(':')), l.name.slice(l.name.lastIndexOf(':') + 1)];
      if (lhost !== host || (hasPort && lport !== name.slice(colon + 1))) continue;
      // "we must duplicate the listener for every requested host": named as asked
      out.push({ ...l, name: `${requested}:${lport}` });
    }
  }
  return out;
}

/** grpcgen/lds.go tryFindFQDN. */
function tryFindFqdn(name: string, namespace: string): string | undefined {
  const domain = `${namespace}.svc.cluster.local`;
  if (!name.includes('.')) return `${name}.${domain}`;
  for (const suffix of [namespace, `${namespace}.svc`]) {
    if (name.endsWith(`.${suffix}`)) return `${name.slice(0, -suffix.length - 1)}.${domain}`;
  }
  return undefined;
}

function withPods(cla: Fixture['endpoints'][number], pods: Record<string, number>): Record<string, unknown> {
  const copy = structuredClone(cla);
  for (const group of copy.endpoints) {
    for (const lb of group.lb_endpoints) {
      const sa = lb.endpoint.address.socket_address;
      const port = pods[sa.address];
      if (port === undefined) continue;
      sa.address = '127.0.0.1';
      sa.port_value = port;
    }
  }
  return copy as unknown as Record<string, unknown>;
}
