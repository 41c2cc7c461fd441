/**
 * A scripted ADS server for client tests: records every DiscoveryRequest and
 * lets the test send responses with exact versions and nonces.
 */
import * as grpc from '@grpc/grpc-js';
import { loadGrpcPackage, encodeAny } from '../../src/xds/protos.js';
import { TYPE_URL, type EnvoyResources } from '../../src/config/envoy.js';

export interface RecordedRequest {
  version_info?: string;
  node?: { id?: string; cluster?: string; metadata?: { fields?: Record<string, Record<string, unknown>> } };
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

export interface FakeAdsServer {
  port: number;
  requests: RecordedRequest[];
  /** Number of streams opened so far. */
  streams: number;
  /** Sends a response on the newest stream. */
  respond(typeUrl: string, version: string, nonce: string, resources: object[]): void;
  /** Waits for a request matching `pred` (from index `from` on). */
  next(pred: (r: RecordedRequest) => boolean, from?: number, timeoutMs?: number): Promise<RecordedRequest>;
  close(): void;
}

/** Starts the fake server on 127.0.0.1 (a given port lets a test "restart" it). */
export async function startFakeAds(port = 0): Promise<FakeAdsServer> {
  const pkg = loadGrpcPackage(['envoy/service/discovery/v3/ads.proto']) as unknown as {
    envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: grpc.ServiceClientConstructor } } } };
  };
  const server = new grpc.Server();
  let current: grpc.ServerDuplexStream<RecordedRequest, unknown> | undefined;
  const waiters = new Set<() => void>();
  const state: FakeAdsServer = {
    port: 0,
    requests: [],
    streams: 0,
    respond(typeUrl, version, nonce, resources) {
      current!.write({ version_info: version, type_url: typeUrl, nonce, resources: resources.map((r) => encodeAny(typeUrl, r)) });
    },
    async next(pred, from = 0, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = state.requests.slice(from).find(pred);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no matching request; got ${JSON.stringify(state.requests.map((r) => [r.type_url?.split('.').pop(), r.version_info, r.response_nonce, r.resource_names]))}`);
        await new Promise<void>((resolve) => { const t = setTimeout(resolve, 20); waiters.add(() => { clearTimeout(t); resolve(); }); });
      }
    },
    close() {
      current?.end();
      server.forceShutdown();
    },
  };
  server.addService(pkg.envoy.service.discovery.v3.AggregatedDiscoveryService.service, {
    StreamAggregatedResources: (call: grpc.ServerDuplexStream<RecordedRequest, unknown>) => {
      current = call;
      state.streams++;
      call.on('data', (req: RecordedRequest) => {
        state.requests.push(req);
        for (const w of waiters) w();
        waiters.clear();
      });
      call.on('error', () => {});
      call.on('end', () => call.end());
    },
    DeltaAggregatedResources: () => {},
  });
  state.port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return state;
}

/**
 * Answers a client's initial exchange as gRFC A27 orders it: LDS, then RDS,
 * CDS and EDS each once the client names what it needs (nonces `<tag>-l`,
 * `-r`, `-c`, `-e`, all at `version`). Does not wait for the final ACKs.
 */
export async function serveChain(server: FakeAdsServer, resources: EnvoyResources, version = '1', tag = 'init', timeoutMs = 30_000): Promise<void> {
  const named = (url: string) => (r: RecordedRequest) => r.type_url === url && (r.resource_names?.length ?? 0) > 0;
  await server.next((r) => r.type_url === TYPE_URL.listener, 0, timeoutMs);
  server.respond(TYPE_URL.listener, version, `${tag}-l`, resources.listeners);
  await server.next(named(TYPE_URL.route), 0, timeoutMs);
  server.respond(TYPE_URL.route, version, `${tag}-r`, resources.routes);
  await server.next(named(TYPE_URL.cluster), 0, timeoutMs);
  server.respond(TYPE_URL.cluster, version, `${tag}-c`, resources.clusters);
  await server.next(named(TYPE_URL.endpoint), 0, timeoutMs);
  server.respond(TYPE_URL.endpoint, version, `${tag}-e`, resources.endpoints);
}

/** A minimal consistent set: one api_listener → one route → one EDS cluster → one endpoint. */
export function sampleResources(opts: { cluster?: string; port?: number; weightsZero?: boolean } = {}): EnvoyResources {
  const name = 'calculate.default.svc.cluster.local:9000';
  const cluster = opts.cluster ?? 'outbound|9000||calculate.default.svc.cluster.local';
  return {
    listeners: [{
      name,
      api_listener: {
        api_listener: {
          '@type': TYPE_URL.httpConnectionManager,
          rds: { route_config_name: name, config_source: { ads: {} } },
          http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': TYPE_URL.router } }],
        },
      },
    }],
    routes: [{
      name,
      virtual_hosts: [{
        name,
        domains: ['calculate.default.svc.cluster.local', name],
        routes: [opts.weightsZero
          ? { match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: cluster, weight: { value: 0 } }] } } }
          : { match: { prefix: '/' }, route: { cluster } }],
      }],
    }],
    clusters: [{ name: cluster, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} }, service_name: cluster } }],
    endpoints: [{
      cluster_name: cluster,
      endpoints: [{ locality: {}, load_balancing_weight: { value: 1 }, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: opts.port ?? 8080 } } } }] }],
    }],
  };
}
