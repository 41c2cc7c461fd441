/**
 * Auto-registration only for authenticated, declared workloads (issue #21):
 * the traffic hijack by self-registration as tests. An attacker that connects
 * over plaintext with `app: calculate` metadata, or over mTLS with another
 * service account's certificate claiming calculate's WorkloadGroup, gets
 * config but never becomes an endpoint: a client's calls stay 100 % on the
 * real instances. A workload proving the group's service account (mTLS or a
 * bootstrap token) is registered with the group template's labels. With a
 * CA, plaintext ADS is refused unless explicitly allowed.
 *
 * On the code before this change, the plaintext attacker alone would have
 * been selected by the ServiceEntry (any node with INSTANCE_IPS and
 * MESHLET_PORTS was registered with its own labels): 1 in 4 calls to it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createMesh, type Mesh } from '../../src/index.js';
import { main } from '../../src/cli/main.js';
import { createControlPlane, type ControlPlane, type ControlPlaneOptions } from '../../src/control-plane/index.js';
import { MeshError } from '../../src/errors.js';
import { rotatingControlPlaneCredentials } from '../../src/security/grpc-credentials.js';
import { istiodSpiffeId, pinnedServerIdentityCheck } from '../../src/security/tls.js';
import { staticIdentity } from '../../src/security/workload-identity.js';
import { createAdsClient, type AdsClient } from '../../src/xds/ads-client.js';
import type { WorkloadInfo } from '../../src/xds/node.js';
import { startServer, tally, type TestServer } from '../helpers/http-servers.js';
import { configDir, waitFor } from './helpers.js';

const quiet = () => {};
const CALC_URL = 'http://calculate.default.svc.cluster.local:8000/';
const CALC_EDS = 'outbound|8000||calculate.default.svc.cluster.local';

const services = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: calculate, namespace: default }
spec:
  hosts: [calculate.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: calculate } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: { name: image, namespace: default }
spec:
  template: { serviceAccount: image, labels: { app: image } }
`;
const calculateGroup = `
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: { name: calculate, namespace: default }
spec:
  metadata: { labels: { team: pets } }
  template: { serviceAccount: calculate, labels: { app: calculate, version: v1 } }
`;

interface Setup {
  cp: ControlPlane;
  cfg: Awaited<ReturnType<typeof configDir>>;
  /** A mesh in control-plane mode with a certificate for `serviceAccount` from the control plane's CA. */
  mesh(name: string, serviceAccount: string, xds?: Partial<NonNullable<Parameters<typeof createMesh>[0]>['xds']>, labels?: Record<string, string>): Promise<Mesh>;
  /** A raw ADS client (the SDK's) with the given credentials. */
  ads(workload: WorkloadInfo, options?: { credentials?: grpc.ChannelCredentials; token?: string; trace?: (line: string) => void }): AdsClient;
}

async function setup(t: import('node:test').TestContext, files: Record<string, string>, options: Partial<ControlPlaneOptions> = {}): Promise<Setup> {
  const caDir = await mkdtemp(join(tmpdir(), 'meshlet-reg-ca-'));
  const cfg = await configDir(files);
  const cp = await createControlPlane({ config: cfg.dir, port: 0, debounceMs: 20, log: quiet, ca: { dir: caDir }, ...options });
  const meshes: Mesh[] = [];
  const clients: AdsClient[] = [];
  t.after(async () => {
    for (const c of clients) await c.close();
    for (const m of meshes) await m.close();
    await cp.close();
    await cfg.remove();
    await rm(caDir, { recursive: true, force: true });
  });
  return {
    cp, cfg,
    async mesh(name, serviceAccount, xds = {}, labels = { app: name }) {
      const mesh = await createMesh({
        workload: { name, namespace: 'default', serviceAccount, labels },
        ca: { root: cp.rootCert(), token: cp.mintToken({ namespace: 'default', serviceAccount, ttl: '5m' }) },
        xds: { server: `127.0.0.1:${cp.port}`, initialFetchTimeoutMs: 500, ...xds },
      });
      meshes.push(mesh);
      return mesh;
    },
    ads(workload, o = {}) {
      const client = createAdsClient({
        server: `127.0.0.1:${cp.port}`, workload, backoff: { initialMs: 50, maxMs: 200 }, onResources: () => {},
        ...(o.credentials && { credentials: o.credentials }), ...(o.token && { token: o.token }), ...(o.trace && { trace: o.trace }),
      });
      clients.push(client);
      return client;
    },
  };
}

const endpointsOf = (mesh: Mesh, cluster: string): string[] =>
  mesh.configDump().endpoints.find((e) => e.cluster_name === cluster)?.endpoints
    ?.flatMap((g) => g.lb_endpoints.map((l) => `${l.endpoint.address.socket_address.address}:${l.endpoint.address.socket_address.port_value}`)).sort() ?? [];

/** `count` sequential calls (bounded in count and by a 20 s deadline); the tally of response bodies. */
async function split(mesh: Mesh, count: number): Promise<Record<string, number>> {
  const bodies: string[] = [];
  const deadline = Date.now() + 20_000;
  for (let i = 0; i < count && Date.now() < deadline; i++) bodies.push(await (await mesh.fetch(CALC_URL)).text());
  assert.equal(bodies.length, count, 'every call answered before the deadline');
  return tally(bodies);
}

test('the hijack: plaintext and wrong-identity attackers claiming calculate are never endpoints; the split stays 100 % real', { timeout: 60_000 }, async (t) => {
  // plaintext allowed, so the plaintext attacker gets as far as it can: config, but no registration
  const s = await setup(t, { 'services.yaml': services + '---' + calculateGroup }, { plaintext: true });
  const real: TestServer[] = await Promise.all([startServer('real'), startServer('real'), startServer('real')]);
  const attacker = await startServer('attacker');
  t.after(() => Promise.all([...real, attacker].map((r) => r.close())));
  const attackerPorts = { http: attacker.port };
  const material = await s.cp.ca!.issueWorkload('spiffe://cluster.local/ns/default/sa/image');
  const imageCert = rotatingControlPlaneCredentials(staticIdentity(material), istiodSpiffeId('cluster.local'));
  // 0. image's certificate squatting the node id the first real instance will use, before it connects
  s.ads({ name: 'calculate-0', instanceName: `calculate-0-${process.pid}`, namespace: 'default', serviceAccount: 'image', address: '127.0.0.1', ports: attackerPorts, autoRegisterGroup: 'calculate' }, { credentials: imageCert });
  await waitFor(() => s.cp.status().unregistered.length === 1, 5000, 'the squatter refused');
  for (const [i, r] of real.entries()) {
    await s.mesh(`calculate-${i}`, 'calculate', { address: '127.0.0.1', ports: { http: r.port }, autoRegisterGroup: 'calculate' });
  }
  // 1. plaintext, no credentials, its own service account, `app: calculate`, the group named
  const plain = s.ads({ name: 'evil-plain', namespace: 'default', serviceAccount: 'evil', labels: { app: 'calculate' }, address: '127.0.0.1', ports: attackerPorts, autoRegisterGroup: 'calculate', instanceName: 'evil-plain' });
  // 2. a valid certificate of ANOTHER service account (image) claiming calculate's group, over mTLS
  await s.mesh('evil-image', 'image', { address: '127.0.0.1', ports: attackerPorts, autoRegisterGroup: 'calculate' }, { app: 'calculate' });
  // 3. image registering into its own group but labelling itself app=calculate
  await s.mesh('evil-label', 'image', { address: '127.0.0.1', ports: attackerPorts, autoRegisterGroup: 'image' }, { app: 'calculate' });
  // 4. image's certificate with metadata claiming to be calculate: the stream itself is refused (istiod's identity check)
  const lines: string[] = [];
  const liar = s.ads({ name: 'evil-liar', namespace: 'default', serviceAccount: 'calculate', labels: { app: 'calculate' }, address: '127.0.0.1', ports: attackerPorts, autoRegisterGroup: 'calculate' },
    { credentials: imageCert, trace: (l) => lines.push(l) });
  await plain.ready();
  await waitFor(() => lines.find((l) => /PERMISSION_DENIED: authenticated as spiffe:\/\/cluster\.local\/ns\/default\/sa\/image, but the node claims service account calculate/.test(l)), 5000, 'the liar refused');
  assert.equal(liar.status().connected, false);

  const client = await s.mesh('client', 'client');
  await waitFor(() => s.cp.status().workloads.length === 4 && s.cp.status().unregistered.length === 3, 5000, 'registrations settled');
  const status = s.cp.status();
  assert.deepEqual(status.workloads.map((w) => `${w.group}:${w.identity}`).sort(), [
    ...real.map(() => 'calculate:spiffe://cluster.local/ns/default/sa/calculate'), 'image:spiffe://cluster.local/ns/default/sa/image',
  ]);
  const image = status.workloads.find((w) => w.group === 'image')!;
  assert.equal(image.labels.app, 'image', 'the group fixes app');
  assert.match(image.warnings.join('\n'), /node label app=calculate ignored: WorkloadGroup sets app=image/);
  const reasons = Object.fromEntries(status.unregistered.map((u) => [u.name.replace(/-\d+$/, ''), u.reason]));
  assert.match(reasons['calculate-0']!, /sa\/image is not the service account default\/calculate/, 'the squatter is refused, the real instance with the same node id registered');
  assert.match(reasons['evil-plain']!, /not authenticated/);
  assert.match(reasons['evil-image']!, /identity spiffe:\/\/cluster\.local\/ns\/default\/sa\/image is not the service account default\/calculate of WorkloadGroup default\/calculate/);

  // what the client's mesh got: exactly the three real instances
  await waitFor(() => endpointsOf(client, CALC_EDS).length === 3, 5000, 'EDS with the real endpoints');
  assert.deepEqual(endpointsOf(client, CALC_EDS), real.map((r) => `127.0.0.1:${r.port}`).sort());
  assert.deepEqual(await split(client, 120), { real: 120 });
  assert.equal(attacker.hits, 0);
  for (const r of real) assert.ok(r.hits > 0, 'round robin reaches every real instance');
});

test('an authenticated node naming its group is registered with the template labels; by certificate or by bearer token', async (t) => {
  const s = await setup(t, { 'services.yaml': services + '---' + calculateGroup }, { registrationGraceMs: 50 });
  const server = await startServer('real');
  t.after(() => server.close());
  // mTLS with calculate's certificate; node labels may add (zone) but not override (version)
  await s.mesh('calculate', 'calculate', { address: '127.0.0.1', ports: { http: server.port }, autoRegisterGroup: 'calculate' }, { app: 'calculate', version: 'v9', zone: 'a' });
  const [viaCert] = await waitFor(() => s.cp.status().workloads.length === 1 && s.cp.status().workloads, 5000, 'registered by certificate');
  assert.deepEqual(viaCert!.labels, { app: 'calculate', version: 'v1', team: 'pets', zone: 'a' });
  assert.equal(viaCert!.serviceAccount, 'calculate');
  assert.deepEqual([viaCert!.address, viaCert!.ports], ['127.0.0.1', { http: server.port }]);
  assert.match(viaCert!.warnings.join('\n'), /node label version=v9 ignored/);

  // TLS without a client certificate, authenticated by the control plane's bootstrap token
  const serverOnly = grpc.credentials.createSsl(Buffer.from(s.cp.rootCert()), null, null, { checkServerIdentity: pinnedServerIdentityCheck(istiodSpiffeId('cluster.local')) });
  const workload = { name: 'calculate-t', namespace: 'default', serviceAccount: 'calculate', address: '127.0.0.2', ports: { http: 8000 }, autoRegisterGroup: 'calculate', instanceName: 'calculate-t' };
  const byToken = s.ads(workload, { credentials: serverOnly, token: s.cp.mintToken({ namespace: 'default', serviceAccount: 'calculate' }) });
  await waitFor(() => s.cp.status().workloads.find((w) => w.name === 'calculate-t'), 5000, 'registered by token');
  assert.equal(s.cp.syncz().find((c) => c.node.includes('calculate-t'))?.identity, 'spiffe://cluster.local/ns/default/sa/calculate');
  // the same without a token is anonymous; a token from the CA for image does not fit the group
  s.ads({ ...workload, instanceName: 'anon', address: '127.0.0.3' }, { credentials: serverOnly });
  s.ads({ ...workload, serviceAccount: 'image', instanceName: 'wrong', address: '127.0.0.4' }, { credentials: serverOnly, token: s.cp.mintToken({ namespace: 'default', serviceAccount: 'image' }) });
  s.ads({ ...workload, instanceName: 'forged', address: '127.0.0.5' }, { credentials: serverOnly, token: 'e30.e30.AAAA' });
  const refused = await waitFor(() => s.cp.status().unregistered.length === 3 && s.cp.status().unregistered, 5000, 'three refusals');
  const why = Object.fromEntries(refused.map((r) => [r.name, r.reason]));
  assert.match(why.anon!, /no client certificate and no authorization bearer token/);
  assert.match(why.wrong!, /sa\/image is not the service account default\/calculate/);
  assert.match(why.forged!, /not authenticated \(.+\)/);
  // the debug endpoint shows the same
  assert.equal(s.cp.status().workloads.length, 2);

  // a node gone is removed after the grace period
  await byToken.close();
  await waitFor(() => s.cp.status().workloads.length === 1, 5000, 'removed after the grace period');
});

test('a WorkloadGroup added after its workload connected registers it; removing the group unregisters it', async (t) => {
  const s = await setup(t, { 'services.yaml': services });
  const server = await startServer('real');
  t.after(() => server.close());
  const client = await s.mesh('client', 'client');
  await s.mesh('calculate', 'calculate', { address: '127.0.0.1', ports: { http: server.port }, autoRegisterGroup: 'calculate' });
  const [pending] = await waitFor(() => s.cp.status().unregistered.length === 1 && s.cp.status().unregistered, 5000, 'refused without a group');
  assert.match(pending!.reason, /WorkloadGroup default\/calculate not found/);

  await s.cfg.write('calculate-group.yaml', calculateGroup);
  await s.cp.reload();
  await waitFor(() => endpointsOf(client, CALC_EDS).length === 1, 5000, 'registered once the group exists');
  assert.deepEqual(await split(client, 10), { real: 10 });

  await s.cfg.write('calculate-group.yaml', '');
  await s.cp.reload();
  await waitFor(() => endpointsOf(client, CALC_EDS).length === 0, 5000, 'unregistered with the group');
  assert.equal(s.cp.status().workloads.length, 0);
});

test('with a CA, plaintext ADS is refused by default and served when allowed; plaintext: false needs a CA', async (t) => {
  const s = await setup(t, { 'services.yaml': services });
  assert.equal(s.cp.status().plaintext, false);
  const lines: string[] = [];
  const plain = s.ads({ name: 'legacy', namespace: 'default' }, { trace: (l) => lines.push(l) });
  await waitFor(() => lines.find((l) => /UNAUTHENTICATED: plaintext ADS is off on this control plane/.test(l)), 5000, 'the refusal');
  assert.equal(plain.status().connected, false);
  assert.equal(plain.status().version, '', 'no config over plaintext');
  assert.ok(s.cp.status().refusedPlaintextStreams >= 1);
  // the SDK with the control plane's CA connects over mTLS on the same port
  const mesh = await s.mesh('client', 'client');
  assert.equal(mesh.xdsStatus()?.connected, true);
  assert.equal(s.cp.syncz().find((c) => c.node.includes('client'))?.identity, 'spiffe://cluster.local/ns/default/sa/client');

  const open = await setup(t, { 'services.yaml': services }, { plaintext: true });
  const openLines: string[] = [];
  const allowed = open.ads({ name: 'legacy', namespace: 'default' }, { token: open.cp.mintToken({ namespace: 'default', serviceAccount: 'legacy' }), trace: (l) => openLines.push(l) });
  await allowed.ready();
  assert.ok(openLines.includes('not sending the bootstrap token: the ADS channel is plaintext'), 'a token never travels in plaintext');
  assert.equal(open.cp.status().plaintext, true);

  const cfg = await configDir({});
  t.after(() => cfg.remove());
  await assert.rejects(createControlPlane({ config: cfg.dir, port: 0, plaintext: false, log: quiet }), (err: unknown) => err instanceof MeshError && err.code === 'MESH_NO_CA');
  // defaults: loopback, plaintext without a CA
  const bare = await createControlPlane({ config: cfg.dir, port: 0, debugPort: 0, log: quiet });
  t.after(() => bare.close());
  assert.equal(bare.status().plaintext, true);
  assert.deepEqual([bare.host, bare.debugHost], ['127.0.0.1', '127.0.0.1']);
});

test('CLI: --plaintext allows plaintext ADS next to --ca-dir, and needs --ca-dir', async (t) => {
  const cfg = await configDir({});
  const caDir = await mkdtemp(join(tmpdir(), 'meshlet-reg-cli-'));
  const lines: string[] = [];
  t.mock.method(process.stdout, 'write', (chunk: string | Uint8Array) => (lines.push(String(chunk)), true));
  let close: (() => Promise<void>) | undefined;
  try {
    close = await main(['control-plane', '--config', cfg.dir, '--port', '0', '--ca-dir', caDir, '--plaintext']);
    assert.match(lines.find((l) => l.startsWith('meshlet control-plane:')) ?? '', /over TLS, plaintext ADS allowed on 127\.0\.0\.1:\d+/);
    await assert.rejects(main(['control-plane', '--config', cfg.dir, '--plaintext']), /--plaintext only matters with --ca-dir/);
  } finally {
    t.mock.restoreAll();
    await close?.();
    await cfg.remove();
    await rm(caDir, { recursive: true, force: true });
  }
});
