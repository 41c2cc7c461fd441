/**
 * YAML builders for tests: the seed's calculate service with two versions
 * (cat-plus / dog-multi) on real loopback ports.
 */

/**
 * A ServiceEntry for `<name>.default.svc.cluster.local` with one loopback
 * endpoint per given version, on an HTTP or gRPC service port.
 */
export function meshService(name: string, endpoints: ReadonlyArray<{ port: number; version: string }>, servicePort: number, protocol: 'HTTP' | 'GRPC'): string {
  const portName = protocol.toLowerCase();
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: default }
spec:
  hosts: [${name}.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${servicePort}, name: ${portName}, protocol: ${protocol} }]
  endpoints:
${endpoints.map((e) => `    - { address: 127.0.0.1, ports: { ${portName}: ${e.port} }, labels: { app: ${name}, version: ${e.version} } }`).join('\n')}
`;
}

/** The rate-limit service as the mesh knows it: ratelimit.default.svc.cluster.local:8081 (gRPC), one loopback endpoint. */
export function ratelimitService(port: number): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ratelimit, namespace: default }
spec:
  hosts: [ratelimit.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8081, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.1, ports: { grpc: ${port} } }]
`;
}

/** A ServiceEntry for calculate with one endpoint per given version. */
export function calculateService(endpoints: Array<{ port: number; version: string }>, servicePort = 8000): string {
  return meshService('calculate', endpoints, servicePort, 'HTTP');
}

/** The seed's DestinationRule with subsets cat-with-plus and dog-with-multi. */
export const calculateSubsets = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: calculate, namespace: default }
spec:
  host: calculate
  subsets:
    - { name: cat-with-plus, labels: { version: cat-plus } }
    - { name: dog-with-multi, labels: { version: dog-multi } }
`;

/** A VirtualService for calculate with the given http routes (YAML, indented under `http:`). */
export function calculateRoutes(http: string): string {
  return `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: calculate, namespace: default }
spec:
  hosts: [calculate]
  http:
${http}
`;
}

export const docs = (...parts: string[]): string => parts.join('\n---\n');
