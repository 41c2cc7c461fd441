/**
 * Sidecar scoping as istiod applies it (pilot/pkg/model/sidecar.go,
 * push_context.go getSidecarScope): which Sidecar selects a workload, what its
 * egress hosts make visible, and the outboundTrafficPolicy it sets — checked
 * on the translation and end to end over a real server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseYaml } from '../../src/config/load.js';
import { parseResources } from '../../src/config/resources.js';
import { sidecarFor } from '../../src/config/sidecar.js';
import { translate } from '../../src/config/translate.js';
import { createMesh, MeshConfigError } from '../../src/index.js';
import { startServer, type TestServer } from '../helpers/http-servers.js';

const se = (name: string, ns: string, port = 80, address = '10.0.0.1') => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: ${ns} }
spec:
  hosts: [${name}.${ns}.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }]
  endpoints: [{ address: ${address}, ports: { http: ${port} } }]
`;
const sidecar = (name: string, ns: string, spec: string) => `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: ${name}, namespace: ${ns} }
spec: ${spec}
`;
const resources = (...docs: string[]) => parseResources(parseYaml(docs.join('\n---\n'), 'x.yaml'));

describe('Sidecar selection and egress hosts', () => {
  const all = [se('cart', 'shop'), se('pay', 'billing'), se('log', 'istio-system')];

  it('the namespace Sidecar matching the labels wins over the one without a selector, which wins over istio-system\'s', () => {
    const rs = resources(...all,
      sidecar('root', 'istio-system', '{ egress: [{ hosts: ["istio-system/*"] }] }'),
      sidecar('default', 'shop', '{ egress: [{ hosts: ["./*"] }] }'),
      sidecar('web', 'shop', '{ workloadSelector: { labels: { app: web } }, egress: [{ hosts: ["billing/*"] }] }'));
    assert.equal(sidecarFor(rs, { namespace: 'shop', labels: { app: 'web' } })?.name, 'shop/web');
    assert.equal(sidecarFor(rs, { namespace: 'shop', labels: { app: 'api' } })?.name, 'shop/default');
    assert.equal(sidecarFor(rs, { namespace: 'billing', labels: {} })?.name, 'istio-system/root');
    assert.equal(sidecarFor(resources(...all), { namespace: 'shop', labels: {} }), undefined);
  });

  it('egress hosts scope the listeners, routes and clusters a workload gets', () => {
    const hosts = (rs: ReturnType<typeof resources>, ns: string, labels: Record<string, string> = {}) =>
      translate(rs, { name: 'w', namespace: ns, labels }).routes.map((r) => r.name).filter((n) => n.includes(':8000')).sort();
    const scoped = resources(...all, sidecar('default', 'shop', '{ egress: [{ hosts: ["./*", "istio-system/log.istio-system.svc.cluster.local"] }] }'));
    assert.deepEqual(hosts(scoped, 'shop'), ['cart.shop.svc.cluster.local:8000', 'log.istio-system.svc.cluster.local:8000']);
    // The Sidecar is shop's: billing still sees everything.
    assert.equal(hosts(scoped, 'billing').length, 3);
    const wildcard = resources(...all, sidecar('default', 'shop', '{ egress: [{ hosts: ["*/*.billing.svc.cluster.local"] }] }'));
    assert.deepEqual(hosts(wildcard, 'shop'), ['pay.billing.svc.cluster.local:8000']);
    const none = resources(...all, sidecar('default', 'shop', '{ egress: [{ hosts: ["~/*"] }] }'));
    assert.deepEqual(hosts(none, 'shop'), []);
    // No egress: everything, as istiod's default */*.
    assert.equal(hosts(resources(...all, sidecar('default', 'shop', '{ outboundTrafficPolicy: { mode: REGISTRY_ONLY } }')), 'shop').length, 3);
    assert.deepEqual(translate(none, { name: 'w', namespace: 'shop', labels: {} }).clusters.filter((c) => c.name.startsWith('outbound|8000')), []);
  });

  it('refuses an egress host that is not namespace/dnsName', async () => {
    await assert.rejects(createMesh({ config: [se('cart', 'shop'), sidecar('default', 'default', '{ egress: [{ hosts: ["cart.shop.svc.cluster.local"] }] }')].join('\n---\n') }),
      (err: unknown) => err instanceof MeshConfigError && err.kind === 'Sidecar' && err.path === 'spec.egress[0].hosts[0]');
  });
});

describe('Sidecar over a real server', () => {
  let app: TestServer;
  before(async () => {
    app = await startServer('app');
  });
  after(() => app.close());

  it('a host outside egress is not routed by the mesh: passthrough, or 502 NR when the Sidecar says REGISTRY_ONLY', async () => {
    const config = (mode: string) => [se('cart', 'shop', app.port, '127.0.0.1'), sidecar('default', 'default', `{ egress: [{ hosts: ["./*"] }]${mode} }`)].join('\n---\n');
    const url = 'http://cart.shop.svc.cluster.local:8000/';
    const scoped = await createMesh({ workload: { name: 'web', namespace: 'default' }, config: config(', outboundTrafficPolicy: { mode: REGISTRY_ONLY }') });
    try {
      const res = await scoped.request(url);
      await res.body.text();
      assert.equal(res.statusCode, 502);
      assert.equal(res.headers['x-meshlet-flags'], 'NR');
      // The same config without the Sidecar: routed to the endpoint.
      await scoped.apply(se('cart', 'shop', app.port, '127.0.0.1'));
      const ok = await scoped.request(url);
      assert.equal(await ok.body.text(), 'app');
      // The Sidecar's policy goes with it: the mesh's ALLOW_ANY is back, so an unknown host passes through.
      const other = await scoped.request(`http://127.0.0.1:${app.port}/`);
      assert.equal(await other.body.text(), 'app');
    } finally {
      await scoped.close();
    }
  });
});
