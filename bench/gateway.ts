/**
 * Ingress gateway throughput vs a bare node:http reverse proxy doing the same
 * forward (keep-alive agent, piped bodies). Backend, gateway and proxy each
 * run in their own child process; the load generator (undici Pool) runs here
 * and alternates between the two in interleaved rounds.
 *
 *   node --import tsx bench/gateway.ts [--requests 4000] [--concurrency 32] [--rounds 3]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { compiled } from './compiled.js';

const BODY = Buffer.from(JSON.stringify({ pet: 'cat', result: 3 }));

/** Child mode: one server, prints `{ port }`, exits when stdin ends. */
async function serve(kind: string, arg: string | undefined): Promise<void> {
  let port: number;
  let close: () => Promise<void>;
  if (kind === 'backend') {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
      res.end(BODY);
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    close = () => new Promise((r) => (server.closeAllConnections(), server.close(() => r())));
  } else if (kind === 'proxy') {
    const backendPort = Number(arg);
    const agent = new Agent({ keepAlive: true, maxSockets: 256 });
    const server = createServer((req, res) => {
      const headers = { ...req.headers };
      delete headers.connection;
      const up = httpRequest({ host: '127.0.0.1', port: backendPort, method: req.method, path: req.url, headers, agent }, (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
      req.pipe(up);
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    close = () => new Promise((r) => (server.closeAllConnections(), server.close(() => r())));
  } else {
    const { createGateway } = await compiled<typeof import('../src/gateway/index.js')>('gateway/index.js');
    const gw = await createGateway({ config: arg!, port: 0, serverPort: 80 });
    port = gw.port;
    close = () => gw.close();
  }
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  process.stdin.resume();
  process.stdin.once('end', () => void close().then(() => process.exit(0)));
}

async function spawnServer(kind: string, arg?: string): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'serve', kind, ...(arg ? [arg] : [])], { stdio: ['pipe', 'pipe', 'inherit'] });
  let buf = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      buf += c;
      const line = buf.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`${kind} exited with ${code}`)));
  });
  return { port, child };
}

interface Result {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

async function round(port: number, requests: number, concurrency: number): Promise<Result> {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: concurrency, pipelining: 1 });
  const lat: number[] = [];
  let errors = 0;
  let issued = 0;
  const deadline = performance.now() + 30_000;
  const worker = async (): Promise<void> => {
    while (issued < requests && performance.now() < deadline) {
      issued++;
      const t0 = performance.now();
      try {
        const res = await pool.request({ path: '/calculate?x=1&y=2', method: 'GET', headers: { host: 'pets.example.com' } });
        await res.body.dump();
        if (res.statusCode !== 200) errors++;
      } catch {
        errors++;
      }
      lat.push(performance.now() - t0);
    }
  };
  try {
    for (let i = 0; i < 200; i++) await (await pool.request({ path: '/', method: 'GET', headers: { host: 'pets.example.com' } })).body.dump(); // warm-up
    const t0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsed = (performance.now() - t0) / 1000;
    lat.sort((a, b) => a - b);
    const pct = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))]!;
    return { rps: lat.length / elapsed, p50: pct(0.5), p99: pct(0.99), errors };
  } finally {
    await pool.close();
  }
}

async function main(): Promise<void> {
  const arg = (name: string, dflt: number): number => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const requests = arg('requests', 4000);
  const concurrency = arg('concurrency', 32);
  const rounds = arg('rounds', 3);
  const dir = await mkdtemp(join(tmpdir(), 'meshlet-bench-gw-'));
  const children: ChildProcess[] = [];
  try {
    const backend = await spawnServer('backend');
    children.push(backend.child);
    const config = join(dir, 'mesh.yaml');
    await writeFile(config, `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: client, namespace: default }
spec:
  hosts: [client.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${backend.port} } }]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: client-gateway, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ["*"] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: client, namespace: default }
spec:
  hosts: ["*"]
  gateways: [client-gateway]
  http: [{ route: [{ destination: { host: client, port: { number: 8080 } } }] }]
`);
    const gateway = await spawnServer('gateway', config);
    children.push(gateway.child);
    const proxy = await spawnServer('proxy', String(backend.port));
    children.push(proxy.child);
    const totals: Record<'proxy' | 'gateway', Result[]> = { proxy: [], gateway: [] };
    for (let r = 0; r < rounds; r++) {
      totals.proxy.push(await round(proxy.port, requests, concurrency));
      totals.gateway.push(await round(gateway.port, requests, concurrency));
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const summary = (rs: Result[]): Result => ({ rps: median(rs.map((x) => x.rps)), p50: median(rs.map((x) => x.p50)), p99: median(rs.map((x) => x.p99)), errors: rs.reduce((s, x) => s + x.errors, 0) });
    const p = summary(totals.proxy);
    const g = summary(totals.gateway);
    console.log(`GET through a proxy to one node:http backend, ${requests} requests × ${rounds} interleaved rounds, ${concurrency} in flight (medians of rounds)`);
    console.log([''.padEnd(16), 'req/s'.padStart(9), 'p50 ms'.padStart(8), 'p99 ms'.padStart(8), 'errors'.padStart(7)].join(' '));
    for (const [label, x] of [['node:http proxy', p], ['meshlet gateway', g]] as const) {
      console.log([label.padEnd(16), x.rps.toFixed(0).padStart(9), x.p50.toFixed(2).padStart(8), x.p99.toFixed(2).padStart(8), String(x.errors).padStart(7)].join(' '));
    }
    console.log(`gateway / proxy throughput ratio: ${(g.rps / p.rps).toFixed(2)}; p50 ratio ${(g.p50 / p.p50).toFixed(2)}`);
  } finally {
    for (const c of children) {
      c.stdin!.end();
      await once(c, 'exit');
    }
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'serve') await serve(process.argv[3]!, process.argv[4]);
else await main();
