/**
 * Large endpoint sets (#16 item 5), the structure that keeps a swap off the
 * event loop: the compile runs in slices of a bounded number of endpoints and
 * gives the loop a turn between them; a cluster whose resources did not
 * change is not recompiled; an EDS ClusterLoadAssignment decodes in slices to
 * the object a whole decode gives.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TYPE_URL, type ClusterLoadAssignment, type LbEndpoint } from '../../src/config/envoy.js';
import { compileSnapshot, compileSnapshotSliced } from '../../src/core/snapshot.js';
import { runNow, runSliced, SerialQueue, SliceBudget, type Sliced } from '../../src/core/slices.js';
import { decodeAssignmentSliced, peekName } from '../../src/xds/decode-sliced.js';
import { decodeAny, encodeAny } from '../../src/xds/protos.js';
import { assignment, edsCluster, endpoint, prefixRoute, resources } from '../helpers/envoy-resources.js';

function endpoints(n: number, port = 9000): LbEndpoint[] {
  return Array.from({ length: n }, (_, i) => endpoint(`10.0.${i >> 8}.${i & 255}`, port, { labels: { version: i % 2 ? 'v1' : 'v2' } }));
}

function bigSet(n: number) {
  return resources([{ name: 'vh', domains: ['big'], routes: [prefixRoute('/', 'big'), prefixRoute('/small', 'small')] }],
    [edsCluster('big'), edsCluster('small')], [assignment('big', endpoints(n)), assignment('small', endpoints(3, 8000))]);
}

describe('sliced compile', () => {
  it('yields to the event loop between slices of at most sliceSize endpoints, and builds what compileSnapshot builds', async () => {
    const set = bigSet(5_000);
    const endpointsSeen: number[] = [];
    let slices = 0;
    let immediateRan = false;
    setImmediate(() => { immediateRan = true; });
    const sliced = compileSnapshotSliced(set, 'v1', {
      sliceSize: 500,
      onSlice: () => { slices++; endpointsSeen.push(immediateRan ? 1 : 0); },
    });
    const snapshot = await sliced;
    assert.ok(immediateRan, 'a setImmediate scheduled when the compile started ran before it finished');
    // 5,003 endpoints and 1 virtual host in slices of 500: at least 10 turns of the loop.
    assert.ok(slices >= 10, `${slices} slices`);
    assert.equal(endpointsSeen[0], 0, 'the first slice ran before the loop turned');
    assert.ok(endpointsSeen.slice(1).every((x) => x === 1), 'every later slice ran after a turn of the loop');
    const whole = compileSnapshot(set, 'v1');
    assert.deepEqual(snapshot.clusters.get('big')!.hosts.map((h) => h.id), whole.clusters.get('big')!.hosts.map((h) => h.id));
    assert.deepEqual(snapshot.clusters.get('big')!.hosts.map((h) => h.labels), whole.clusters.get('big')!.hosts.map((h) => h.labels));
    assert.equal(snapshot.virtualHost('big', 80)?.name, 'vh');
  });

  it('a slice budget fills at its size and starts over', () => {
    const budget = new SliceBudget(3);
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(() => budget.spend()), [false, false, true, false, false, true, false]);
    function* work(): Sliced<number> { yield; yield; return 42; }
    assert.equal(runNow(work()), 42);
  });

  it('runSliced gives a timer queued before it a turn, and a failed task in a SerialQueue does not stop the next', async () => {
    const order: string[] = [];
    const queue = new SerialQueue();
    function* work(name: string): Sliced<void> {
      for (let i = 0; i < 3; i++) { order.push(`${name}${i}`); yield; }
    }
    const a = queue.run(() => runSliced(work('a')));
    const failing = queue.run(() => Promise.reject(new Error('bad push')));
    const b = queue.run(() => runSliced(work('b')));
    setImmediate(() => order.push('tick'));
    await Promise.all([a, b, failing.catch(() => undefined)]);
    await assert.rejects(failing, /bad push/);
    // a's slices and b's never interleave; the loop turned in between.
    assert.deepEqual(order.filter((x) => x !== 'tick'), ['a0', 'a1', 'a2', 'b0', 'b1', 'b2']);
    assert.ok(order.includes('tick'));
  });
});

describe('only changed clusters are recompiled', () => {
  it('the same Cluster and ClusterLoadAssignment objects keep their compiled cluster; a changed assignment compiles anew, keeping its hosts', async () => {
    const set = bigSet(2_000);
    const first = await compileSnapshotSliced(set, 'v1', { sliceSize: 500 });
    const changed = assignment('big', [...endpoints(2_000), endpoint('10.9.9.9', 9000)]);
    const next = { ...set, endpoints: [changed, set.endpoints[1]!] };
    let slices = 0;
    const second = await compileSnapshotSliced(next, 'v2', { previous: first, sliceSize: 500, onSlice: () => slices++ });
    assert.equal(second.clusters.get('small'), first.clusters.get('small'), 'unchanged cluster reused whole');
    assert.notEqual(second.clusters.get('big'), first.clusters.get('big'));
    assert.equal(second.clusters.get('big')!.hosts.length, 2_001);
    assert.equal(second.clusters.get('big')!.hosts[0], first.clusters.get('big')!.hosts[0], 'an unchanged endpoint keeps its Host (and live counters)');
    const unchanged = await compileSnapshotSliced({ ...set }, 'v3', { previous: second, sliceSize: 500, onSlice: () => slices++ });
    assert.equal(unchanged.clusters.get('small'), second.clusters.get('small'));
  });
});

/** Endpoints as they travel on the wire: labels in the `istio` filter metadata Struct (protobufjs' common Struct type: camelCase). */
function wireEndpoints(n: number, port: number): LbEndpoint[] {
  return Array.from({ length: n }, (_, i) => ({
    endpoint: { address: { socket_address: { address: `10.0.${i >> 8}.${i & 255}`, port_value: port } } },
    load_balancing_weight: { value: 1 + (i % 3) },
    metadata: { filter_metadata: { istio: { fields: { labels: { structValue: { fields: { version: { stringValue: i % 2 ? 'v1' : 'v2' } } } } } } } },
  }) as unknown as LbEndpoint);
}

describe('sliced EDS decode', () => {
  const cla: ClusterLoadAssignment = {
    cluster_name: 'outbound|9000||big.default.svc.cluster.local',
    endpoints: [
      { locality: { region: 'r1', zone: 'z1' }, load_balancing_weight: { value: 3 }, priority: 0, lb_endpoints: wireEndpoints(1_500, 9000) },
      { locality: { region: 'r2' }, priority: 1, lb_endpoints: wireEndpoints(700, 9001) },
      { locality: { region: 'r3' } },
      // the shapes the direct path hands to protobufjs, and the enum and oneofs it renders itself
      { lb_endpoints: [
        { endpoint: { address: { socket_address: { address: 'h', named_port: 'http', protocol: 'UDP' } } }, health_status: 'DRAINING' },
        { endpoint: { address: { socket_address: { address: 'h', named_port: 'http' } } }, health_status: 'UNHEALTHY', load_balancing_weight: { value: 7 } },
        { endpoint_name: 'named' },
        { endpoint: { address: { socket_address: { address: 'x', port_value: 1 } }, hostname: 'host.example' } },
        { endpoint: { address: { pipe: { path: '/tmp/sock' } } } },
      ] as unknown as LbEndpoint[] },
    ],
    policy: { overprovisioning_factor: { value: 150 } },
  } as ClusterLoadAssignment;

  it('decodes to exactly what a whole decode gives, yielding every budget.size endpoints', () => {
    const any = encodeAny(TYPE_URL.endpoint, cla);
    let yields = 0;
    const work = decodeAssignmentSliced(any.value, new SliceBudget(250));
    let step = work.next();
    while (!step.done) { yields++; step = work.next(); }
    assert.deepEqual(step.value, decodeAny(any));
    assert.equal(yields, Math.floor(2_205 / 250));
    // Endpoints with the same labels share one decoded metadata object (the compile converts it once).
    const lbes = (step.value as unknown as ClusterLoadAssignment).endpoints.flatMap((l) => l.lb_endpoints ?? []);
    assert.equal(new Set(lbes.map((e) => e.metadata).filter(Boolean)).size, 2);
    assert.equal(compileSnapshot(resources([], [edsCluster(cla.cluster_name)], [{ ...(step.value as unknown as ClusterLoadAssignment), endpoints: (step.value as unknown as ClusterLoadAssignment).endpoints.slice(0, 2) }]), 'v').clusters.get(cla.cluster_name)!.hosts[1]!.labels.version, 'v1');
    assert.equal(peekName(any.value), cla.cluster_name);
  });

  it('malformed bytes throw instead of decoding to something', () => {
    const any = encodeAny(TYPE_URL.endpoint, cla);
    const truncated = any.value.subarray(0, any.value.length - 3);
    assert.throws(() => runNow(decodeAssignmentSliced(truncated, new SliceBudget(100))));
  });
});
