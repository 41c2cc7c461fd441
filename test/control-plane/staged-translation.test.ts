/**
 * A read translated while its push waits out the debounce (staged-translation.ts):
 * the push then finds the translation done and its new resources encoded, and
 * what it serves is what a fresh translation of the published config gives —
 * also when the staged read was never published.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseResources } from '../../src/config/resources.js';
import { parseYaml } from '../../src/config/load.js';
import type { ProxyInfo } from '../../src/config/translate.js';
import { translateIsolated } from '../../src/config/translate-isolated.js';
import { IncrementalTranslator } from '../../src/config/translate-incremental.js';
import type { EnvoyResources } from '../../src/config/envoy.js';
import type { IstioResource } from '../../src/config/istio-types.js';
import { SnapshotCache } from '../../src/control-plane/snapshot-cache.js';
import { StagedTranslation } from '../../src/control-plane/staged-translation.js';
import { WorkloadRegistry } from '../../src/control-plane/registry.js';
import { serviceYaml } from './helpers.js';

/** Four services; `edits` changes the v2 weight of some (index → weight), every other document the very same object. */
function config(base: IstioResource[] | undefined, edits: Record<number, number> = {}): IstioResource[] {
  const out: IstioResource[] = [];
  for (let i = 0; i < 4; i++) {
    const fresh = parseResources(parseYaml(serviceYaml('a', i, { v2: edits[i] ?? 10 }), 'test'));
    out.push(...(base && edits[i] === undefined ? base.slice(i * 3, i * 3 + 3) : fresh));
  }
  return out;
}

/** Resources by name, each type sorted: what a client sees does not depend on order. */
function byName(e: EnvoyResources): Record<string, Array<[string, unknown]>> {
  const sort = <T>(items: readonly T[], name: (t: T) => string) => items.map((t): [string, unknown] => [name(t), t]).sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  return { listeners: sort(e.listeners, (l) => l.name), routes: sort(e.routes, (r) => r.name), clusters: sort(e.clusters, (c) => c.name), endpoints: sort(e.endpoints, (c) => c.cluster_name) };
}

const proxyFor = (namespace: string): ProxyInfo => ({ name: 'meshlet-control-plane', namespace, labels: {} });

/** A control plane's translation half: the published config, the snapshot cache the push reads, the stage. */
function controlPlane(initial: IstioResource[]) {
  let published = initial;
  const translator = new IncrementalTranslator();
  const registry = new WorkloadRegistry(1000, () => {});
  const staging: StagedTranslation = new StagedTranslation(translator, () => cache, registry, proxyFor);
  const cache: SnapshotCache = new SnapshotCache((ns, translations) => translator.translate(ns, staging.combined(published), proxyFor(ns), translations).envoy);
  for (const ns of ['a', 'b']) cache.get(ns);
  return {
    translator, staging, cache,
    /** Publishes `resources` and pushes: every namespace's snapshot of the next generation. */
    push(resources: IstioResource[]) {
      published = resources;
      cache.invalidate();
      return ['a', 'b'].map((ns) => cache.get(ns));
    },
  };
}

/** Until the stage has run for every key (one per turn of the event loop). */
async function staged(translator: IncrementalTranslator, translations: number): Promise<void> {
  for (let i = 0; i < 100 && translator.counts.full + translator.counts.patched + translator.counts.unchanged < translations; i++) await new Promise((r) => setImmediate(r));
}

test('a staged read is translated before its push, which finds it done and serves a fresh translation of it', async () => {
  const v1 = config(undefined);
  const cp = controlPlane(v1);
  assert.deepEqual(cp.translator.counts, { full: 2, patched: 0, unchanged: 0 });
  const v2 = config(v1, { 1: 40 });
  cp.staging.stage(v2, {});
  await staged(cp.translator, 4);
  assert.deepEqual(cp.translator.counts, { full: 2, patched: 2, unchanged: 0 }, 'both namespaces patched by the stage');

  const snapshots = cp.push(v2);
  assert.deepEqual(cp.translator.counts, { full: 2, patched: 2, unchanged: 2 }, 'the push found both translations done');
  for (const s of snapshots) assert.deepEqual(byName(s.resources), byName(translateIsolated(v2, proxyFor(s.namespace)).envoy), `namespace ${s.namespace}`);
  const route = snapshots[0]!.resources.routes.find((r) => r.name === 'svc-1.a.svc.cluster.local:8080');
  assert.match(JSON.stringify(route), /"weight":\{"value":40\}/, 'the edited weight is served');
});

test('a staged read that is never published costs work only: the push serves what it publishes', async () => {
  const v1 = config(undefined);
  const cp = controlPlane(v1);
  // the file changed twice during the debounce: the first read is staged, then replaced
  cp.staging.stage(config(v1, { 0: 70 }), {});
  await staged(cp.translator, 4);
  const published = config(v1, { 2: 30 });
  for (const s of cp.push(published)) assert.deepEqual(byName(s.resources), byName(translateIsolated(published, proxyFor(s.namespace)).envoy), `namespace ${s.namespace}`);
  // and a stage replaced before it ran stops: nothing of the first is translated after the second starts
  const before = { ...cp.translator.counts };
  cp.staging.stage(config(published, { 3: 60 }), {});
  const last = config(published, { 3: 50 });
  cp.staging.stage(last, {});
  await staged(cp.translator, before.full + before.patched + before.unchanged + 2);
  assert.equal(cp.translator.counts.patched - before.patched, 2, 'one translation per namespace: the second stage only');
  for (const s of cp.push(last)) assert.deepEqual(byName(s.resources), byName(translateIsolated(last, proxyFor(s.namespace)).envoy));
});

test('a stage that throws stops quietly; the push translates the key itself', async () => {
  const v1 = config(undefined);
  let failing = false;
  const translator = new IncrementalTranslator();
  const registry = new WorkloadRegistry(1000, () => {});
  let published = v1;
  const proxy = (ns: string): ProxyInfo => {
    if (failing) throw new Error('translation blew up');
    return proxyFor(ns);
  };
  const staging: StagedTranslation = new StagedTranslation(translator, () => cache, registry, proxy);
  const cache: SnapshotCache = new SnapshotCache((ns, translations) => translator.translate(ns, staging.combined(published), proxyFor(ns), translations).envoy);
  cache.get('a');
  const v2 = config(v1, { 2: 80 });
  failing = true;
  staging.stage(v2, {});
  // turns of the event loop for the stage to run (and throw, were it not caught: an uncaught exception ends this test run)
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(translator.counts, { full: 1, patched: 0, unchanged: 0 }, 'nothing staged');
  published = v2;
  cache.invalidate();
  assert.deepEqual(byName(cache.get('a').resources), byName(translateIsolated(v2, proxyFor('a')).envoy));
  assert.equal(translator.counts.patched, 1, 'the push patched it');
});
