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
