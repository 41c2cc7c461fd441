/**
 * Gateway test helpers: the seed-style config (Gateway + VirtualService bound
 * to it + ServiceEntries for loopback backends) and a gateway started on a
 * free port that serves the Gateway's port-80 routes.
 */
import { request } from 'undici';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway/index.js';

/** A ServiceEntry `<name>.default.svc.cluster.local:8080` whose one endpoint is a loopback port. */
export function backendService(name: string, port: number): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: default }
spec:
  hosts: [${name}.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${port} }, labels: { app: ${name} } }]
`;
}

/** The seed's Gateway: port 80, HTTP, the given hosts, on the default ingress gateway. */
export function gatewayDoc(hosts = '["*"]', name = 'client-gateway'): string {
  return `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: ${name}, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 80, name: http, protocol: HTTP }
      hosts: ${hosts}
`;
}

/** A VirtualService bound to `client-gateway` with the given http routes (YAML under `http:`). */
export function boundRoutes(hosts: string, http: string, name = 'client'): string {
  return `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: default }
spec:
  hosts: ${hosts}
  gateways: [client-gateway]
  http:
${http}
`;
}

export const docs = (...parts: string[]): string => parts.join('\n---\n');

/** Starts a gateway on a free port serving the Gateway's port 80. */
export async function startGateway(config: string, options: GatewayOptions = {}): Promise<Gateway> {
  const gw = await createGateway({ config, port: 0, serverPort: 80, ...options });
  return gw;
}

/** One request to the gateway with a Host header; the body as text. */
export async function call(gw: Gateway, host: string, path = '/', init: { method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: unknown } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const res = await request(`http://127.0.0.1:${gw.port}${path}`, {
    method: init.method ?? 'GET',
    headers: { host, ...init.headers },
    body: init.body as string | undefined,
  });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}
