/**
 * Envoy's priority levels and locality weighting, with the numbers of
 * Envoy's load-balancing docs (intro/arch_overview/upstream/load_balancing/
 * priority and locality_weight): the 1.4 overprovisioning factor, spill-over
 * to the next level, normalization when total availability is below 100%,
 * and locality weight × availability within a level.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileCluster } from '../../src/core/cluster.js';
import type { Host } from '../../src/core/load-balancer.js';
import { PrioritySet } from '../../src/core/priority-set.js';
import { seededRandom } from '../../src/core/random.js';
import { edsCluster, endpoint } from '../helpers/envoy-resources.js';

const hosts = (prefix: string, n: number): Host[] => Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}:80`, address: `${prefix}${i}`, port: 80, labels: {}, weight: 1, active: 0 }));

function twoLevels(opts: { panicThreshold?: number; factor?: number } = {}) {
  const p0 = hosts('10.0.0.', 10);
  const p1 = hosts('10.1.0.', 10);
  const set = new PrioritySet([
    { priority: 1, localities: [{ locality: 'b//', weight: 1, hosts: p1 }] },
    { priority: 0, localities: [{ locality: 'a//', weight: 1, hosts: p0 }] },
  ], { overprovisioningFactor: opts.factor ?? 140, localityWeighted: false, panicThreshold: opts.panicThreshold ?? 0 });
  return { p0, p1, set };
}

describe('priority levels (overprovisioning factor 1.4)', () => {
  it('keeps all traffic on P0 while 1.4 × its healthy share reaches 100%, then spills the rest to P1', () => {
    const { p0, set } = twoLevels();
    const loads = (ejected: number) => {
      const out = new Set(p0.slice(0, ejected));
      return set.loads((h) => out.has(h), ejected);
    };
    assert.deepEqual(loads(0), [100, 0]);
    assert.deepEqual(loads(2), [100, 0]); // 80% healthy × 1.4 = 112% → 100
    assert.deepEqual(loads(3), [98, 2]); // 70% × 1.4 = 98
    assert.deepEqual(loads(5), [70, 30]); // Envoy's docs: 50% healthy P0 gets 70% of the load
    assert.deepEqual(loads(10), [0, 100]);
  });

  it('normalizes when the levels together are under 100% available (20% + 20% healthy → 50 / 50)', () => {
    const { p0, p1, set } = twoLevels();
    const out = new Set([...p0.slice(0, 8), ...p1.slice(0, 8)]);
    assert.deepEqual(set.loads((h) => out.has(h), 1), [50, 50]);
  });

  it('the override factor from the assignment (100: no overprovisioning) spills as soon as a host is down', () => {
    const { p0, set } = twoLevels({ factor: 100 });
    assert.deepEqual(set.loads((h) => h === p0[0], 1), [90, 10]);
  });

  it('picks levels in proportion to their load; with panic disabled and nothing healthy there is no host', () => {
    const { p0, p1, set } = twoLevels();
    const down = new Set(p0.slice(0, 5));
    const random = seededRandom(4);
    let onP1 = 0;
    for (let i = 0; i < 10_000; i++) {
      const list = set.hostsFor((h) => down.has(h), 7, Math.floor(random() * 100), random);
      if (list.some((h) => p1.includes(h))) onP1++;
      else assert.ok(list.every((h) => p0.includes(h) && !down.has(h)));
    }
    assert.ok(Math.abs(onP1 / 10_000 - 0.3) < 0.03, `P1 share ${onP1 / 10_000}`);
    const all = new Set([...p0, ...p1]);
    assert.deepEqual(set.hostsFor((h) => all.has(h), 8, 50, random), []);
  });

  it('with a panic threshold, a level below it uses all its hosts; all levels in panic split by host count', () => {
    const { p0, p1, set } = twoLevels({ panicThreshold: 50 });
    const down = new Set([...p0.slice(0, 8), ...p1.slice(0, 8)]);
    assert.deepEqual(set.loads((h) => down.has(h), 1), [50, 50]);
    assert.equal(set.hostsFor((h) => down.has(h), 1, 10, seededRandom(1)).length, 10);
  });
});

describe('locality weighting within a level', () => {
  it('draws localities by weight × availability (Envoy locality_weighted_lb_config)', () => {
    const a = hosts('10.2.0.', 4);
    const b = hosts('10.3.0.', 4);
    const set = new PrioritySet([{ priority: 0, localities: [{ locality: 'r/a/', weight: 1, hosts: a }, { locality: 'r/b/', weight: 3, hosts: b }] }], { overprovisioningFactor: 140, localityWeighted: true, panicThreshold: 0 });
    const share = (down: Set<Host>, generation: number) => {
      const random = seededRandom(9);
      let onA = 0;
      for (let i = 0; i < 8000; i++) if (set.hostsFor((h) => down.has(h), generation, 0, random) === set.hostsFor((h) => down.has(h), generation, 0, () => 0)) onA++;
      return onA / 8000;
    };
    assert.ok(Math.abs(share(new Set(), 0) - 0.25) < 0.03);
    // Half of b down: b's availability is min(1, 1.4 × 0.5) = 0.7 → weights 1 : 2.1.
    assert.ok(Math.abs(share(new Set(b.slice(0, 2)), 1) - 1 / 3.1) < 0.03);
  });
});

describe('compiled clusters', () => {
  it('read priority, locality and locality weight from the ClusterLoadAssignment', () => {
    const cla = {
      cluster_name: 'c',
      endpoints: [
        { locality: { region: 'us', zone: 'a' }, priority: 0, load_balancing_weight: { value: 1 }, lb_endpoints: [endpoint('127.0.0.1', 1001)] },
        { locality: { region: 'eu' }, priority: 1, load_balancing_weight: { value: 1 }, lb_endpoints: [endpoint('127.0.0.1', 1002)] },
      ],
    };
    const c = compileCluster(edsCluster('c'), cla, undefined, seededRandom(1));
    assert.ok(c.priorities);
    for (let i = 0; i < 200; i++) assert.equal(c.pick()!.port, 1001, 'a healthy P0 takes everything');
    assert.equal(c.hosts.length, 2);
    // One level and no locality weighting: the flat path, as before.
    assert.equal(compileCluster(edsCluster('c'), { cluster_name: 'c', endpoints: [cla.endpoints[0]!] }, undefined, seededRandom(1)).priorities, undefined);
  });
});
