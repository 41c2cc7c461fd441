/**
 * Incremental translation (src/config/translate-incremental.ts): after every
 * edit of a seeded random sequence — route weights, endpoints, load balancers,
 * subsets, a route moved to another service, mirrors, ports, services removed
 * and added, a global resource — the patched translation must equal a fresh
 * full translation (resources compared by name), for proxies in every
 * namespace; and one-service edits must really take the patch path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseResources } from '../../src/config/resources.js';
import { parseYaml } from '../../src/config/load.js';
import { TranslateCache, type ProxyInfo } from '../../src/config/translate.js';
import { translateIsolated } from '../../src/config/translate-isolated.js';
import { IncrementalTranslator } from '../../src/config/translate-incremental.js';
import type { EnvoyResources } from '../../src/config/envoy.js';
import type { IstioResource } from '../../src/config/istio-types.js';

const NAMESPACES = ['a', 'b', 'c'];
const PER_NS = 6;

interface ServiceOpts { v2: number; extra: boolean; lb: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'HASH'; v3: boolean; target: string | undefined; mirror: boolean; port: number; present: boolean }

function serviceYaml(ns: string, i: number, o: ServiceOpts): string {
  const host = `svc-${i}.${ns}.svc.cluster.local`;
  const dest = o.target ?? host;
  const lb = o.lb === 'HASH' ? '{ consistentHash: { httpHeaderName: x-user } }' : `{ simple: ${o.lb} }`;
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: svc-${i}, namespace: ${ns} }
spec:
  hosts: [${host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${o.port}, name: http, protocol: HTTP }]
  endpoints:
    - { address: 10.0.${i}.1, ports: { http: 9000 }, labels: { version: v1 } }
    - { address: 10.0.${i}.2, ports: { http: 9000 }, labels: { version: v2 } }${o.extra ? `
    - { address: 10.0.${i}.3, ports: { http: 9000 }, labels: { version: v3 } }` : ''}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: svc-${i}, namespace: ${ns} }
spec:
  host: ${host}
  trafficPolicy: { loadBalancer: ${lb} }
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }${o.v3 ? ', { name: v3, labels: { version: v3 } }' : ''}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: svc-${i}, namespace: ${ns} }
spec:
  hosts: [svc-${i}]
  http:
    - route:
        - { destination: { host: ${dest}, subset: v1 }, weight: ${100 - o.v2} }
        - { destination: { host: ${dest}, subset: v2 }, weight: ${o.v2} }${o.mirror ? `
      mirror: { host: svc-${(i + 1) % PER_NS}.${ns}.svc.cluster.local }` : ''}
`;
}

const GLOBAL = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: override, namespace: b }
spec: { host: svc-0.a.svc.cluster.local, trafficPolicy: { loadBalancer: { simple: RANDOM } } }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: c }
spec: { egress: [{ hosts: ['./*', 'a/*'] }] }
`;

const parse = (text: string) => parseResources(parseYaml(text, 'test'));

/** mulberry32: seedable, so a failure replays. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Resources by name, each type sorted: what a client sees does not depend on order. */
function byName(e: EnvoyResources): Record<string, Array<[string, unknown]>> {
  const sort = <T>(items: readonly T[], name: (t: T) => string) => items.map((t): [string, unknown] => [name(t), t]).sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  return {
    listeners: sort(e.listeners, (l) => l.name),
    routes: sort(e.routes, (r) => r.name),
    clusters: sort(e.clusters, (c) => c.name),
    endpoints: sort(e.endpoints, (c) => c.cluster_name),
  };
}

const proxies: ProxyInfo[] = NAMESPACES.map((namespace) => ({ name: 'meshlet-control-plane', namespace, labels: {} }));

function world() {
  const opts = new Map<string, ServiceOpts>();
  const parsed = new Map<string, IstioResource[]>();
  for (const ns of NAMESPACES) {
    for (let i = 0; i < PER_NS; i++) {
      const o: ServiceOpts = { v2: 10, extra: false, lb: 'ROUND_ROBIN', v3: false, target: undefined, mirror: false, port: 8080, present: true };
      opts.set(`${ns}/${i}`, o);
      parsed.set(`${ns}/${i}`, parse(serviceYaml(ns, i, o)));
    }
  }
  let global = parse(GLOBAL);
  const resources = () => [...[...parsed.values()].flat(), ...global];
  /** Re-parses one service, as the config watcher re-parses a changed document (the others keep their objects). */
  const edit = (key: string, change: Partial<ServiceOpts>) => {
    const o = { ...opts.get(key)!, ...change };
    opts.set(key, o);
    const [ns, i] = key.split('/');
    parsed.set(key, o.present ? parse(serviceYaml(ns!, Number(i), o)) : []);
  };
  const editGlobal = () => { global = parse(GLOBAL.replace('RANDOM', global.length % 2 === 0 ? 'RANDOM' : 'LEAST_REQUEST')); };
  return { opts, resources, edit, editGlobal };
}

test('incremental translation equals a full translation after each of 120 seeded edits, for proxies in every namespace', () => {
  for (const seed of [1, 2, 3]) {
    const rnd = random(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const w = world();
    const translator = new IncrementalTranslator();
    const cache = new TranslateCache();
    const check = (what: string) => {
      const resources = w.resources();
      cache.rotate();
      for (const proxy of proxies) {
        const got = translator.translate(proxy.namespace, resources, proxy, cache);
        const want = translateIsolated(resources, proxy);
        assert.deepEqual(byName(got.envoy), byName(want.envoy), `seed ${seed}, ${what}, proxy in ${proxy.namespace}`);
        assert.deepEqual(got.dropped.map((d) => d.error.message), want.dropped.map((d) => d.error.message));
      }
    };
    check('initial');
    for (let step = 0; step < 40; step++) {
      const key = `${pick(NAMESPACES)}/${Math.floor(rnd() * PER_NS)}`;
      const o = w.opts.get(key)!;
      const [ns] = key.split('/');
      const edits: Array<[string, () => void]> = [
        ['weight', () => w.edit(key, { v2: Math.floor(rnd() * 100) })],
        ['endpoint', () => w.edit(key, { extra: !o.extra })],
        ['lb', () => w.edit(key, { lb: pick(['ROUND_ROBIN', 'LEAST_REQUEST', 'HASH'] as const) })],
        ['subset', () => w.edit(key, { v3: !o.v3 })],
        ['target', () => w.edit(key, { target: rnd() < 0.3 ? undefined : `svc-${Math.floor(rnd() * PER_NS)}.${pick(NAMESPACES)}.svc.cluster.local` })],
        ['mirror', () => w.edit(key, { mirror: !o.mirror })],
        ['port', () => w.edit(key, { port: o.port === 8080 ? 9090 : 8080 })],
        ['presence', () => w.edit(key, { present: !o.present })],
        ['global', () => w.editGlobal()],
      ];
      const [what, run] = pick(edits);
      run();
      check(`step ${step}: ${what} of ${key} (${ns})`);
    }
    assert.ok(translator.counts.patched > 0, `seed ${seed}: some edits were patched (${JSON.stringify(translator.counts)})`);
  }
});

test('a one-service edit is patched for every namespace; a global resource edit is translated in full', () => {
  const w = world();
  const translator = new IncrementalTranslator();
  const cache = new TranslateCache();
  const all = () => { const r = w.resources(); return proxies.map((p) => translator.translate(p.namespace, r, p, cache)); };
  all();
  assert.equal(translator.counts.full, 3);
  w.edit('a/2', { v2: 55, extra: true });
  const patched = all();
  assert.deepEqual(translator.counts, { full: 3, patched: 3, unchanged: 0 });
  // svc-2 in a, and nothing else: its own hosts are the only ones whose routes changed
  assert.deepEqual([...patched[0]!.patchedHosts!], ['svc-2.a.svc.cluster.local']);
  w.editGlobal();
  all();
  assert.equal(translator.counts.full, 6);
});
