/**
 * Compile-time benchmark: 1,000 VirtualServices over 1,000 services with
 * 10,000 endpoints in all — parse + translate + compile — and the cost of one
 * route lookup in the compiled snapshot.
 */
import { parseResources } from '../src/config/resources.js';
import { translate } from '../src/config/translate.js';
import { compileSnapshot } from '../src/core/snapshot.js';
import { matches } from '../src/core/router.js';

export function benchCompile(): void {
  const docs: object[] = [];
  for (let s = 0; s < 1000; s++) {
    const host = `svc${s}.default.svc.cluster.local`;
    docs.push({
      apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: `svc${s}`, namespace: 'default' },
      spec: { hosts: [host], ports: [{ number: 8000, name: 'http' }], resolution: 'STATIC', endpoints: Array.from({ length: 10 }, (_, e) => ({ address: `10.${s >> 8}.${s & 255}.${e + 1}`, labels: { version: e % 2 ? 'v1' : 'v2' } })) },
    }, {
      apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: `svc${s}`, namespace: 'default' },
      spec: { host, subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] },
    }, {
      apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: `svc${s}`, namespace: 'default' },
      spec: { hosts: [host], http: [
        { match: [{ headers: { version: { exact: 'dog' } } }], route: [{ destination: { host, subset: 'v2' } }] },
        { match: [{ uri: { prefix: '/api' } }], timeout: '2s', route: [{ destination: { host, subset: 'v1' }, weight: 90 }, { destination: { host, subset: 'v2' }, weight: 10 }] },
        { route: [{ destination: { host, subset: 'v1' } }] },
      ] },
    });
  }
  const t0 = performance.now();
  const resources = parseResources(docs);
  const t1 = performance.now();
  const envoy = translate(resources, { name: 'bench', namespace: 'default', labels: {} });
  const t2 = performance.now();
  const snapshot = compileSnapshot(envoy, 'bench');
  const t3 = performance.now();
  const endpoints = envoy.endpoints.reduce((n, e) => n + (e.endpoints[0]?.lb_endpoints.length ?? 0), 0);

  const view = { method: 'GET', path: '/api/add', query: '', header: (name: string) => (name === 'version' ? 'cat' : undefined) };
  const n = 1_000_000;
  let found = 0;
  const l0 = performance.now();
  for (let i = 0; i < n; i++) {
    const vhost = snapshot.virtualHost(`svc${i % 1000}.default.svc.cluster.local`, 8000)!;
    for (const route of vhost.routes) if (matches(route.match, view)) { found++; break; }
  }
  const lookupNs = ((performance.now() - l0) * 1e6) / n;
  console.log(`compile: 1,000 VirtualServices, ${snapshot.clusters.size} clusters, ${endpoints} endpoint entries (10,000 workload endpoints)`);
  console.log(`  validate ${(t1 - t0).toFixed(0)} ms + translate ${(t2 - t1).toFixed(0)} ms + compile ${(t3 - t2).toFixed(0)} ms = ${(t3 - t0).toFixed(0)} ms (target < 200 ms)`);
  console.log(`  route lookup (host → virtual host → first matching route of 3): ${lookupNs.toFixed(0)} ns (target < 2 µs), ${found} found`);
}
