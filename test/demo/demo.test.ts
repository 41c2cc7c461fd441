/**
 * The demo as `npm run demo` runs it: main.ts as a child process (six service
 * processes, the control plane, the console), every scenario applied through
 * the console's API as the page's buttons do, and at the end Ctrl-C (SIGINT)
 * stops every process. One demo for the whole file: starting one is most of
 * the cost.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';

interface Outcome {
  call: { status: number; flags?: string; ms: number; version?: string; protocol?: string; error?: string };
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

/** Whether a connection to 127.0.0.1:port is refused (nothing listens any more). */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe('npm run demo (main.ts, real processes on 127.0.0.1)', { timeout: 180_000 }, () => {
  let child: ChildProcess;
  let exited: Promise<number | null>;
  let out = '';
  let url: string;
  /** The demo console's own port: the operator's path, never behind the gateway's rate limit. */
  let consoleBase: string;

  before(async () => {
    const main = fileURLToPath(new URL('../../examples/demo/main.ts', import.meta.url));
    child = spawn(process.execPath, ['--import', 'tsx', main, '--scenario', 'blue-green', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
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
  after(() => {
    if (child?.exitCode === null) child.kill('SIGKILL');
  });

  /** What a scenario button does: POST to the console; resolves once every workload has the config. */
  async function apply(name: string): Promise<{ status: number; body: { active?: string; error?: string; probe?: { refused: boolean; detail: string } } }> {
    const res = await request(`${consoleBase}console/api/scenarios/${encodeURIComponent(name)}`, { method: 'POST' });
    return { status: res.statusCode, body: (await res.body.json()) as { active?: string; error?: string } };
  }
  async function applyOk(name: string): Promise<void> {
    const { status, body } = await apply(name);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.active, name);
  }

  /** n sequential calculations through the client's mesh; returns pet (or status/flags) counts. */
  async function tallyPets(n: number, headers: Record<string, string> = {}, query = ''): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const o = await getJson<Outcome>(`${url}api/calculate?x=3&y=4${query}`, headers);
      const key = o.answer?.pet ?? `${o.call.status} ${o.call.flags ?? ''}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  }

  it('prints one URL and starts with --scenario blue-green: only the dog', async () => {
    assert.equal(out.match(/http:\/\//g)?.length, 1, 'exactly one URL printed');
    assert.equal([...out.matchAll(/ready on 127\.0\.0\.1 port (\d+)/g)].length, 6, 'calculate v1, v2, db, image, client, gateway');
    assert.deepEqual(h1(await getText(url)), ['Dog and multiplication room']);
  });

  it('renders one page from calculate, db and image, round robin over both versions at baseline', async () => {
    await applyOk('baseline');
    const html = await getText(url);
    assert.equal(h1(html).length, 1);
    assert.match(h1(html)[0]!, /^(Cat and addition room|Dog and multiplication room)$/);
    assert.match(html, /src="data:image\/svg\+xml;base64,/, 'photo from the image service');
    assert.match(html, /Tama|Pochi/, 'pet info from db');
    assert.match(html, /data-active-scenario>baseline</);
    assert.deepEqual(await tallyPets(10), { cat: 5, dog: 5 });
    const { view } = await getJson<{ view: { calculate: Outcome; calls: Array<{ service: string; status: number }> } }>(`${url}api/view?x=6&y=7`);
    assert.deepEqual(view.calls.map((c) => `${c.service} ${c.status}`), ['calculate 200', 'db 200', 'image 200']);
    const answer = view.calculate.answer!;
    assert.equal(answer.result, answer.pet === 'cat' ? 13 : 42);
  });

  it('calculate over gRPC: the same VirtualService routes it (round robin, then dark release on metadata)', async () => {
    assert.deepEqual(await tallyPets(6, {}, '&proto=grpc'), { cat: 3, dog: 3 });
    const o = await getJson<Outcome>(`${url}api/calculate?x=6&y=7&proto=grpc`);
    assert.equal(o.call.protocol, 'grpc');
    assert.equal(o.answer?.result, o.answer?.pet === 'cat' ? 13 : 42);
    await applyOk('dark-release');
    assert.deepEqual(await tallyPets(4, {}, '&proto=grpc'), { cat: 4 });
    assert.deepEqual(await tallyPets(4, { version: 'dog' }, '&proto=grpc'), { dog: 4 });
    assert.match(await getText(`${url}?proto=grpc`), /id="grpc"[^>]* checked/);
  });

  it('blue/green sends every calculation to the dog (multiply)', async () => {
    await applyOk('blue-green');
    assert.deepEqual(await tallyPets(30), { dog: 30 });
    const o = await getJson<Outcome>(`${url}api/calculate?x=6&y=7`);
    assert.equal(o.answer?.result, 42);
    assert.equal(o.answer?.version, 'dog-multi');
    assert.deepEqual(h1(await getText(url)), ['Dog and multiplication room']);
    assert.match(await getText(url), /data-active-scenario>blue-green</);
  });

  it('dark release: cats without the header, dogs with `version: dog`', async () => {
    await applyOk('dark-release');
    assert.deepEqual(await tallyPets(15), { cat: 15 });
    assert.deepEqual(await tallyPets(15, { version: 'dog' }), { dog: 15 });
    assert.deepEqual(h1(await getText(url, { version: 'dog' })), ['Dog and multiplication room']);
    assert.deepEqual(h1(await getText(url)), ['Cat and addition room']);
  });

  it('timeout: the sleeping cat answers "Timeout Error" (504 UT) after about 2 s', async () => {
    await applyOk('timeout');
    const started = performance.now();
    const view = await getJson<{ html: string; view: { calculate: Outcome } }>(`${url}api/view?x=1&y=2`);
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
    await applyOk('fault-injection');
    const o = await getJson<Outcome>(`${url}api/calculate?x=1&y=2`);
    assert.equal(o.call.status, 503);
    assert.equal(o.call.flags, 'FI');
    assert.deepEqual(h1(await getText(url)), ['503 Service Unavailable']);
  });

  it('mTLS between services; STRICT refuses a plaintext probe while the page keeps working', async () => {
    await applyOk('baseline');
    const before = await getJson<{ probe: { refused: boolean; detail: string } }>(`${url}api/scenarios`);
    assert.deepEqual([before.probe.refused, before.probe.detail], [false, 'HTTP 200'], 'PERMISSIVE (the default) lets plaintext in');
    const { body } = await apply('mtls-strict');
    assert.equal(body.probe?.refused, true, JSON.stringify(body.probe));
    assert.match(await getText(url), /data-probe="refused"/);
    assert.deepEqual(Object.keys(await tallyPets(4)).sort(), ['cat', 'dog']);
    assert.deepEqual(Object.keys(await tallyPets(2, {}, '&proto=grpc')).sort(), ['cat', 'dog']);
    const metrics = await getText(`${url}metrics/calculate-v1`);
    assert.match(metrics, /istio_requests_total\{[^}]*reporter="destination"[^}]*connection_security_policy="mutual_tls"/);
  });

  it('authorization deny: calculate answers 403 "RBAC: access denied" over HTTP and gRPC', async () => {
    await applyOk('authorization-deny');
    const o = await getJson<Outcome>(`${url}api/calculate?x=1&y=2`);
    assert.deepEqual([o.call.status, o.call.flags, o.call.error], [403, 'RBAC', 'RBAC: access denied']);
    const g = await getJson<Outcome>(`${url}api/calculate?x=1&y=2&proto=grpc`);
    assert.deepEqual([g.call.status, g.call.error], [403, 'RBAC: access denied']);
    assert.deepEqual(h1(await getText(url)), ['403 Forbidden']);
    await applyOk('baseline');
    assert.deepEqual(await tallyPets(2), { cat: 1, dog: 1 });
  });

  it('local rate limit: the 6th quick calculation gets 429 RL', async () => {
    await applyOk('local-rate-limit');
    const counts = await tallyPets(7);
    assert.equal(counts['429 RL'], 2, JSON.stringify(counts));
    assert.equal((counts.cat ?? 0) + (counts.dog ?? 0), 5, JSON.stringify(counts));
  });

  it('retry: the applied config carries attempts 3 and perTryTimeout 2s; a bad name keeps the active scenario', async () => {
    await applyOk('retry');
    const dump = await getJson<{ routes: Array<{ virtual_hosts: Array<{ domains: string[]; routes: Array<{ route?: { retry_policy?: { num_retries?: { value: number }; per_try_timeout?: { seconds?: number | string }; retry_on?: string } } }> }> }> }>(`${url}api/config-dump`);
    const policies = dump.routes.flatMap((r) => r.virtual_hosts).filter((vh) => vh.domains.some((d) => d.startsWith('calculate.default.svc.cluster.local')))
      .flatMap((vh) => vh.routes).map((r) => r.route?.retry_policy).filter((p) => p !== undefined);
    assert.ok(policies.length > 0, 'calculate has a retry policy');
    assert.equal(policies[0]!.num_retries?.value, 3);
    assert.equal(Number(policies[0]!.per_try_timeout?.seconds), 2);
    assert.match(policies[0]!.retry_on ?? '', /gateway-error/);
    const bad = await apply('no-such-scenario');
    assert.equal(bad.status, 404);
    assert.match(bad.body.error ?? '', /unknown scenario/);
    const state = await getJson<{ active: string }>(`${url}api/scenarios`);
    assert.equal(state.active, 'retry');
  });

  it('global rate limit: 5 requests a minute through the gateway, then 429 RL; the console stays reachable', async () => {
    await applyOk('global-rate-limit');
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      const res = await request(`${url}api/calculate`);
      await res.body.dump();
      statuses.push(res.statusCode);
      if (res.statusCode === 429) assert.equal(res.headers['x-meshlet-flags'], 'RL');
    }
    // The demo's rate-limit service starts a fresh minute when the scenario is applied: exactly 5 pass.
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429, 429, 429, 429]);
    // The graph samples every workload's metrics periodically: poll (bounded) until the RL edge shows.
    let limited = false;
    for (let i = 0; i < 40 && !limited; i++) {
      const graph = await getJson<{ edges: Array<{ source: string; target: string; flags: Record<string, number> }> }>(`${consoleBase}console/api/graph`);
      limited = graph.edges.some((e) => e.source === 'gateway' && e.target === 'client' && (e.flags.RL ?? 0) > 0);
      if (!limited) await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(limited, 'the graph shows the gateway edge rate limited');
    await applyOk('baseline');
  });

  it('the console on its own port: never rate limited, its "Pet shop" link and / lead to the gateway', async () => {
    const res = await request(consoleBase, { method: 'GET' });
    await res.body.dump();
    assert.equal(res.statusCode, 302);
    assert.equal(res.headers.location, url);
    const page = await getText(`${consoleBase}console/`);
    assert.match(page, new RegExp(`<a href="${url}" data-nav="shop"`));
    assert.match(page, /data-scenario="baseline"/, 'the scenario switch');
  });

  it('Ctrl-C (SIGINT) stops every process', async () => {
    const ports = [...out.matchAll(/ready on 127\.0\.0\.1 port (\d+)/g)].map((m) => Number(m[1]));
    child.kill('SIGINT');
    assert.equal(await exited, 0);
    for (const port of ports) assert.equal(await refused(port), true, `port ${port} still open`);
  });
});
