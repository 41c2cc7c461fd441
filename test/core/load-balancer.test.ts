import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLoadBalancer, type Host } from '../../src/core/load-balancer.js';
import { seededRandom } from '../../src/core/random.js';

const hosts = (n: number): Host[] => Array.from({ length: n }, (_, i) => ({ id: `10.0.0.${i}:80`, address: `10.0.0.${i}`, port: 80, labels: {}, weight: 1, active: 0 }));

describe('load balancers', () => {
  it('ROUND_ROBIN cycles through the hosts in order', () => {
    const lb = createLoadBalancer('ROUND_ROBIN', seededRandom(1));
    const h = hosts(3);
    assert.deepEqual(Array.from({ length: 6 }, () => lb.pick(h, undefined)!.id), [h[0], h[1], h[2], h[0], h[1], h[2]].map((x) => x!.id));
  });

  it('RANDOM spreads evenly within ±3 points over 30,000 picks (seeded)', () => {
    const lb = createLoadBalancer('RANDOM', seededRandom(5));
    const h = hosts(3);
    const counts = new Map<string, number>();
    for (let i = 0; i < 30_000; i++) {
      const id = lb.pick(h, undefined)!.id;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    for (const c of counts.values()) assert.ok(Math.abs(c / 30_000 - 1 / 3) < 0.03);
  });

  it('LEAST_REQUEST (power of two choices) prefers the host with fewer active requests', () => {
    const lb = createLoadBalancer('LEAST_REQUEST', seededRandom(9));
    const h = hosts(2);
    h[0]!.active = 10;
    let busy = 0;
    for (let i = 0; i < 1000; i++) if (lb.pick(h, undefined) === h[0]) busy++;
    // Only when both choices land on the busy host (1 in 4) is it picked.
    assert.ok(busy > 150 && busy < 350, `busy picked ${busy} times`);
  });

  it('every policy avoids the previous host when another exists, and returns undefined for no hosts', () => {
    for (const policy of ['ROUND_ROBIN', 'RANDOM', 'LEAST_REQUEST'] as const) {
      const lb = createLoadBalancer(policy, seededRandom(3));
      const h = hosts(2);
      for (let i = 0; i < 200; i++) assert.notEqual(lb.pick(h, h[0]), h[0], policy);
      assert.equal(lb.pick(h.slice(0, 1), h[0]), h[0], `${policy}: the only host is still used`);
      assert.equal(lb.pick([], undefined), undefined);
    }
  });
});

describe('endpoint weights (load_balancing_weight), as Envoy honours them in every balancer', () => {
  const weighted = (): Host[] => hosts(3).map((h, i) => ({ ...h, weight: [1, 2, 7][i]! }));
  const share = (lb: ReturnType<typeof createLoadBalancer>, h: Host[], picks: number) => {
    const counts = new Map<string, number>();
    for (let i = 0; i < picks; i++) {
      const id = lb.pick(h, undefined)!.id;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    return h.map((x) => (counts.get(x.id) ?? 0) / picks);
  };

  for (const policy of ['ROUND_ROBIN', 'RANDOM', 'LEAST_REQUEST'] as const) {
    it(`${policy} splits 10/20/70 for weights 1/2/7 within ±2 points over 20,000 picks (seeded)`, () => {
      const got = share(createLoadBalancer(policy, seededRandom(42)), weighted(), 20_000);
      [0.1, 0.2, 0.7].forEach((want, i) => assert.ok(Math.abs(got[i]! - want) < 0.02, `${policy} host ${i}: ${got[i]} vs ${want}`));
    });
  }

  it('weighted ROUND_ROBIN interleaves: no host gets more than its share of any 10 consecutive picks by more than 2', () => {
    const lb = createLoadBalancer('ROUND_ROBIN', seededRandom(1));
    const h = weighted();
    const seq = Array.from({ length: 1000 }, () => lb.pick(h, undefined)!.id);
    for (let start = 0; start + 10 <= seq.length; start += 10) {
      const window = seq.slice(start, start + 10);
      h.forEach((x) => assert.ok(Math.abs(window.filter((id) => id === x.id).length - x.weight) <= 2));
    }
  });

  it('a weighted pick still avoids the previous host when another exists', () => {
    for (const policy of ['ROUND_ROBIN', 'RANDOM', 'LEAST_REQUEST'] as const) {
      const lb = createLoadBalancer(policy, seededRandom(3));
      const h = weighted();
      let same = 0;
      for (let i = 0; i < 1000; i++) if (lb.pick(h, h[2]) === h[2]) same++;
      // Two draws by weight both land on the 70% host about 49% of the time; the avoid rule must cut that.
      assert.ok(same < 600, `${policy}: ${same} of 1000 picks returned the avoided host`);
    }
  });
});
