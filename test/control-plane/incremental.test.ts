/**
 * Incremental translation: a TranslateCache must give exactly what a fresh
 * translation gives, for every namespace and after every kind of change, and
 * hand back the very same objects for what did not change (which is what lets
 * the encoder skip them). The config watcher re-parses only changed files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseResources } from '../../src/config/resources.js';
import { parseYaml } from '../../src/config/load.js';
import { translate, TranslateCache } from '../../src/config/translate.js';
import type { IstioResource } from '../../src/config/istio-types.js';
import { ConfigWatcher } from '../../src/control-plane/config-watcher.js';
import { configDir, serviceYaml, waitFor } from './helpers.js';

const parse = (text: string) => parseResources(parseYaml(text, 'test'));
const proxy = (namespace: string) => ({ name: 'p', namespace, labels: {} });

test('cached translation equals a fresh one across namespaces and changes, and reuses unchanged objects', () => {
  const files = new Map<string, IstioResource[]>();
  for (const ns of ['a', 'b']) files.set(ns, parse([0, 1, 2].map((i) => serviceYaml(ns, i)).join('---\n')));
  files.set('extra', parse(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: override, namespace: b }
spec: { host: svc-0.a.svc.cluster.local, trafficPolicy: { loadBalancer: { simple: RANDOM } } }
---
apiVersion: meshlet.dev/v1alpha1
kind: RateLimit
metadata: { name: limit, namespace: a }
spec: { host: svc-1, local: { tokenBucket: { maxTokens: 5, tokensPerFill: 5, fillInterval: 60s } } }
`));
  const all = () => [...files.values()].flat();
  const cache = new TranslateCache();
  const check = (resources: IstioResource[]) => {
    for (const ns of ['a', 'b', 'c']) assert.deepEqual(translate(resources, proxy(ns), cache), translate(resources, proxy(ns)), `namespace ${ns}`);
  };

  let resources = all();
  check(resources);
  const first = translate(resources, proxy('a'), cache);
  // the DR in namespace b wins for proxies in b only: different cluster objects, same elsewhere
  const lbOf = (ns: string) => translate(resources, proxy(ns), cache).clusters.find((c) => c.name === 'outbound|8080||svc-0.a.svc.cluster.local')!.lb_policy;
  assert.equal(lbOf('a'), 'ROUND_ROBIN');
  assert.equal(lbOf('b'), 'RANDOM');

  const changes: Array<[string, string]> = [
    ['weight', serviceYaml('a', 2, { v2: 40 })],
    ['endpoint', serviceYaml('a', 2, { v2: 40, extra: true })],
    ['policy', serviceYaml('a', 2, { v2: 40, extra: true, lb: 'LEAST_REQUEST' })],
  ];
  for (const [what, yaml] of changes) {
    const next = parse(yaml);
    files.set('a', [...files.get('a')!.filter((r) => r.metadata.name !== 'svc-2'), ...next]);
    cache.rotate();
    resources = all();
    check(resources);
    const now = translate(resources, proxy('a'), cache);
    // svc-0 in namespace a did not change: same objects
    const route0 = (r: typeof now) => r.routes.find((x) => x.name === 'svc-0.a.svc.cluster.local:8080');
    assert.equal(route0(now), route0(first), `${what}: unchanged route reused`);
    const cl0 = (r: typeof now) => r.clusters.find((x) => x.name === 'outbound|8080|v1|svc-0.a.svc.cluster.local');
    assert.equal(cl0(now), cl0(first), `${what}: unchanged cluster reused`);
  }
  const final = translate(resources, proxy('a'), cache);
  const split = final.routes.find((x) => x.name === 'svc-2.a.svc.cluster.local:8080')!.virtual_hosts[0]!.routes[0]!.route!.weighted_clusters!.clusters;
  assert.deepEqual(split.map((c) => c.weight.value), [60, 40]);
  assert.equal(final.endpoints.find((e) => e.cluster_name === 'outbound|8080|v2|svc-2.a.svc.cluster.local')!.endpoints[0]!.lb_endpoints.length, 2);
  assert.equal(final.clusters.find((c) => c.name === 'outbound|8080|v2|svc-2.a.svc.cluster.local')!.lb_policy, 'LEAST_REQUEST');

  // removing a service: its routes go, and a VirtualService that mirrors to it falls back to the listener port
  files.set('a', files.get('a')!.filter((r) => !(r.kind === 'ServiceEntry' && r.metadata.name === 'svc-1')));
  cache.rotate();
  check(all());
});

test('the config watcher re-parses only the files that changed and keeps the last good set on errors', async (t) => {
  const cfg = await configDir({ 'a.yaml': serviceYaml('a', 0), 'b.yaml': serviceYaml('b', 0) });
  t.after(() => cfg.remove());
  let changes = 0;
  const errors: string[] = [];
  const watcher = new ConfigWatcher({ dir: cfg.dir, debounceMs: 10_000, onChange: () => changes++, onError: (p) => errors.push(p.message) });
  await watcher.reload();
  const before = watcher.resources;
  assert.equal(before.length, 6);

  await cfg.write('a.yaml', serviceYaml('a', 0, { v2: 50 }));
  await watcher.reload();
  const after = watcher.resources;
  const ofNs = (rs: IstioResource[], ns: string) => rs.filter((r) => r.metadata.namespace === ns);
  assert.deepEqual(ofNs(after, 'b').map((r, i) => r === ofNs(before, 'b')[i]), [true, true, true], 'b.yaml not re-parsed');
  // a.yaml re-parsed: only its changed VirtualService is a new object; its unchanged documents keep their identity
  assert.deepEqual(ofNs(after, 'a').map((r, i) => `${r.kind} ${r === ofNs(before, 'a')[i] ? 'kept' : 'new'}`), ['ServiceEntry kept', 'DestinationRule kept', 'VirtualService new']);
  assert.equal((ofNs(after, 'a')[2] as { spec: { http: Array<{ route: Array<{ weight: number }> }> } }).spec.http[0]!.route[1]!.weight, 50);

  // a duplicate across files is rejected alone (per-resource isolation): the set in force stays the previous one
  await cfg.write('c.yaml', serviceYaml('b', 0));
  await watcher.reload();
  assert.deepEqual(watcher.resources, after);
  assert.match(watcher.error?.message ?? '', /duplicate resource/);
  assert.ok(watcher.statuses.some((s) => s.status === 'rejected' && s.warnings.some((w) => w.code === 'MESHLET_DUPLICATE')));
  assert.deepEqual(errors, [], 'a rejected resource is a status, not a failed load');
  watcher.close();
});

test('the config watcher re-parses only the edited documents of a file, and reads it exactly as a fresh load does', async (t) => {
  const file = (docs: string[]) => `# services of namespace a\n${docs.join('---\n')}`;
  const docs = [0, 1, 2].map((i) => serviceYaml('a', i));
  const cfg = await configDir({ 'a.yaml': file(docs) });
  t.after(() => cfg.remove());
  const watcher = new ConfigWatcher({ dir: cfg.dir, debounceMs: 10_000, onChange: () => {}, onError: () => {} });
  await watcher.reload();
  const before = watcher.resources;
  const fresh = async () => {
    const w = new ConfigWatcher({ dir: cfg.dir, debounceMs: 10_000, onChange: () => {}, onError: () => {} });
    await w.reload();
    return w;
  };
  const same = async () => {
    const f = await fresh();
    assert.deepEqual(watcher.resources, f.resources, 'the same resources as a fresh load');
    assert.deepEqual(watcher.statuses, f.statuses, 'the same statuses, documents numbered alike');
    assert.deepEqual(watcher.error, f.error ? { ...f.error, at: watcher.error?.at } : undefined, 'the same error');
  };

  // svc-1's VirtualService (document 5) edited: every other object is the one parsed before
  await cfg.write('a.yaml', file([docs[0]!, serviceYaml('a', 1, { v2: 40 }), docs[2]!]));
  await watcher.reload();
  assert.deepEqual(watcher.resources.map((r, i) => r === before[i]).map((kept, i) => (kept ? 'kept' : `new ${watcher.resources[i]!.kind} ${watcher.resources[i]!.metadata.name}`)).filter((x) => x !== 'kept'), ['new VirtualService svc-1']);
  await same();

  // a document inserted before the others renumbers them; still read as a fresh load reads it
  await cfg.write('a.yaml', file([serviceYaml('a', 3), docs[0]!, serviceYaml('a', 1, { v2: 40 }), docs[2]!]));
  await watcher.reload();
  await same();

  // a syntax error in one document: located and reported exactly as a whole-file parse does
  await cfg.write('a.yaml', file([docs[0]!, serviceYaml('a', 1).replace('hosts: [svc-1]', 'hosts: [svc-1'), docs[2]!]));
  await watcher.reload();
  assert.ok(watcher.error, 'the error is reported');
  await same();
});

test('a change is read when it comes and published once the directory is quiet: a half-written file is never served', async (t) => {
  const docs = [0, 1, 2].map((i) => serviceYaml('a', i));
  const cfg = await configDir({ 'a.yaml': docs.join('---\n') });
  t.after(() => cfg.remove());
  let changes = 0;
  const errors: string[] = [];
  // a debounce long enough that both writes below land inside it on any machine
  const watcher = new ConfigWatcher({ dir: cfg.dir, debounceMs: 3000, onChange: () => changes++, onError: (p) => errors.push(p.message) });
  t.after(() => watcher.close());
  await watcher.start();
  assert.equal(changes, 1);
  const edited = [docs[0]!, serviceYaml('a', 1, { v2: 40 }), docs[2]!].join('---\n');
  // an editor's write in two steps: first a cut-off file (its last document broken mid-line), then the whole
  await cfg.write('a.yaml', edited.slice(0, edited.lastIndexOf('hosts:') + 9));
  await new Promise((r) => setTimeout(r, 50));
  await cfg.write('a.yaml', edited);
  await waitFor(() => changes === 2, 10_000, 'the publish after the debounce');
  const vs = watcher.resources.find((r) => r.kind === 'VirtualService' && r.metadata.name === 'svc-1') as { spec: { http: Array<{ route: Array<{ weight: number }> }> } } | undefined;
  assert.equal(vs?.spec.http[0]!.route[1]!.weight, 40, 'the whole file is what is served');
  assert.equal(watcher.resources.length, 9);
  assert.equal(watcher.error, undefined, 'the cut-off read is never reported');
  assert.ok(watcher.statuses.every((s) => s.status !== 'rejected'));
  assert.deepEqual(errors, []);
});
