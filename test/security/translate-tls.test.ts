import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseResources } from '../../src/config/resources.js';
import { loadDocuments } from '../../src/config/load.js';
import { translate } from '../../src/config/translate.js';
import type { TlsCluster } from '../../src/config/translate-tls.js';
import { upstreamTlsFor } from '../../src/security/upstream-tls.js';
import { peerAuthenticationFor } from '../../src/security/peer-authentication.js';
import { encodeAny, decodeAny } from '../../src/xds/protos.js';
import { TYPE_URL } from '../../src/config/envoy.js';

const proxy = { name: 'client', namespace: 'default', labels: { app: 'client' } };
const se = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: calc, namespace: default }
spec:
  hosts: [calc.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http }]
  endpoints:
    - { address: 10.0.0.1, labels: { app: calc, security.istio.io/tlsMode: istio }, serviceAccount: calc }
    - { address: 10.0.0.2, labels: { app: legacy } }
`;

async function clusterOf(extra = ''): Promise<{ cluster: TlsCluster; out: ReturnType<typeof translate> }> {
  const out = translate(parseResources(await loadDocuments(se + extra)), proxy);
  const cluster = out.clusters.find((c) => c.name === 'outbound|8000||calc.default.svc.cluster.local') as TlsCluster;
  return { cluster, out };
}

test('auto-mTLS: meshed endpoints get ISTIO_MUTUAL through transport_socket_matches, others plaintext; survives an xDS round trip', async () => {
  const { cluster, out } = await clusterOf();
  assert.equal(cluster.transport_socket, undefined);
  assert.deepEqual(cluster.transport_socket_matches?.map((m) => m.name), ['tlsMode-istio', 'tlsMode-disabled']);
  const cla = out.endpoints.find((e) => e.cluster_name === cluster.name);
  const wire = decodeAny<TlsCluster>(encodeAny(TYPE_URL.cluster, cluster));
  for (const c of [cluster, wire]) {
    const meshed = upstreamTlsFor(c, cla, '10.0.0.1:8000');
    assert.ok(!(meshed instanceof Error) && meshed.kind === 'istio' && meshed.auto);
    assert.deepEqual(meshed.kind === 'istio' && meshed.sans, [{ exact: 'spiffe://cluster.local/ns/default/sa/calc' }]);
    assert.equal(meshed.kind === 'istio' && meshed.sni, 'outbound_.8000_._.calc.default.svc.cluster.local');
    assert.equal((upstreamTlsFor(c, cla, '10.0.0.2:8000') as { kind: string }).kind, 'plaintext');
  }
});

test('DestinationRule tls modes become the cluster transport socket', async () => {
  const dr = (tls: string) => `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: calc, namespace: default }
spec: { host: calc.default.svc.cluster.local, trafficPolicy: { tls: ${tls} } }`;
  let { cluster } = await clusterOf(dr('{ mode: DISABLE }'));
  assert.equal(cluster.transport_socket, undefined);
  assert.equal(cluster.transport_socket_matches, undefined);
  ({ cluster } = await clusterOf(dr('{ mode: ISTIO_MUTUAL }')));
  const istio = upstreamTlsFor(cluster, undefined, '10.0.0.2:8000');
  assert.ok(!(istio instanceof Error) && istio.kind === 'istio' && !istio.auto);
  ({ cluster } = await clusterOf(dr('{ mode: SIMPLE, sni: calc.example.com }')));
  const simple = upstreamTlsFor(cluster, undefined, '10.0.0.1:8000');
  assert.ok(!(simple instanceof Error) && simple.kind === 'tls' && simple.verify && simple.caFile === undefined && simple.sni === 'calc.example.com');
  ({ cluster } = await clusterOf(dr('{ mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem, caCertificates: /ca.pem, subjectAltNames: [calc.example.com] }')));
  const mutual = upstreamTlsFor(cluster, undefined, '10.0.0.1:8000');
  assert.ok(!(mutual instanceof Error) && mutual.kind === 'tls');
  assert.deepEqual(mutual.kind === 'tls' && [mutual.certFile, mutual.keyFile, mutual.caFile, mutual.sans], ['/c.pem', '/k.pem', '/ca.pem', [{ exact: 'calc.example.com' }]]);
  ({ cluster } = await clusterOf(dr('{ mode: SIMPLE, insecureSkipVerify: true }')));
  assert.equal((upstreamTlsFor(cluster, undefined, '10.0.0.1:8000') as { verify: boolean }).verify, false);
});

test('a destination PeerAuthentication DISABLE turns auto-mTLS off for its endpoints', async () => {
  const { cluster } = await clusterOf(`---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: calc, namespace: default }
spec: { selector: { matchLabels: { app: calc } }, mtls: { mode: DISABLE } }`);
  assert.equal(cluster.transport_socket_matches, undefined);
});

test('PeerAuthentication precedence: workload > namespace > mesh, UNSET inherits, port-level from the workload policy', () => {
  const pa = (ns: string, spec: object, name = 'p') => ({ kind: 'PeerAuthentication', metadata: { name, namespace: ns }, spec });
  const w = { namespace: 'foo', labels: { app: 'a' } };
  assert.equal(peerAuthenticationFor([], w).mode, 'PERMISSIVE');
  assert.equal(peerAuthenticationFor([pa('istio-system', { mtls: { mode: 'STRICT' } })], w).mode, 'STRICT');
  assert.equal(peerAuthenticationFor([pa('istio-system', { mtls: { mode: 'STRICT' } }), pa('foo', { mtls: { mode: 'DISABLE' } })], w).mode, 'DISABLE');
  const layered = peerAuthenticationFor([
    pa('istio-system', { mtls: { mode: 'STRICT' } }),
    pa('foo', { selector: { matchLabels: { app: 'a' } }, mtls: { mode: 'UNSET' }, portLevelMtls: { 8080: { mode: 'DISABLE' } } }, 'w'),
    pa('bar', { mtls: { mode: 'DISABLE' } }, 'other-ns'),
  ], w);
  assert.equal(layered.mode, 'STRICT');
  assert.equal(layered.modeFor(8080), 'DISABLE');
  assert.equal(layered.modeFor(9090), 'STRICT');
  assert.equal(peerAuthenticationFor([pa('foo', { selector: { matchLabels: { app: 'b' } }, mtls: { mode: 'DISABLE' } })], w).mode, 'PERMISSIVE');
});
