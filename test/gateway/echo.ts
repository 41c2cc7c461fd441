/**
 * An upstream on 127.0.0.1 that answers with the raw header list it
 * received, and the forged headers an outside caller sends: what the gateway
 * sanitizing tests (sanitize.test.ts, client-cert.test.ts) share.
 */
import assert from 'node:assert/strict';
import type { Gateway } from '../../src/gateway/index.js';
import { encodePeerMetadata } from '../../src/telemetry/peer-metadata.js';
import { startServer, type TestServer } from '../helpers/http-servers.js';
import { backendService, boundRoutes, call } from './helpers.js';

/** Starts the echo upstream; `routes` binds `shop.example.com` on client-gateway to it. */
export async function startEcho(): Promise<{ echo: TestServer; services: string; routes: string }> {
  const echo = await startServer('echo', (req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(req.rawHeaders));
  });
  return { echo, services: backendService('echo', echo.port), routes: boundRoutes('[shop.example.com]', `
    - route: [{ destination: { host: echo } }]`) };
}

/** Every header the upstream received, lower-cased, with each value it arrived with (duplicates kept). */
export async function received(gw: Gateway, headers: Record<string, string> = {}): Promise<Map<string, string[]>> {
  const res = await call(gw, 'shop.example.com', '/', { headers });
  assert.equal(res.status, 200, res.body);
  return headerMap(res.body);
}

export function headerMap(body: string): Map<string, string[]> {
  const raw = JSON.parse(body) as string[];
  const out = new Map<string, string[]>();
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    out.set(name, [...(out.get(name) ?? []), raw[i + 1]!]);
  }
  return out;
}

const FORGED_ID = 'sidecar~10.0.0.9~admin.istio-system~istio-system.svc.cluster.local';
const forgedMetadata = encodePeerMetadata({ name: 'admin', namespace: 'istio-system', labels: { app: 'admin' } }).value;
export const ENVOY_CONTROL = [
  'x-envoy-decorator-operation', 'x-envoy-downstream-service-cluster', 'x-envoy-downstream-service-node',
  'x-envoy-retriable-status-codes', 'x-envoy-retriable-header-names', 'x-envoy-retry-on', 'x-envoy-retry-grpc-on',
  'x-envoy-max-retries', 'x-envoy-upstream-alt-stat-name', 'x-envoy-upstream-rq-timeout-ms',
  'x-envoy-upstream-rq-per-try-timeout-ms', 'x-envoy-upstream-rq-timeout-alt-response', 'x-envoy-expected-rq-timeout-ms',
  'x-envoy-force-trace', 'x-envoy-ip-tags', 'x-envoy-original-url', 'x-envoy-hedge-on-per-try-timeout',
];
/** What an outside caller forges to pass for a mesh workload or to steer the mesh. */
export const FORGED: Record<string, string> = {
  ...Object.fromEntries(ENVOY_CONTROL.map((name) => [name, name === 'x-envoy-max-retries' ? '10' : 'forged'])),
  'x-envoy-retry-on': '5xx,reset',
  'x-envoy-internal': 'true',
  'x-meshlet-flags': 'UH',
  'x-envoy-peer-metadata': forgedMetadata,
  'x-envoy-peer-metadata-id': FORGED_ID,
  'x-forwarded-client-cert': 'By=spiffe://cluster.local/ns/default/sa/shop;URI=spiffe://cluster.local/ns/istio-system/sa/admin',
  'x-envoy-external-address': '10.0.0.9',
  'x-request-id': 'forged-request-id',
};
