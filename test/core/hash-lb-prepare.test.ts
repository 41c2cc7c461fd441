/**
 * A RING_HASH or MAGLEV cluster of 20,000 endpoints (#16 item 5): the hash
 * table is ~100–250 ms of xxHash64 work. It used to be built by the first
 * request after the swap, on the request path; now the sliced compile builds
 * it, a slice at a time, and the first pick finds it. The table is the same
 * as one built in one piece (same host for every key).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { compileClusterSliced, compileCluster } from '../../src/core/cluster.js';
import { MaglevLb, RingHashLb } from '../../src/core/hash-lb.js';
import { SliceBudget } from '../../src/core/slices.js';
import type { Cluster, ClusterLoadAssignment } from '../../src/config/envoy.js';
import { seededRandom } from '../../src/core/random.js';

const N = 20_000;

function assignment(name: string): ClusterLoadAssignment {
  const lb_endpoints = Array.from({ length: N }, (_, i) => ({ endpoint: { address: { socket_address: { address: `10.3.${i >> 8}.${i & 255}`, port_value: 9000 } } } }));
  return { cluster_name: name, endpoints: [{ locality: {}, lb_endpoints }] } as ClusterLoadAssignment;
}

for (const policy of ['RING_HASH', 'MAGLEV'] as const) {
  test(`${policy}: the compile builds the table in slices, and the first pick builds nothing`, () => {
    const cluster = { name: `outbound|9000||${policy.toLowerCase()}.example.com`, type: 'EDS', lb_policy: policy } as unknown as Cluster;
    const random = seededRandom(7);
    const ring = compileSliced(cluster, assignment(cluster.name), random);
    const plain = compileSliced({ ...cluster, lb_policy: 'ROUND_ROBIN' } as unknown as Cluster, assignment(cluster.name), random);
    // The hosts take N / 1,000 slices in either case; the table takes as many again (ring: a point per host; Maglev: two hashes per host).
    assert.ok(ring.slices >= plain.slices + N / 1_000 - 1, `${ring.slices} slices with the table, ${plain.slices} without`);
    // The table exists before the first request: the first pick must not call the builder.
    const lb = ring.compiled.lb as RingHashLb | MaglevLb;
    const built = spyOnBuild(lb);
    const first = ring.compiled.pick(undefined, 123_456_789n);
    assert.equal(built(), 0, 'the first pick found the table');
    // Same host as a cluster whose table is built in one piece on its first pick.
    const oneShot = compileCluster(cluster, assignment(cluster.name), undefined, seededRandom(7));
    for (const key of [0n, 1n, 123_456_789n, 2n ** 63n, 2n ** 64n - 1n]) assert.equal(ring.compiled.pick(undefined, key)?.id, oneShot.pick(undefined, key)?.id);
    assert.ok(first !== undefined);
  });
}

function compileSliced(cluster: Cluster, cla: ClusterLoadAssignment, random: () => number) {
  const work = compileClusterSliced(cluster, cla, undefined, random, new Map(), new SliceBudget(1_000));
  let slices = 0;
  for (;;) {
    const step = work.next();
    if (step.done) return { compiled: step.value, slices };
    slices++;
  }
}

/** Counts calls of the balancer's table builder from now on. */
function spyOnBuild(lb: RingHashLb | MaglevLb): () => number {
  const target = lb as unknown as { build: (...args: unknown[]) => unknown };
  const original = target.build;
  let calls = 0;
  target.build = function (...args: unknown[]) { calls++; return original.apply(this, args); };
  return () => calls;
}
