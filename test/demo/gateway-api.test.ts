/**
 * `npm run demo -- --api gateway`: the pet shop's routing scenarios (canary,
 * blue/green, dark release, timeout, retry) applied from Gateway API
 * HTTPRoute files (examples/demo/scenarios/gateway-api/) instead of
 * VirtualServices, through the same control plane: the page behaves as
 * with the Istio YAML (test/demo/demo.test.ts), scenario by scenario.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';

interface Outcome {
  call: { status: number; flags?: string; ms: number; protocol?: string };
  answer?: { pet: 'cat' | 'dog'; result: number; version: string };
}

async function getJson<T>(url: string, headers: Record<string, string> = {}): Promise<T> {
  const res = await request(url, { headers });
  assert.equal(res.statusCode, 200, url);
  return (await res.body.json()) as T;
}

describe('npm run demo -- --api gateway (HTTPRoute scenarios, real processes on 127.0.0.1)', { timeout: 180_000 }, () => {
  let child: ChildProcess;
  let exited: Promise<number | null>;
  let out = '';
  let url: string;
  let consoleBase: string;

  before(async () => {
    const main = fileURLToPath(new URL('../../examples/demo/main.ts', import.meta.url));
    child = spawn(process.execPath, ['--import', 'tsx', main, '--api', 'gateway', '--scenario', 'blue-green', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready in 150 s:\n${out}`)), 150_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const m = /open (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      void exited.then(() => reject(new Error(`exited early:\n${out}`)));
    });
    consoleBase = `http://127.0.0.1:${/demo console on port (\d+)/.exec(out)![1]}/`;
  });
  after(async () => {
    if (child?.exitCode === null) {
      child.kill('SIGINT');
      await exited;
    }
  });

  async function applyOk(name: string): Promise<void> {
    const res = await request(`${consoleBase}console/api/scenarios/${encodeURIComponent(name)}`, { method: 'POST' });
    const body = (await res.body.json()) as { active?: string };
    assert.equal(res.statusCode, 200, JSON.stringify(body));
    assert.equal(body.active, name);
  }

  async function tallyPets(n: number, headers: Record<string, string> = {}, query = ''): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const o = await getJson<Outcome>(`${url}api/calculate?x=3&y=4${query}`, headers);
      const key = o.answer?.pet ?? `${o.call.status} ${o.call.flags ?? ''}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  }

  it('starts with the HTTPRoute blue/green: only the dog', async () => {
    assert.match(out, /applied through the control plane \(Gateway API HTTPRoutes\)/);
    assert.deepEqual(await tallyPets(20), { dog: 20 });
  });

  it('baseline (no HTTPRoute): round robin over both versions', async () => {
    await applyOk('baseline');
    const counts = await tallyPets(10);
    assert.deepEqual(Object.keys(counts).sort(), ['cat', 'dog']);
  });

  it('canary 90/10: mostly cats, sometimes a dog', async () => {
    await applyOk('canary');
    const counts = await tallyPets(60);
    assert.equal((counts.cat ?? 0) + (counts.dog ?? 0), 60);
    // 90/10 over 60 calls: fewer than 42 cats has a probability below 1e-5.
    assert.ok((counts.cat ?? 0) >= 42, JSON.stringify(counts));
  });

  it('dark release: cats without the header, dogs with `version: dog`, over HTTP and gRPC', async () => {
    await applyOk('dark-release');
    assert.deepEqual(await tallyPets(10), { cat: 10 });
    assert.deepEqual(await tallyPets(10, { version: 'dog' }), { dog: 10 });
    assert.deepEqual(await tallyPets(4, {}, '&proto=grpc'), { cat: 4 });
    assert.deepEqual(await tallyPets(4, { version: 'dog' }, '&proto=grpc'), { dog: 4 });
  });

  it('timeout: the sleeping cat answers "Timeout Error" (504 UT) after about 2 s', async () => {
    await applyOk('timeout');
    const o = await getJson<Outcome>(`${url}api/calculate?x=1&y=2`);
    assert.equal(o.call.status, 504);
    assert.equal(o.call.flags, 'UT');
    assert.ok(o.call.ms >= 1950, `mesh call took ${o.call.ms} ms`);
  });

  it('retry: the HTTPRoute retry (GEP-1731) reaches the workloads as a retry policy; a per-try timeout is not retried', async () => {
    await applyOk('retry');
    const o = await getJson<Outcome>(`${url}api/calculate?x=1&y=2`);
    assert.equal(o.call.status, 504);
    assert.equal(o.call.flags, 'UT');
    assert.ok(o.call.ms >= 1950, `mesh call took ${o.call.ms} ms`);
  });
});
