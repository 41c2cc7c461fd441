/**
 * meshlet is L7 only: what Istio proxies as TCP or TLS (tcp/tls routes,
 * TCP/TLS/MONGO… ports, Gateway TCP/TLS and PASSTHROUGH servers) is accepted
 * so the YAML loads, and warned about with a code and the field's path, in
 * mesh.configStatus() and `meshlet analyze` alike — never silently dropped.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseYaml } from '../../src/config/load.js';
import { parseResources } from '../../src/config/resources.js';
import { translate } from '../../src/config/translate.js';
import { analyze } from '../../src/cli/analyze.js';
import { createMesh } from '../../src/index.js';

const config = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db, namespace: default }
spec:
  hosts: [db.example.com]
  addresses: [10.20.0.0/16]
  resolution: STATIC
  ports:
    - { number: 8080, name: http, protocol: HTTP }
    - { number: 3306, name: mysql, protocol: MYSQL }
    - { number: 443, name: tls, protocol: TLS }
  endpoints: [{ address: 127.0.0.1 }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: db, namespace: default }
spec:
  hosts: [db.example.com]
  tcp: [{ match: [{ port: 3306 }], route: [{ destination: { host: db.example.com, port: { number: 3306 } } }] }]
  tls: [{ match: [{ port: 443, sniHosts: [db.example.com] }], route: [{ destination: { host: db.example.com } }] }]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: edge, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers:
    - { port: { number: 8080, name: http, protocol: HTTP }, hosts: ["*"] }
    - { port: { number: 8443, name: https, protocol: HTTPS }, hosts: ["*"], tls: { mode: PASSTHROUGH } }
    - { port: { number: 31400, name: tcp, protocol: TCP }, hosts: ["*"] }
`;

const expected = [
  ['ServiceEntry', 'spec.ports[1].protocol', 'MESHLET_UNSUPPORTED_VALUE'],
  ['ServiceEntry', 'spec.ports[2].protocol', 'MESHLET_UNSUPPORTED_VALUE'],
  ['ServiceEntry', 'spec.addresses[0]', 'MESHLET_UNSUPPORTED_VALUE'],
  ['VirtualService', 'spec.tls', 'MESHLET_UNSUPPORTED_FIELD'],
  ['VirtualService', 'spec.tcp', 'MESHLET_UNSUPPORTED_FIELD'],
  ['Gateway', 'spec.servers[1].tls.mode', 'MESHLET_UNSUPPORTED_VALUE'],
  ['Gateway', 'spec.servers[2].port.protocol', 'MESHLET_UNSUPPORTED_VALUE'],
];

describe('TCP and TLS are warnings with code and path', () => {
  it('mesh.configStatus() lists each one; the resources are partial, not rejected', async (t) => {
    t.mock.method(console, 'warn', () => {});
    const mesh = await createMesh({ workload: { name: 'app', namespace: 'default' }, config });
    t.after(() => mesh.close());
    const status = mesh.configStatus();
    assert.deepEqual(status.map((s) => s.status), ['partial', 'partial', 'partial']);
    const got = status.flatMap((s) => s.warnings.map((w) => [s.kind, w.path, w.code]));
    assert.deepEqual(got.sort(), [...expected].sort());
    const ports = status[0]!.warnings.filter((w) => w.path.startsWith('spec.ports'));
    for (const w of ports) assert.match(w.message, /L7 only/);
  });

  it('meshlet analyze reports the same, as warnings', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'meshlet-l7-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'mesh.yaml'), config);
    const report = await analyze([dir]);
    const warnings = report.messages.filter((m) => m.code.startsWith('MESHLET_'));
    assert.equal(warnings.length, expected.length);
    assert.ok(warnings.every((m) => m.level === 'Warning'), JSON.stringify(warnings));
  });

  it('a PASSTHROUGH server no longer rejects its Gateway: the gateway serves its HTTP server and opens no port for the others', () => {
    const out = translate(parseResources(parseYaml(config, 'test')), { name: 'gw', namespace: 'default', labels: { istio: 'ingressgateway' } });
    const routeConfigs = out.routes.map((r) => r.name);
    assert.ok(routeConfigs.includes('http.8080'), routeConfigs.join());
    assert.ok(!routeConfigs.some((n) => n.endsWith('.8443') || n.endsWith('.31400')), routeConfigs.join());
  });

  it('the HTTP port of a mixed entry is routed, and HTTP calls through the mesh to the MYSQL port are routed as HTTP', () => {
    const out = translate(parseResources(parseYaml(config, 'test')), { name: 'app', namespace: 'default', labels: {} });
    assert.ok(out.routes.some((r) => r.name === 'db.example.com:8080'));
    assert.ok(out.routes.some((r) => r.name === 'db.example.com:3306'));
  });
});
