/**
 * axios through the mesh (its default node:http adapter with `mesh.httpAgent`) against axios straight to
 * the upstream with a keep-alive http.Agent — same upstream (its own process), same run, variants
 * interleaved; also the same against plain node:http. Telemetry off on the mesh, so the ratio is
 * the cost of the agent's pipe and the router.
 *
 *   node --import tsx bench/axios.ts [--seconds 30] [--rounds 30] [--concurrency 50]
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { parseArgs } from 'node:util';
import axios from 'axios';
import { compiled } from './compiled.js';

const { createMesh } = await compiled<typeof import('../src/index.js')>('index.js');
import { compare, startUpstream, type Variant } from './harness.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, rounds: { type: 'string', default: '5' }, concurrency: { type: 'string', default: '50' } } });

const upstream = await startUpstream([0]);
const port = upstream.ports[0]!;
const mesh = await createMesh({
  telemetry: { metrics: false, metadataExchange: false },
  config: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: calculate }
spec:
  hosts: [calculate.default.svc.cluster.local]
  resolution: STATIC
  ports: [{ number: 8000, name: http }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${port} } }]
`,
});
const direct = new HttpAgent({ keepAlive: true });
const plain = axios.create({ httpAgent: direct, proxy: false });
const meshed = axios.create({ httpAgent: mesh.httpAgent, proxy: false });
const node = (agent: HttpAgent, url: string) => new Promise<void>((resolve, reject) => {
  const req = httpRequest(url, { agent }, (res) => { res.resume(); res.on('end', resolve); });
  req.on('error', reject);
  req.end();
});

const variants: Variant[] = [
  { name: 'axios direct', call: () => plain.get(`http://127.0.0.1:${port}/`) },
  { name: 'axios → mesh.httpAgent', call: () => meshed.get('http://calculate.default.svc.cluster.local:8000/'), baseline: 'axios direct' },
  { name: 'node:http direct', call: () => node(direct, `http://127.0.0.1:${port}/`) },
  { name: 'node:http → mesh.httpAgent', call: () => node(mesh.httpAgent, 'http://calculate.default.svc.cluster.local:8000/'), baseline: 'node:http direct' },
];
await compare(variants, { seconds: Number(values.seconds), rounds: Number(values.rounds), concurrency: Number(values.concurrency), warmupMs: 1000 });
await mesh.close();
direct.destroy();
upstream.stop();
