/**
 * mTLS benchmark: meshlet's ISTIO_MUTUAL (auto-mTLS, workload certificates
 * from a development CA, SPIFFE check) against plain TLS undici, same
 * server, same run, connections reused. The server is `mesh.createServer`
 * (PERMISSIVE: mTLS for the mesh, server-only TLS for undici) in a child
 * process.
 *
 *   node --import tsx bench/http-mtls.ts [--seconds 20] [--rounds 20] [--concurrency 50]
 */
import { fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { AddressInfo } from 'node:net';
import { Pool, request } from 'undici';
import { compiled } from './compiled.js';

const { createMesh } = await compiled<typeof import('../src/index.js')>('index.js');
import { compare } from './harness.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '20' }, rounds: { type: 'string', default: '20' }, concurrency: { type: 'string', default: '50' }, server: { type: 'string' } } });

const body = JSON.stringify({ result: 3 });

if (values.server !== undefined) {
  // Child: the meshed upstream.
  const mesh = await createMesh({ workload: { name: 'calculate', namespace: 'default', serviceAccount: 'calculate', labels: { app: 'calculate' } }, config: [], ca: { dir: values.server } });
  const server = mesh.createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(body);
  });
  server.plainServer.keepAliveTimeout = 60_000;
  if (server.permissiveServer) server.permissiveServer.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  console.log(JSON.stringify({ port: (server.address() as AddressInfo).port, root: mesh.identity!.current.root }));
  process.on('disconnect', () => process.exit(0));
} else {
  const caDir = await mkdtemp(join(tmpdir(), 'meshlet-bench-'));
  const child = fork(fileURLToPath(import.meta.url), ['--server', caDir], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const { port, root } = await new Promise<{ port: number; root: string }>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (l) => { rl.close(); resolve(JSON.parse(l)); });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  const mesh = await createMesh({
    workload: { name: 'client', namespace: 'default', serviceAccount: 'client', labels: { app: 'client' } },
    ca: { dir: caDir },
    config: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: calculate, namespace: default }
spec:
  hosts: [calculate.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${port} }, labels: { app: calculate, security.istio.io/tlsMode: istio }, serviceAccount: calculate }]`,
  });
  // Baseline: server-authenticated TLS with the same root, no client certificate, no mesh.
  const tls = new Pool(`https://127.0.0.1:${port}`, { connect: { ca: root, checkServerIdentity: () => undefined }, pipelining: 1 });
  const meshUrl = 'http://calculate.default.svc.cluster.local:8000/add?x=1&y=2';
  const tlsUrl = `https://127.0.0.1:${port}/add?x=1&y=2`;
  const consume = async (p: Promise<{ statusCode: number; body: { text(): Promise<string> } }>): Promise<void> => {
    const res = await p;
    await res.body.text();
    if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  };
  // Check the mesh really speaks mTLS before measuring.
  const peer = await mesh.request(meshUrl);
  await peer.body.text();
  for (let i = 0; i < 200; i++) await consume(request(tlsUrl, { dispatcher: tls })).catch((err) => { console.log('baseline error', i, err); process.exit(1); });
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const concurrency = Number(values.concurrency);
  console.log(`mTLS vs TLS: ${seconds}s, ${rounds} interleaved rounds, concurrency ${concurrency}, connections reused`);
  const results = await compare([
    { name: 'undici TLS', call: () => consume(request(tlsUrl, { dispatcher: tls })) },
    { name: 'mesh mTLS', call: () => consume(request(meshUrl, { dispatcher: mesh.dispatcher })), baseline: 'undici TLS' },
  ], { seconds, rounds, concurrency, warmupMs: 1000 });
  const mtls = results.get('mesh mTLS')!;
  const ratio = mtls.medianRatio ?? mtls.rps / results.get('undici TLS')!.rps;
  console.log(`mesh mTLS / undici TLS: ${(ratio * 100).toFixed(1)}% (target ≥ 90%)`);
  await tls.close();
  await mesh.close();
  child.disconnect();
  child.kill();
  await rm(caDir, { recursive: true, force: true });
}
