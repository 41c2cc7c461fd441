import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshConfigError } from '../../src/errors.js';
import { istioAgentOptions } from '../../src/xds/istio-agent.js';

const none = () => false;

test('istio-agent defaults: istiod on 15012, the istio-ca-root-cert mount, the projected token, cluster.local', () => {
  assert.deepEqual(istioAgentOptions({}, none), {
    trustDomain: 'cluster.local',
    ca: { server: 'istiod.istio-system.svc:15012', root: '/var/run/secrets/istio/root-cert.pem', identity: 'istiod.istio-system.svc', tokenFile: '/var/run/secrets/tokens/istio-token' },
    xds: { server: 'istiod.istio-system.svc:15012', tls: { root: '/var/run/secrets/istio/root-cert.pem', serverName: 'istiod.istio-system.svc', tokenFile: '/var/run/secrets/tokens/istio-token' } },
  });
});

test('istio-agent env: PROXY_CONFIG, CA_ADDR, TRUST_DOMAIN, ISTIO_META_CLUSTER_ID, ISTIOD_SAN, roots by provider, SECRET_TTL', () => {
  const o = istioAgentOptions({
    PROXY_CONFIG: JSON.stringify({ discoveryAddress: 'istiod-1-24.istio-system.svc:15012' }), CA_ADDR: 'ca.example.svc:443', TRUST_DOMAIN: 'prod.example',
    ISTIO_META_CLUSTER_ID: 'east', PILOT_CERT_PROVIDER: 'custom', SECRET_TTL: '12h',
  }, none);
  assert.equal(o.xds.server, 'istiod-1-24.istio-system.svc:15012');
  assert.deepEqual(o.xds.tls, { root: '/var/run/secrets/istio/root-cert.pem', serverName: 'istiod-1-24.istio-system.svc', tokenFile: '/var/run/secrets/tokens/istio-token' });
  assert.deepEqual(o.ca, { server: 'ca.example.svc:443', root: '/etc/certs/root-cert.pem', identity: 'ca.example.svc', tokenFile: '/var/run/secrets/tokens/istio-token', ttl: '12h' });
  assert.equal(o.trustDomain, 'prod.example');
  assert.equal(o.clusterId, 'east');
  // A mounted /etc/certs root wins for XDS (FindRootCAForXDS); explicit roots and ISTIOD_SAN win over everything.
  assert.equal((istioAgentOptions({}, (p) => p === '/etc/certs/root-cert.pem').xds.tls as { root: string }).root, '/etc/certs/root-cert.pem');
  const explicit = istioAgentOptions({ CA_ROOT_CA: '/r/ca.pem', XDS_ROOT_CA: '/r/xds.pem', ISTIOD_SAN: 'istiod.custom.svc', JWT_POLICY: 'none' }, none);
  assert.deepEqual(explicit.ca, { server: 'istiod.istio-system.svc:15012', root: '/r/ca.pem', identity: 'istiod.custom.svc' });
  assert.deepEqual(explicit.xds.tls, { root: '/r/xds.pem', serverName: 'istiod.custom.svc' });
});

test('istio-agent settings meshlet cannot honour are MeshConfigErrors naming the variable', () => {
  for (const [env, name] of [
    [{ CA_ROOT_CA: 'SYSTEM' }, 'CA_ROOT_CA'], [{ XDS_ROOT_CA: 'SYSTEM' }, 'XDS_ROOT_CA'], [{ PILOT_CERT_PROVIDER: 'none' }, 'PILOT_CERT_PROVIDER'],
    [{ SECRET_TTL: 'a day' }, 'SECRET_TTL'], [{ PROXY_CONFIG: 'discoveryAddress: x:1' }, 'PROXY_CONFIG'],
  ] as const) {
    assert.throws(() => istioAgentOptions(env, none), (e: unknown) => e instanceof MeshConfigError && e.kind === 'Environment' && e.path === name, name);
  }
});
