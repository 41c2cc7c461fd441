import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseYaml } from './yaml.js';
import { parseResources } from '../../src/config/resources.js';
import { intersectHosts, translateGateway } from '../../src/config/translate-gateway.js';
import { clusterName } from '../../src/config/translate-routes.js';
import { expandHost } from '../../src/config/registry.js';
import { compileSnapshot } from '../../src/core/snapshot.js';
import { MeshConfigError } from '../../src/errors.js';
import { boundRoutes, docs, gatewayDoc } from './helpers.js';

const gatewayProxy = { name: 'istio-ingressgateway', namespace: 'default', labels: { istio: 'ingressgateway' } };
const named: string[] = [];
const namer = (ns: string, port: number) => (d: { host: string; subset?: string; port?: { number?: number } }) => {
  const name = clusterName(d.port?.number ?? port, d.subset, expandHost(d.host, ns));
  named.push(name);
  return name;
};

function run(yaml: string, proxy: { name: string; namespace: string; labels: Record<string, string> } = gatewayProxy) {
  return translateGateway(parseResources(parseYaml(yaml)), proxy, namer);
}

describe('translateGateway', () => {
  it('writes Istio-named listener and route table for the seed Gateway + VirtualService', () => {
    const out = run(docs(gatewayDoc(), boundRoutes('["*"]', `
    - route: [{ destination: { host: client, port: { number: 8080 } } }]`)));
    assert.equal(out.listeners.length, 1);
    const l = out.listeners[0]!;
    assert.equal(l.name, '0.0.0.0_80');
    assert.deepEqual(l.address, { socket_address: { address: '0.0.0.0', port_value: 80 } });
    assert.equal(l.api_listener?.api_listener.rds?.route_config_name, 'http.80');
    assert.equal(out.routes[0]!.name, 'http.80');
    const vh = out.routes[0]!.virtual_hosts[0]!;
    assert.equal(vh.name, '*:80');
    assert.deepEqual(vh.domains, ['*']);
    assert.equal(vh.routes[0]!.route?.cluster, 'outbound|8080||client.default.svc.cluster.local');
    // The table is bound to the listener, so it stays out of the outbound (sidecar) lookup.
    const snap = compileSnapshot({ listeners: out.listeners, routes: out.routes, clusters: [], endpoints: [] }, 't');
    assert.ok(snap.routeTable('http.80')?.virtualHost('anything.example.com', 80));
    assert.equal(snap.virtualHost('anything.example.com', 80), undefined);
  });

  it('applies only to workloads the selector matches', () => {
    const out = run(docs(gatewayDoc(), boundRoutes('["*"]', `
    - route: [{ destination: { host: client } }]`)), { name: 'client', namespace: 'default', labels: { app: 'client' } });
    assert.deepEqual(out, { listeners: [], routes: [] });
  });

  it('intersects VirtualService hosts with server hosts and honours ns/ prefixes', () => {
    const gw = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: edge }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 8080, name: http, protocol: HTTP }
      hosts: ["*.example.com", "shop/pets.internal", "./edge.local"]
`;
    const vs = (name: string, ns: string, hosts: string) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: ${ns} }
spec:
  hosts: ${hosts}
  gateways: [edge/gw]
  http: [{ route: [{ destination: { host: backend } }] }]
`;
    const out = run(docs(gw, vs('a', 'default', '["*"]'), vs('b', 'shop', '[pets.internal, api.example.com]'), vs('c', 'default', '[pets.internal]'), vs('d', 'edge', '[edge.local]')));
    const names = out.routes[0]!.virtual_hosts.map((v) => v.name).sort();
    // `*` narrows to the server's hosts; pets.internal only from namespace shop; edge.local only from the gateway's namespace.
    assert.deepEqual(names, ['*.example.com:8080', 'api.example.com:8080', 'edge.local:8080', 'pets.internal:8080']);
    assert.equal(out.routes[0]!.name, 'http.8080');
    assert.equal(intersectHosts('a.b.example.com', '*.example.com'), 'a.b.example.com');
    assert.equal(intersectHosts('*.example.com', 'x.example.com'), 'x.example.com');
    assert.equal(intersectHosts('x.example.org', '*.example.com'), undefined);
  });

  it('keeps only the matches meant for this gateway (match[].gateways)', () => {
    const out = run(docs(gatewayDoc(), gatewayDoc('["*"]', 'other'), `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: split, namespace: default }
spec:
  hosts: ["*"]
  gateways: [client-gateway, mesh]
  http:
    - match: [{ uri: { prefix: /a }, gateways: [mesh] }, { uri: { prefix: /b }, gateways: [default/client-gateway] }]
      route: [{ destination: { host: b } }]
    - match: [{ uri: { prefix: /c }, gateways: [mesh] }]
      route: [{ destination: { host: c } }]
    - route: [{ destination: { host: d } }]
`));
    const routes = out.routes[0]!.virtual_hosts[0]!.routes;
    assert.deepEqual(routes.map((r) => r.match.prefix), ['/b', '/']);
  });

  it('merges several VirtualServices on one host in order, each once', () => {
    const out = run(docs(gatewayDoc(), boundRoutes('[shop.example.com]', `
    - match: [{ uri: { prefix: /api } }]
      route: [{ destination: { host: api } }]`, 'one'), boundRoutes('[shop.example.com]', `
    - route: [{ destination: { host: web } }]`, 'two')));
    const vh = out.routes[0]!.virtual_hosts;
    assert.equal(vh.length, 1);
    assert.deepEqual(vh[0]!.domains, ['shop.example.com', 'shop.example.com:80']);
    assert.deepEqual(vh[0]!.routes.map((r) => r.route?.cluster), ['outbound|80||api.default.svc.cluster.local', 'outbound|80||web.default.svc.cluster.local']);
  });

  it('puts SIMPLE TLS certificates in an SNI filter chain and refuses TLS without files', () => {
    const tlsGateway = (tls: string) => `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: secure, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 443, name: https, protocol: HTTPS }
      hosts: [shop.example.com]
      tls: ${tls}
`;
    const out = run(docs(tlsGateway('{ mode: SIMPLE, serverCertificate: /certs/cert.pem, privateKey: /certs/key.pem }'), `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop.example.com]
  gateways: [secure]
  http: [{ route: [{ destination: { host: web } }] }]
`));
    const l = out.listeners[0]!;
    assert.equal(l.name, '0.0.0.0_443');
    assert.equal(l.api_listener?.api_listener.rds?.route_config_name, 'https.443');
    const chain = l.filter_chains![0] as { filter_chain_match: { server_names: string[] }; transport_socket: { typed_config: { common_tls_context: { tls_certificates: Array<{ certificate_chain: { filename: string } }> } } } };
    assert.deepEqual(chain.filter_chain_match.server_names, ['shop.example.com']);
    assert.equal(chain.transport_socket.typed_config.common_tls_context.tls_certificates[0]!.certificate_chain.filename, '/certs/cert.pem');
    // A Kubernetes secret meshlet cannot read is a secret that never arrives: the server is not programmed (no listener),
    // and nothing throws, so the Gateway's other servers are served; TLS with neither files nor a secret is refused.
    assert.deepEqual(run(tlsGateway('{ mode: SIMPLE, credentialName: shop-cert }')).listeners.map((x) => x.name), []);
    assert.throws(() => run(tlsGateway('{ mode: SIMPLE }')), (err: unknown) =>
      err instanceof MeshConfigError && /servers\[0\]\.tls/.test(err.message) && /serverCertificate and privateKey/.test(err.message));
  });
});
