/**
 * Cost of one global rate-limit check through the client: a bare grpc-js
 * unary call to a service that answers OK at once (the floor), the service
 * with in-memory counters, and the service with Redis counters — each server
 * in its own child process, same client, same run.
 *
 *   node --import tsx bench/ratelimit.ts [--calls 5000] [--concurrency 32]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { createRateLimitClient, createRateLimitService, rateLimitServiceDefinition } from '../src/ratelimit/index.js';
import { startRedis } from '../test/helpers/redis.js';

const config = `
domain: bench
descriptors:
  - key: generic_key
    value: gateway
    rate_limit: { unit: second, requests_per_unit: 4294967295 }
  - key: remote_address
    rate_limit: { unit: second, requests_per_unit: 4294967295 }
`;
const descriptors = [
  { entries: [{ key: 'generic_key', value: 'gateway' }] },
  { entries: [{ key: 'remote_address', value: '10.0.0.1' }] },
];

/** Child mode: serve one backend and print the port. */
async function serve(kind: string): Promise<void> {
  let close: () => Promise<void>;
  let port: number;
  if (kind === 'noop') {
    const server = new grpc.Server();
    server.addService(rateLimitServiceDefinition(), {
      ShouldRateLimit(_call: unknown, cb: grpc.sendUnaryData<unknown>) {
        cb(null, { overall_code: 'OK', statuses: [{ code: 'OK' }, { code: 'OK' }] });
      },
    });
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    close = async () => void server.forceShutdown();
  } else {
    const rls = await createRateLimitService({ config, port: 0, host: '127.0.0.1', redis: kind === 'memory' ? undefined : kind });
    port = rls.port;
    close = () => rls.close();
  }
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  process.stdin.resume();
  process.stdin.once('end', () => void close().then(() => process.exit(0)));
}

async function spawnServer(kind: string): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'serve', kind], { stdio: ['pipe', 'pipe', 'inherit'] });
  let buf = '';
  for await (const chunk of child.stdout!) {
    buf += chunk;
    if (buf.includes('\n')) break;
  }
  return { port: JSON.parse(buf.split('\n')[0]!).port as number, child };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

interface Result {
  callsPerSec: number;
  p50: number;
  p99: number;
  errors: number;
}

async function measure(port: number, calls: number, concurrency: number): Promise<Result> {
  const client = createRateLimitClient({ target: `127.0.0.1:${port}`, timeoutMs: 1000 });
  let errors = 0;
  const budgetMs = 15_000;
  try {
    for (let i = 0; i < 300; i++) await client.shouldRateLimit('bench', descriptors); // warm-up
    // Latency: one call at a time.
    const lat: number[] = [];
    const latDeadline = performance.now() + budgetMs;
    for (let i = 0; i < calls && performance.now() < latDeadline; i++) {
      const t0 = performance.now();
      const d = await client.shouldRateLimit('bench', descriptors);
      lat.push(performance.now() - t0);
      if (d.error) errors++;
    }
    lat.sort((a, b) => a - b);
    // Throughput: `concurrency` calls in flight.
    let done = 0;
    const deadline = performance.now() + budgetMs;
    const t0 = performance.now();
    const worker = async () => {
      while (done < calls * 2 && performance.now() < deadline) {
        done++;
        const d = await client.shouldRateLimit('bench', descriptors);
        if (d.error) errors++;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsed = (performance.now() - t0) / 1000;
    return { callsPerSec: done / elapsed, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), errors };
  } finally {
    client.close();
  }
}

async function main(): Promise<void> {
  const arg = (name: string, dflt: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const calls = arg('calls', 5000);
  const concurrency = arg('concurrency', 32);
  const redis = await startRedis();
  const kinds: Array<[string, string]> = [['grpc-js noop', 'noop'], ['memory', 'memory']];
  if (redis) kinds.push(['redis', redis.url]);
  else console.log('redis-server not installed: Redis column skipped');
  const results: Array<[string, Result]> = [];
  try {
    for (const [label, kind] of kinds) {
      const { port, child } = await spawnServer(kind);
      try {
        results.push([label, await measure(port, calls, concurrency)]);
      } finally {
        child.stdin!.end();
        await once(child, 'exit');
      }
    }
  } finally {
    await redis?.close();
  }
  const base = results[0]![1];
  console.log(`ShouldRateLimit through the client, 2 descriptors, ${calls} sequential calls (latency) and ${concurrency} in flight (throughput)`);
  console.log(['backend'.padEnd(14), 'calls/s'.padStart(9), 'p50 ms'.padStart(8), 'p99 ms'.padStart(8), 'vs noop'.padStart(8), 'errors'.padStart(7)].join(' '));
  for (const [label, r] of results) {
    console.log([label.padEnd(14), r.callsPerSec.toFixed(0).padStart(9), r.p50.toFixed(3).padStart(8), r.p99.toFixed(3).padStart(8),
      (r.callsPerSec / base.callsPerSec).toFixed(2).padStart(8), String(r.errors).padStart(7)].join(' '));
  }
}

if (process.argv[2] === 'serve') await serve(process.argv[3]!);
else await main();
