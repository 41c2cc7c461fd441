/**
 * Wildcard VirtualService hosts and ServiceEntry addresses, as istiod builds
 * a proxy's virtual hosts. Each case cites the Istio source it copies, at
 * istio/istio 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseYaml } from '../../src/config/load.js';
import { parseResources } from '../../src/config/resources.js';
import { admitResources } from '../../src/config/admission.js';
import { translate } from '../../src/config/translate.js';
import { compileSnapshot } from '../../src/core/snapshot.js';
import { createMesh } from '../../src/index.js';
import { startServer } from '../helpers/http-servers.js';

const run = (yaml: string, namespace = 'default') => translate(parseResources(parseYaml(yaml, 'test')), { name: 'client', namespace, labels: {} });

const se = (name: string, hosts: string, port = 80, extra = '') => `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: default }
spec:
  hosts: ${hosts}
  resolution: STATIC
  ports: [{ number: ${port}, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1 }]
${extra}`;

const vs = (name: string, host: string) => `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: default }
spec:
  hosts: ["${host}"]
  http: [{ name: ${name}, route: [{ destination: { host: backend.example.com } }] }]
`;

const firstRoute = (out: ReturnType<typeof run>, name: string) => out.routes.find((r) => r.name === name)?.virtual_hosts[0]!.routes[0]!.name;

describe('wildcard mesh hosts: computeWildcardHostVirtualServiceIndex (pilot/pkg/model/sidecar.go), MostSpecificHostMatch', () => {
  const services = se('bar', '[x.bar.com, y.bar.com]') + se('backend', '[backend.example.com]');

  it('`*.bar.com` applies to x.bar.com and y.bar.com, which have no VirtualService of their own', () => {
    const out = run(services + vs('wild', '*.bar.com'));
    assert.equal(firstRoute(out, 'x.bar.com:80'), 'wild');
    assert.equal(firstRoute(out, 'y.bar.com:80'), 'wild');
    assert.equal(firstRoute(out, 'backend.example.com:80'), 'default');
  });

  it('an exact VirtualService wins over the wildcard; the longest wildcard wins over a shorter one', () => {
    const out = run(services + vs('wild', '*.com') + vs('exact', 'x.bar.com') + vs('bar', '*.bar.com'));
    assert.equal(firstRoute(out, 'x.bar.com:80'), 'exact');
    assert.equal(firstRoute(out, 'y.bar.com:80'), 'bar');
    assert.equal(firstRoute(out, 'backend.example.com:80'), 'wild');
  });

  it('`*.bar.com` does not match bar.com itself (host.Name.Matches)', () => {
    const out = run(se('apex', '[bar.com]') + se('backend', '[backend.example.com]') + vs('wild', '*.bar.com'));
    assert.equal(firstRoute(out, 'bar.com:80'), 'default');
  });

  it('a wildcard VirtualService with no matching service gets a port-80 virtual host with its own domain, matched by suffix', () => {
    // buildSidecarOutboundHTTPRouteConfig: VirtualService-only hosts on port 80 keep the VirtualService's host as domain.
    const out = run(se('backend', '[backend.example.com]') + vs('wild', '*.foo.org'));
    assert.equal(firstRoute(out, '*.foo.org:80'), 'wild');
    const snap = compileSnapshot(out, 't');
    assert.equal(snap.virtualHost('a.foo.org', 80)?.routeConfig, '*.foo.org:80');
    assert.equal(snap.virtualHost('foo.org', 80), undefined);
  });
});

describe('ServiceEntry addresses: generateVirtualHostDomains / appendDomainPort (pilot/pkg/networking/core/httproute.go)', () => {
  it('each address joins the virtual host as `addr` and `addr:port`; /32 is the address; IPv6 in brackets', () => {
    const out = run(se('db', '[db.example.com]', 8080, '  addresses: [10.1.2.3, 10.9.9.9/32, "2001:db8::7"]\n'));
    const domains = out.routes.find((r) => r.name === 'db.example.com:8080')!.virtual_hosts[0]!.domains;
    for (const d of ['10.1.2.3', '10.1.2.3:8080', '10.9.9.9', '10.9.9.9:8080', '[2001:db8::7]', '[2001:db8::7]:8080']) assert.ok(domains.includes(d), `${d} in ${domains.join()}`);
    const snap = compileSnapshot(out, 't');
    assert.equal(snap.virtualHost('10.1.2.3', 8080)?.routeConfig, 'db.example.com:8080');
    assert.equal(snap.virtualHost('[2001:db8::7]', 8080)?.routeConfig, 'db.example.com:8080');
  });

  it('a CIDR range is accepted with a warning naming it, and adds no domain', () => {
    const yaml = se('range', '[range.example.com]', 80, '  addresses: [192.168.0.0/24]\n');
    const domains = run(yaml).routes.find((r) => r.name === 'range.example.com:80')!.virtual_hosts[0]!.domains;
    assert.ok(!domains.some((d) => d.startsWith('192.168')), domains.join());
    const status = admitResources(parseYaml(yaml, 'test'), 'embedded').statuses[0]!;
    assert.equal(status.status, 'partial');
    assert.deepEqual(status.warnings.map((w) => [w.path, w.code]), [['spec.addresses[0]', 'MESHLET_UNSUPPORTED_VALUE']]);
  });

  it('a call to http://<VIP>:<port>/ goes to the entry\'s endpoint (REGISTRY_ONLY: anything else would be 502 NR)', async (t) => {
    const server = await startServer('db');
    t.after(() => server.close());
    const mesh = await createMesh({
      workload: { name: 'client', namespace: 'default' },
      outboundTrafficPolicy: 'REGISTRY_ONLY',
      config: `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db, namespace: default }
spec:
  hosts: [db.internal]
  addresses: [10.77.0.1]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${server.port} } }]
`,
    });
    t.after(() => mesh.close());
    const res = await mesh.fetch('http://10.77.0.1:8080/x');
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'db');
    assert.equal(server.lastUrl, '/x');
    const other = await mesh.fetch('http://10.77.0.2:8080/x');
    assert.equal(other.status, 502);
    assert.equal(other.headers.get('x-meshlet-flags'), 'NR');
    await other.arrayBuffer();
  });
});

describe('ServiceEntry without ports: ValidateServiceEntry (pkg/config/validation/validation.go) allows it', () => {
  it('admitted with MESHLET_NO_EFFECT; it adds no route or cluster', () => {
    const yaml = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: portless, namespace: default }
spec: { hosts: [portless.example.com], resolution: DNS }
`;
    const status = admitResources(parseYaml(yaml, 'test'), 'embedded').statuses[0]!;
    assert.equal(status.status, 'partial');
    assert.deepEqual(status.warnings.map((w) => [w.path, w.code]), [['spec.ports', 'MESHLET_NO_EFFECT']]);
    const out = run(yaml);
    assert.equal(out.routes.length, 0);
    assert.equal(out.clusters.length, 0);
  });
});
