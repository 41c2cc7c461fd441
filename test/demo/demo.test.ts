import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startDemo, type Demo } from '../../examples/demo/index.js';

interface Outcome {
  call: { status: number; flags?: string; ms: number; version?: string };
  answer?: { pet: 'cat' | 'dog'; result: number; version: string };
}

async function getJson<T>(url: string, headers: Record<string, string> = {}): Promise<T> {
  const res = await request(url, { headers });
  assert.equal(res.statusCode, 200, url);
  return (await res.body.json()) as T;
}

async function getText(url: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await request(url, { headers });
  assert.equal(res.statusCode, 200, url);
  return res.body.text();
}

const h1 = (html: string): string[] => [...html.matchAll(/<h1>(.*?)<\/h1>/g)].map((m) => m[1]!);

describe('pet-shop demo (real processes on 127.0.0.1)', { timeout: 180_000 }, () => {
  let demo: Demo;

  before(async () => {
    demo = await startDemo({ port: 0 });
  });
  after(async () => {
    await demo?.close();
  });

  /** n sequential calculations through the client's mesh; returns pet (or status/flags) counts. */
  async function tallyPets(n: number, headers: Record<string, string> = {}): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const o = await getJson<Outcome>(`${demo.url}api/calculate?x=3&y=4`, headers);
      const key = o.answer?.pet ?? `${o.call.status} ${o.call.flags ?? ''}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  }

  it('renders one page from calculate, db and image, round robin over both versions at baseline', async () => {
    const html = await getText(demo.url);
    assert.equal(h1(html).length, 1);
    assert.match(h1(html)[0]!, /^(Cat and addition room|Dog and multiplication room)$/);
    assert.match(html, /src="data:image\/svg\+xml;base64,/, 'photo from the image service');
    assert.match(html, /Tama|Pochi/, 'pet info from db');
    assert.match(html, /data-active-scenario>baseline</);
    assert.deepEqual(await tallyPets(10), { cat: 5, dog: 5 });
    const { view } = await getJson<{ view: { calculate: Outcome; calls: Array<{ service: string; status: number }> } }>(`${demo.url}api/view?x=6&y=7`);
    assert.deepEqual(view.calls.map((c) => `${c.service} ${c.status}`), ['calculate 200', 'db 200', 'image 200']);
    const answer = view.calculate.answer!;
    assert.equal(answer.result, answer.pet === 'cat' ? 13 : 42);
  });

  it('blue/green sends every calculation to the dog (multiply)', async () => {
    await demo.applyScenario('blue-green');
    assert.deepEqual(await tallyPets(30), { dog: 30 });
    const o = await getJson<Outcome>(`${demo.url}api/calculate?x=6&y=7`);
    assert.equal(o.answer?.result, 42);
    assert.equal(o.answer?.version, 'dog-multi');
    assert.deepEqual(h1(await getText(demo.url)), ['Dog and multiplication room']);
    assert.match(await getText(demo.url), /data-active-scenario>blue-green</);
  });

  it('dark release: cats without the header, dogs with `version: dog`', async () => {
    await demo.applyScenario('dark-release');
    assert.deepEqual(await tallyPets(15), { cat: 15 });
    assert.deepEqual(await tallyPets(15, { version: 'dog' }), { dog: 15 });
    assert.deepEqual(h1(await getText(demo.url, { version: 'dog' })), ['Dog and multiplication room']);
    assert.deepEqual(h1(await getText(demo.url)), ['Cat and addition room']);
  });

  it('timeout: the sleeping cat answers "Timeout Error" (504 UT) after about 2 s', async () => {
    await demo.applyScenario('timeout');
    const started = performance.now();
    const view = await getJson<{ html: string; view: { calculate: Outcome } }>(`${demo.url}api/view?x=1&y=2`);
    const elapsed = performance.now() - started;
    const { call } = view.view.calculate;
    assert.equal(call.status, 504);
    assert.equal(call.flags, 'UT');
    assert.ok(call.ms >= 1950 && call.ms < 3500, `mesh call took ${call.ms} ms`);
    assert.ok(elapsed >= 1950 && elapsed < 4500, `page took ${elapsed} ms`);
    assert.deepEqual(h1(view.html), ['Timeout Error']);
    assert.match(view.html, /x-meshlet-flags: UT/);
  });

  it('fault injection: the mesh answers 503 FI for calculate', async () => {
    await demo.applyScenario('fault-injection');
    const o = await getJson<Outcome>(`${demo.url}api/calculate?x=1&y=2`);
    assert.equal(o.call.status, 503);
    assert.equal(o.call.flags, 'FI');
    assert.deepEqual(h1(await getText(demo.url)), ['503 Service Unavailable']);
  });

  it('local rate limit: the 6th quick calculation gets 429 RL', async () => {
    await demo.applyScenario('local-rate-limit');
    const counts = await tallyPets(7);
    assert.equal(counts['429 RL'], 2, JSON.stringify(counts));
    assert.equal((counts.cat ?? 0) + (counts.dog ?? 0), 5, JSON.stringify(counts));
  });

  it('global rate limit: 5 requests a minute through the gateway, then 429 RL; the console stays reachable', async () => {
    await demo.applyScenario('global-rate-limit');
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      const res = await request(`${demo.url}api/calculate`);
      await res.body.dump();
      statuses.push(res.statusCode);
      if (res.statusCode === 429) assert.equal(res.headers['x-meshlet-flags'], 'RL');
    }
    // Fixed one-minute windows: a window boundary may fall inside the loop, hence 11 tries.
    assert.deepEqual(statuses.slice(0, 5), [200, 200, 200, 200, 200]);
    assert.ok(statuses.includes(429), statuses.join(','));
    // The graph samples every workload's metrics periodically: poll (bounded) until the RL edge shows.
    let limited = false;
    for (let i = 0; i < 40 && !limited; i++) {
      const graph = await getJson<{ edges: Array<{ source: string; target: string; flags: Record<string, number> }> }>(`${demo.url}console/api/graph`);
      limited = graph.edges.some((e) => e.source === 'gateway' && e.target === 'client' && (e.flags.RL ?? 0) > 0);
      if (!limited) await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(limited, 'the graph shows the gateway edge rate limited');
    await demo.applyScenario('baseline');
  });

  it('retry: the applied config carries attempts 3 and perTryTimeout 2s; a bad name keeps the active scenario', async () => {
    await demo.applyScenario('retry');
    const dump = await getJson<{ routes: Array<{ virtual_hosts: Array<{ domains: string[]; routes: Array<{ route?: { retry_policy?: { num_retries?: { value: number }; per_try_timeout?: { seconds?: number | string } ; retry_on?: string } } }> }> }> }>(`${demo.url}api/config-dump`);
    const policies = dump.routes.flatMap((r) => r.virtual_hosts).filter((vh) => vh.domains.some((d) => d.startsWith('calculate.default.svc.cluster.local')))
      .flatMap((vh) => vh.routes).map((r) => r.route?.retry_policy).filter((p) => p !== undefined);
    assert.ok(policies.length > 0, 'calculate has a retry policy');
    assert.equal(policies[0]!.num_retries?.value, 3);
    assert.equal(Number(policies[0]!.per_try_timeout?.seconds), 2);
    assert.match(policies[0]!.retry_on ?? '', /gateway-error/);
    await assert.rejects(demo.applyScenario('no-such-scenario'), /unknown scenario/);
    const state = await getJson<{ active: string }>(`${demo.url}api/scenarios`);
    assert.equal(state.active, 'retry');
    await demo.applyScenario('baseline');
  });
});
