/**
 * ADS over TLS as istiod serves it on 15012: a DNS-SAN-only certificate from
 * the mesh root, clients authenticated by `authorization: Bearer <token>`
 * (the projected service-account token, re-read for every stream) and
 * optionally their workload certificate. Also the bootstrap's A65 `tls`
 * channel creds and A97 `jwt_token_file` call creds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { TYPE_URL } from '../../src/config/envoy.js';
import { MeshConfigError } from '../../src/errors.js';
import { createMesh } from '../../src/mesh.js';
import { openCaDir } from '../../src/security/ca-dir.js';
import { CertificateAuthority } from '../../src/security/ca.js';
import { createAdsClient } from '../../src/xds/ads-client.js';
import { parseBootstrap } from '../../src/xds/bootstrap.js';
import { controlPlaneTlsCredentials } from '../../src/xds/channel-credentials.js';
import { encodeAny, loadGrpcPackage } from '../../src/xds/protos.js';
import { issueDnsCertificate } from '../security/tls-helpers.js';
import { sampleResources } from './fake-ads-server.js';

type After = { after(fn: () => unknown): void };
const ISTIOD_SANS = ['istiod.istio-system.svc', 'istiod.istio-system.svc.cluster.local'];
const BY_TYPE = { [TYPE_URL.listener]: 'listeners', [TYPE_URL.route]: 'routes', [TYPE_URL.cluster]: 'clusters', [TYPE_URL.endpoint]: 'endpoints' } as const;

interface Stream { authorization: string | undefined; clusterId: string | undefined; peer: string | undefined; call: grpc.ServerDuplexStream<{ type_url?: string; response_nonce?: string }, unknown> }

/** An ADS server with istiod's 15012 TLS: answers each type's first request with the sample set; records each stream's credentials. */
async function startTlsAds(t: After, ca: CertificateAuthority, options: { sans?: readonly string[]; requireClientCert?: boolean } = {}) {
  const { key, cert } = await issueDnsCertificate(ca, options.sans ?? ISTIOD_SANS);
  const pkg = loadGrpcPackage(['envoy/service/discovery/v3/ads.proto']) as unknown as {
    envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: grpc.ServiceClientConstructor } } } };
  };
  const streams: Stream[] = [];
  const server = new grpc.Server();
  const resources = sampleResources();
  server.addService(pkg.envoy.service.discovery.v3.AggregatedDiscoveryService.service, {
    StreamAggregatedResources: (call: Stream['call']) => {
      const header = call.metadata.get('authorization')[0];
      const clusterId = call.metadata.get('clusterid')[0];
      const peerSan = call.getAuthContext()?.sslPeerCertificate?.subjectaltname;
      streams.push({ authorization: header === undefined ? undefined : String(header), clusterId: clusterId === undefined ? undefined : String(clusterId), peer: peerSan, call });
      call.on('data', (req) => {
        const key = BY_TYPE[req.type_url as keyof typeof BY_TYPE];
        if (key === undefined || req.response_nonce) return;
        call.write({ version_info: '1', type_url: req.type_url, nonce: `${key}-1`, resources: resources[key].map((r) => encodeAny(req.type_url!, r)) });
      });
      call.on('error', () => {});
      call.on('end', () => call.end());
    },
    DeltaAggregatedResources: () => {},
  });
  const creds = grpc.ServerCredentials.createSsl(Buffer.from(ca.rootPem), [{ private_key: Buffer.from(key), cert_chain: Buffer.from(cert) }], options.requireClientCert === true);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
  t.after(() => server.forceShutdown());
  return { target: `127.0.0.1:${port}`, port, streams };
}

async function tempDir(t: After): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'meshlet-xds-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function until(what: string, cond: () => boolean, limitMs = 20_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const workload = { name: 'ratings', namespace: 'default', serviceAccount: 'ratings', labels: { app: 'ratings' } };

test('createMesh({ xds: { tls: { root, tokenFile } } }): TLS to a DNS-SAN istiod, bearer token re-read for each stream', async (t) => {
  const ca = await CertificateAuthority.create();
  const ads = await startTlsAds(t, ca);
  const dir = await tempDir(t);
  const root = join(dir, 'root-cert.pem');
  const tokenFile = join(dir, 'istio-token');
  await writeFile(root, ca.rootPem);
  await writeFile(tokenFile, 'k8s-token-1');
  const mesh = await createMesh({ workload, clusterId: 'Kubernetes', xds: { server: ads.target, tls: { root, tokenFile } } });
  t.after(() => mesh.close());
  assert.equal(mesh.xdsStatus()?.connected, true);
  assert.equal(mesh.xdsStatus()?.types.LDS.version, '1');
  assert.deepEqual(ads.streams.map((s) => [s.authorization, s.clusterId, s.peer]), [['Bearer k8s-token-1', 'Kubernetes', undefined]]);

  // The kubelet rotates the token; the next stream (istiod closes streams periodically) carries the new one.
  await writeFile(tokenFile, 'k8s-token-2');
  ads.streams[0]!.call.end();
  await until('a second stream', () => ads.streams.length === 2);
  assert.equal(ads.streams[1]!.authorization, 'Bearer k8s-token-2');
});

test('xDS over TLS presents the workload certificate with the token, and refuses a server without the pinned DNS name', async (t) => {
  const dir = await tempDir(t);
  const ca = await openCaDir(join(dir, 'ca'));
  const tokenFile = join(dir, 'istio-token');
  await writeFile(tokenFile, 'k8s-token-1');
  const ads = await startTlsAds(t, ca, { requireClientCert: true });
  const mesh = await createMesh({ workload, ca: { dir: join(dir, 'ca') }, xds: { server: ads.target, tls: { root: ca.rootPem, tokenFile } } });
  t.after(() => mesh.close());
  assert.equal(ads.streams.length, 1);
  assert.equal(ads.streams[0]!.authorization, 'Bearer k8s-token-1');
  assert.equal(ads.streams[0]!.peer, 'URI:spiffe://cluster.local/ns/default/sa/ratings');

  // A server of the same root without istiod's name (another workload posing as it) gets no token.
  const impostor = await startTlsAds(t, ca, { sans: ['ratings.default.svc'] });
  const sets: string[] = [];
  const client = createAdsClient({
    server: impostor.target, workload, initialFetchTimeoutMs: 100, onResources: (_r, v) => void sets.push(v),
    credentials: controlPlaneTlsCredentials(impostor.target, { root: ca.rootPem, tokenFile }, undefined),
  });
  client.start();
  t.after(() => client.close());
  await until('a failed connection attempt', () => client.status().reconnects >= 1);
  assert.equal(impostor.streams.length, 0, 'no stream (and so no token) reached the impostor');
  assert.deepEqual(sets, []);
});

test('bootstrap: A65 tls channel creds with files, A97 jwt_token_file call creds, server_features, certificate_providers', async (t) => {
  const dir = await tempDir(t);
  const ca = await openCaDir(join(dir, 'ca'));
  const leaf = await ca.issueWorkload('spiffe://cluster.local/ns/default/sa/ratings');
  await writeFile(join(dir, 'root-cert.pem'), ca.rootPem);
  await writeFile(join(dir, 'cert-chain.pem'), leaf.certChain.join(''));
  await writeFile(join(dir, 'key.pem'), leaf.key);
  await writeFile(join(dir, 'istio-token'), 'k8s-token-1');
  const ads = await startTlsAds(t, ca, { sans: ['localhost'], requireClientCert: true });
  // The shape of istio's grpc-agent bootstrap (pkg/istio-agent/grpcxds/grpc_bootstrap.go), pointed at a TLS server.
  const bootstrap = {
    xds_servers: [{
      server_uri: `localhost:${ads.port}`,
      channel_creds: [{ type: 'google_default' }, { type: 'tls', config: { ca_certificate_file: join(dir, 'root-cert.pem'), certificate_file: join(dir, 'cert-chain.pem'), private_key_file: join(dir, 'key.pem'), refresh_interval: '600s' } }, { type: 'insecure' }],
      call_creds: [{ type: 'jwt_token_file', config: { jwt_token_file: join(dir, 'istio-token') } }],
      server_features: ['xds_v3'],
    }],
    node: { id: 'sidecar~127.0.0.1~ratings-1.default~default.svc.cluster.local' },
    certificate_providers: { default: { plugin_name: 'file_watcher', config: { certificate_file: join(dir, 'cert-chain.pem'), private_key_file: join(dir, 'key.pem'), ca_certificate_file: join(dir, 'root-cert.pem'), refresh_interval: '900s' } } },
    server_listener_resource_name_template: 'xds.istio.io/grpc/lds/inbound/%s',
  };
  const parsed = parseBootstrap(JSON.stringify(bootstrap), 'test');
  assert.equal(parsed.channelCreds, 'tls', 'the first supported type wins (A27)');
  assert.equal(parsed.tokenFile, join(dir, 'istio-token'));
  assert.deepEqual(parsed.serverFeatures, ['xds_v3']);
  assert.deepEqual(parsed.certificateProviders?.default, { certificateFile: join(dir, 'cert-chain.pem'), privateKeyFile: join(dir, 'key.pem'), caCertificateFile: join(dir, 'root-cert.pem'), refreshIntervalMs: 900_000 });
  assert.equal(parsed.serverListenerResourceNameTemplate, 'xds.istio.io/grpc/lds/inbound/%s');

  const file = join(dir, 'bootstrap.json');
  await writeFile(file, JSON.stringify(bootstrap));
  let delivered = 0;
  const client = createAdsClient({ bootstrap: file, workload, onResources: () => void delivered++ });
  client.start();
  t.after(() => client.close());
  await client.ready();
  assert.equal(delivered, 1);
  assert.equal(ads.streams[0]!.authorization, 'Bearer k8s-token-1');
  assert.equal(ads.streams[0]!.peer, 'URI:spiffe://cluster.local/ns/default/sa/ratings');

  // createMesh with that bootstrap and no certs/ca: the `default` file_watcher provider is the workload identity.
  const mesh = await createMesh({ workload, xds: { bootstrap: file } });
  t.after(() => mesh.close());
  assert.equal(mesh.identity?.current.spiffeId, 'spiffe://cluster.local/ns/default/sa/ratings');
  assert.equal(mesh.identity?.current.certChain.join(''), leaf.certChain.join(''));
});

test('bootstrap fields meshlet cannot honour are MeshConfigErrors naming the field', () => {
  const server = (extra: object) => JSON.stringify({ xds_servers: [{ server_uri: 'istiod:15012', ...extra }] });
  const cases: Array<[string, string]> = [
    [server({ channel_creds: [{ type: 'google_default' }] }), 'xds_servers[0].channel_creds'],
    [server({ channel_creds: [{ type: 'tls', config: { certificate_file: '/c.pem' } }] }), 'xds_servers[0].channel_creds[0].config'],
    [server({ channel_creds: [{ type: 'tls', config: { ca_file: '/c.pem' } }] }), 'xds_servers[0].channel_creds[0].config.ca_file'],
    [server({ call_creds: [{ type: 'access_token' }] }), 'xds_servers[0].call_creds[0].type'],
    [server({ call_creds: [{ type: 'jwt_token_file', config: {} }] }), 'xds_servers[0].call_creds[0].config.jwt_token_file'],
    [server({ server_features: 'xds_v3' }), 'xds_servers[0].server_features'],
    [JSON.stringify({ xds_servers: [{ server_uri: 'x:1' }], certificate_providers: { default: { plugin_name: 'spiffe' } } }), 'certificate_providers.default.plugin_name'],
    [JSON.stringify({ xds_servers: [{ server_uri: 'x:1' }], certificate_providers: { default: { plugin_name: 'file_watcher', config: { certificate_file: '/c' } } } }), 'certificate_providers.default.config.private_key_file'],
  ];
  for (const [text, path] of cases) {
    assert.throws(() => parseBootstrap(text, 'b.json'), (e: unknown) => e instanceof MeshConfigError && e.kind === 'XdsBootstrap' && e.resource === 'b.json' && e.path === path, path);
  }
});
