/**
 * Shared benchmark harness: start the upstream in its own process, run
 * variants interleaved in rounds at a fixed concurrency, and print req/s,
 * p50, p99, client CPU per request and the ratio against a baseline.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface Variant {
  name: string;
  /** one request, resolved when its body has been consumed */
  call: () => Promise<unknown>;
  /** the variant this one is compared with (its name) */
  baseline?: string;
}

interface Stats {
  requests: number;
  elapsedMs: number;
  cpuUs: number;
  latencies: number[];
  errors: number;
}

/** Starts bench-server.ts in a child process; resolves to its ports and a stopper. */
export async function startUpstream(ports: number[] = [0]): Promise<{ ports: number[]; child: ChildProcess; stop(): void }> {
  const child = fork(fileURLToPath(new URL('./bench-server.ts', import.meta.url)), ports.map(String), { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (l) => { rl.close(); resolve(l); });
    child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
  });
  return { ports: JSON.parse(line) as number[], child, stop: () => void child.kill() };
}

/** Runs `call` with `concurrency` in flight for `ms` milliseconds. */
async function runFor(call: () => Promise<unknown>, concurrency: number, ms: number, stats: Stats): Promise<void> {
  const deadline = performance.now() + ms;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let count = 0;
  async function worker(): Promise<void> {
    while (performance.now() < deadline) {
      const start = performance.now();
      try {
        await call();
      } catch {
        stats.errors++;
      }
      // Keep a bounded sample of latencies (every 4th) to limit memory.
      if ((count++ & 3) === 0) stats.latencies.push(performance.now() - start);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const cpu = process.cpuUsage(cpu0);
  stats.elapsedMs += performance.now() - t0;
  stats.cpuUs += cpu.user + cpu.system;
  stats.requests += count;
}

/** What {@link compare} measured for one variant. */
export interface VariantResult {
  rps: number;
  p50: number;
  p99: number;
  cpuUsPerReq: number;
  /** Median over rounds of (this variant's req/s ÷ its baseline's in the same round). */
  medianRatio?: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Runs every variant for `seconds` in total, split into `rounds` interleaved
 * slices after a warm-up, then prints the table and the ratios.
 */
export async function compare(variants: Variant[], options: { seconds: number; rounds: number; concurrency: number; warmupMs: number }): Promise<Map<string, VariantResult>> {
  const stats = new Map<string, Stats>(variants.map((v) => [v.name, { requests: 0, elapsedMs: 0, cpuUs: 0, latencies: [], errors: 0 }]));
  for (const v of variants) await runFor(v.call, options.concurrency, options.warmupMs, { requests: 0, elapsedMs: 0, cpuUs: 0, latencies: [], errors: 0 });
  const slice = (options.seconds * 1000) / options.rounds;
  // Requests per second of each variant in each round: ratios are taken round by round, so a
  // machine that speeds up or slows down between rounds moves both sides of a ratio together.
  const perRound = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  for (let r = 0; r < options.rounds; r++) {
    // Rotate the order each round so no variant always runs first.
    for (let i = 0; i < variants.length; i++) {
      const v = variants[(i + r) % variants.length]!;
      const s = stats.get(v.name)!;
      const before = s.requests;
      const t0 = performance.now();
      await runFor(v.call, options.concurrency, slice, s);
      perRound.get(v.name)!.push(((s.requests - before) / (performance.now() - t0)) * 1000);
    }
  }
  const results = new Map<string, VariantResult>();
  for (const v of variants) {
    const s = stats.get(v.name)!;
    const sorted = s.latencies.sort((a, b) => a - b);
    results.set(v.name, { rps: (s.requests / s.elapsedMs) * 1000, p50: percentile(sorted, 50), p99: percentile(sorted, 99), cpuUsPerReq: s.cpuUs / Math.max(1, s.requests) });
    if (s.errors > 0) console.log(`  ! ${v.name}: ${s.errors} errors`);
  }
  const pad = Math.max(...variants.map((v) => v.name.length));
  console.log(`${'variant'.padEnd(pad)}  ${'req/s'.padStart(8)}  ${'p50 ms'.padStart(7)}  ${'p99 ms'.padStart(7)}  ${'CPU µs/req'.padStart(10)}  ratio`);
  for (const v of variants) {
    const r = results.get(v.name)!;
    const base = v.baseline ? results.get(v.baseline) : undefined;
    const ratio = base ? `${((r.rps / base.rps) * 100).toFixed(1)}% of ${v.baseline} (CPU ${r.cpuUsPerReq - base.cpuUsPerReq >= 0 ? '+' : ''}${(r.cpuUsPerReq - base.cpuUsPerReq).toFixed(1)} µs/req)` : '';
    console.log(`${v.name.padEnd(pad)}  ${r.rps.toFixed(0).padStart(8)}  ${r.p50.toFixed(2).padStart(7)}  ${r.p99.toFixed(2).padStart(7)}  ${r.cpuUsPerReq.toFixed(1).padStart(10)}  ${ratio}`);
  }
  const paired = variants.filter((v) => v.baseline !== undefined && perRound.has(v.baseline));
  if (paired.length > 0 && options.rounds >= 4) {
    console.log(`\nratio per round (${options.rounds} rounds): median [25th–75th percentile]`);
    for (const v of paired) {
      const base = perRound.get(v.baseline!)!;
      const ratios = perRound.get(v.name)!.map((rps, i) => rps / base[i]!).sort((a, b) => a - b);
      const pct = (p: number) => `${(percentile(ratios, p) * 100).toFixed(1)}%`;
      results.get(v.name)!.medianRatio = percentile(ratios, 50);
      console.log(`  ${v.name.padEnd(pad)}  ${pct(50)} [${pct(25)}–${pct(75)}] of ${v.baseline}`);
    }
  }
  return results;
}
