/**
 * Where the demo's services live: the mesh hosts the client calls, the
 * loopback ports the children actually listen on, and the ServiceEntries that
 * tell the client's mesh about them (generated at start, since ports are free
 * ports picked by the OS).
 */

/** The namespace every demo workload runs in. */
export const NAMESPACE = 'default';
/** The service port of calculate, db and image inside the mesh (like a Kubernetes Service port). */
export const SERVICE_PORT = 8000;

/** The calculate versions of the talk: v1 labels `version: cat-plus`, v2 `version: dog-multi`. */
export type CalculateVersion = 'cat-plus' | 'dog-multi';

/** The mesh host of a demo service (`calculate` → `calculate.default.svc.cluster.local`). */
export const meshHost = (service: MeshService): string => `${service}.${NAMESPACE}.svc.cluster.local`;

/** Every service the demo's mesh knows by name. */
export type MeshService = 'calculate' | 'db' | 'image' | 'client' | 'console' | 'ratelimit';

/** The rate-limit service's port inside the mesh (envoyproxy/ratelimit's gRPC port). */
export const RATELIMIT_PORT = 8081;

/** The client's port inside the mesh: the seed's Gateway routes port 80 → client:8080. */
export const CLIENT_PORT = 8080;
/** calculate's gRPC port inside the mesh (examples/grpc/calculate.proto). */
export const GRPC_PORT = 9000;

/** The label Istio puts on endpoints that run a sidecar: auto-mTLS sends them mTLS. */
const MTLS_LABEL = 'security.istio.io/tlsMode';

/** The base URL the client uses for a service; only the client's mesh can resolve it. */
export const meshUrl = (service: MeshService): string => `http://${meshHost(service)}:${service === 'client' ? CLIENT_PORT : SERVICE_PORT}`;

/** The running backends, as the client process receives them (env `DEMO_TOPOLOGY`, JSON). */
export interface Topology {
  /** Each version's HTTP port and, when it serves gRPC too, its gRPC port. */
  calculate: Array<{ version: CalculateVersion; port: number; grpcPort?: number; adminPort?: number }>;
  db: { port: number };
  image: { port: number };
  /** The client, once started (the gateway's backend). */
  client?: { port: number };
  /** The demo console (scenario API, graph, traces) in the demo's own process. */
  console?: { port: number };
  /** The global rate-limit service. */
  ratelimit?: { port: number };
  /** Whether the meshed services serve mTLS (endpoints labelled `security.istio.io/tlsMode: istio`). */
  mtls?: boolean;
}

interface EntryPort {
  name: string;
  number: number;
  protocol: 'HTTP' | 'GRPC';
}

interface EntryEndpoint {
  ports: Record<string, number>;
  labels: Record<string, string>;
}

function entry(name: MeshService | `calculate-${CalculateVersion}`, ports: EntryPort[], endpoints: EntryEndpoint[]): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ${name}
  namespace: ${NAMESPACE}
spec:
  hosts:
    - ${name}.${NAMESPACE}.svc.cluster.local
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
${ports.map((p) => `    - number: ${p.number}
      name: ${p.name}
      protocol: ${p.protocol}`).join('\n')}
  endpoints:
${endpoints.map((e) => `    - address: 127.0.0.1
      ports:
${Object.entries(e.ports).map(([k, v]) => `        ${k}: ${v}`).join('\n')}
      labels:
${Object.entries(e.labels).map(([k, v]) => `        ${k}: ${v}`).join('\n')}`).join('\n')}
`;
}

/**
 * ServiceEntries for the running backends (all, or `only` those named): what Kubernetes Services and
 * Endpoints would give Istio. Endpoint labels carry `version`, which the
 * scenarios' DestinationRule subsets select, and, with mTLS on, Istio's
 * `security.istio.io/tlsMode: istio`, which turns on auto-mTLS to them.
 */
export function serviceEntries(topology: Topology, only?: readonly MeshService[]): string {
  const http = (number = SERVICE_PORT): EntryPort => ({ name: 'http', number, protocol: 'HTTP' });
  const meshed = (labels: Record<string, string>): Record<string, string> => (topology.mtls ? { ...labels, [MTLS_LABEL]: 'istio' } : labels);
  const calculatePorts = topology.calculate.some((c) => c.grpcPort !== undefined) ? [http(), { name: 'grpc', number: GRPC_PORT, protocol: 'GRPC' } as EntryPort] : [http()];
  const all: Array<[MeshService, string | undefined]> = [
    ['calculate', entry('calculate', calculatePorts, topology.calculate.map((c) => ({
      ports: { http: c.port, ...(c.grpcPort !== undefined && { grpc: c.grpcPort }) },
      labels: meshed({ app: 'calculate', version: c.version }),
    })))],
    // One Service per version, as Istio's samples (bookinfo-versions.yaml) give Gateway API routes their backends.
    ...topology.calculate.map((c): [MeshService, string] => ['calculate', entry(`calculate-${c.version}`, calculatePorts, [{
      ports: { http: c.port, ...(c.grpcPort !== undefined && { grpc: c.grpcPort }) },
      labels: meshed({ app: 'calculate', version: c.version }),
    }])]),
    ['db', entry('db', [http()], [{ ports: { http: topology.db.port }, labels: meshed({ app: 'db', version: 'v1' }) }])],
    ['image', entry('image', [http()], [{ ports: { http: topology.image.port }, labels: meshed({ app: 'image', version: 'v1' }) }])],
    ['client', topology.client && entry('client', [http(CLIENT_PORT)], [{ ports: { http: topology.client.port }, labels: meshed({ app: 'client', version: 'v1' }) }])],
    ['console', topology.console && entry('console', [http()], [{ ports: { http: topology.console.port }, labels: { app: 'console' } }])],
    ['ratelimit', topology.ratelimit && entry('ratelimit', [{ name: 'grpc', number: RATELIMIT_PORT, protocol: 'GRPC' }], [{ ports: { grpc: topology.ratelimit.port }, labels: { app: 'ratelimit' } }])],
  ];
  return '# Generated by the demo at start: the loopback ports of the running services.\n'
    + all.filter(([name, doc]) => doc !== undefined && (!only || only.includes(name))).map(([, doc]) => doc).join('---\n');
}

/**
 * The seed's ingress: a Gateway on port 80 for every host, and the
 * VirtualService bound to it. `/console/…`, `/metrics` and `/api/scenarios`
 * go to the demo console, everything else to client:8080.
 */
export const GATEWAY_CONFIG = `# The ingress gateway (the seed's Gateway + VirtualService: port 80 → client:8080).
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: client-gateway
  namespace: ${NAMESPACE}
spec:
  selector:
    istio: ingressgateway
  servers:
    - port:
        number: 80
        name: http
        protocol: HTTP
      hosts:
        - "*"
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: client-gateway
  namespace: ${NAMESPACE}
spec:
  hosts:
    - "*"
  gateways:
    - client-gateway
  http:
    - name: console
      match:
        - uri:
            prefix: /console/
        - uri:
            exact: /console
        - uri:
            prefix: /metrics
        - uri:
            prefix: /api/scenarios
      route:
        - destination:
            host: ${meshHost('console')}
            port:
              number: ${SERVICE_PORT}
    - name: client
      route:
        - destination:
            host: ${meshHost('client')}
            port:
              number: ${CLIENT_PORT}
`;

/** Everything the demo's mesh always has: the generated ServiceEntries and the ingress Gateway routes. */
export function platformConfig(topology: Topology, only?: readonly MeshService[]): string {
  return `${serviceEntries(topology, only)}---\n${GATEWAY_CONFIG}`;
}
