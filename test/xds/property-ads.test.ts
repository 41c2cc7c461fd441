// Property: a control plane that sends malformed resources (any field of a
// good LDS/RDS/CDS/EDS set replaced by a hostile value, or removed) gets a NACK
// with an error detail, and the mesh's traffic is unaffected: it keeps the
// last accepted set. A mutation that happens to be valid is ACKed, and the good
// set is served again before the next case. The corpus (fuzz-corpus/xds) is replayed first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TYPE_URL, type EnvoyResources } from '../../src/config/envoy.js';
import { createMesh, type Mesh } from '../../src/index.js';
import { corpus, fuzzParameters, hostileValue, jsonPaths, mutateAt } from '../helpers/fuzz.js';
import { startServer } from '../helpers/http-servers.js';
import { sampleResources, startFakeAds, type FakeAdsServer } from './fake-ads-server.js';

type XdsType = 'LDS' | 'RDS' | 'CDS' | 'EDS';
const URL_OF: Record<XdsType, string> = { LDS: TYPE_URL.listener, RDS: TYPE_URL.route, CDS: TYPE_URL.cluster, EDS: TYPE_URL.endpoint };
const KEY_OF: Record<XdsType, keyof EnvoyResources> = { LDS: 'listeners', RDS: 'routes', CDS: 'clusters', EDS: 'endpoints' };
const TARGET = 'http://calculate.default.svc.cluster.local:9000/';

let sequence = 0;

/** Sends one type's resources and waits for the client's answer to that nonce: its error detail, or undefined for an ACK. */
async function send(server: FakeAdsServer, type: XdsType, resources: object[]): Promise<{ nack?: string } | 'unencodable'> {
  const n = ++sequence;
  const from = server.requests.length;
  try {
    server.respond(URL_OF[type], `v${n}`, `n${n}`, resources);
  } catch {
    return 'unencodable'; // protobuf cannot carry the value (a string in an int field): no control plane can send it
  }
  const answer = await server.next((r) => r.response_nonce === `n${n}`, from, 30_000);
  return answer.error_detail ? { nack: answer.error_detail.message ?? '' } : {};
}

/** Serves the whole good set again (each type ACKed), so a valid mutation does not leak into the next case. */
async function restore(server: FakeAdsServer, good: EnvoyResources): Promise<void> {
  for (const type of ['CDS', 'EDS', 'LDS', 'RDS'] as const) {
    const r = await send(server, type, good[KEY_OF[type]] as object[]);
    assert.deepEqual(r, {}, `the good ${type} is ACKed again`);
  }
}

async function served(mesh: Mesh): Promise<string> {
  return (await mesh.fetch(TARGET)).text();
}

test('malformed xDS resources are NACKed with a detail and traffic is unaffected', async (t) => {
  const backend = await startServer('calc');
  const server = await startFakeAds();
  const good = sampleResources({ port: backend.port });
  const meshReady = createMesh({ workload: { name: 'client', namespace: 'default' }, xds: { server: `127.0.0.1:${server.port}`, initialFetchTimeoutMs: 30_000 } });
  // The initial exchange (gRFC A27): LDS wildcard, then RDS, CDS and EDS by the names the resources before them give.
  const named = (type: XdsType) => (r: { type_url?: string; resource_names?: string[] }) => r.type_url === URL_OF[type] && (r.resource_names?.length ?? 0) > 0;
  await server.next((r) => r.type_url === URL_OF.LDS, 0, 30_000);
  server.respond(URL_OF.LDS, '1', 'init-l', good.listeners);
  await server.next(named('RDS'), 0, 30_000);
  server.respond(URL_OF.RDS, '1', 'init-r', good.routes);
  await server.next(named('CDS'), 0, 30_000);
  server.respond(URL_OF.CDS, '1', 'init-c', good.clusters);
  await server.next(named('EDS'), 0, 30_000);
  server.respond(URL_OF.EDS, '1', 'init-e', good.endpoints);
  const mesh = await meshReady;
  t.after(async () => { await mesh.close(); server.close(); await backend.close(); });
  assert.equal(await served(mesh), 'calc');

  const check = async (type: XdsType, resources: object[]): Promise<void> => {
    const r = await send(server, type, resources);
    if (r === 'unencodable') return;
    if (r.nack !== undefined) {
      // As grpc-js-xds records it: the resource kind and name, then the field path (not a raw TypeError).
      assert.match(r.nack, /^(Listener|RouteConfiguration|Cluster|ClusterLoadAssignment) \S+: /, 'a NACK names the resource');
      assert.equal(await served(mesh), 'calc', `traffic unaffected after NACK: ${r.nack}`);
    } else {
      await restore(server, good);
      assert.equal(await served(mesh), 'calc');
    }
  };

  await t.test('corpus', async () => {
    for (const { name, text } of corpus('xds')) {
      const { type, resources } = JSON.parse(text) as { type: XdsType; resources: object[] };
      await check(type, resources).catch((err: Error) => { throw new Error(`corpus ${name}: ${err.message}`, { cause: err }); });
    }
  });

  const types = ['LDS', 'RDS', 'CDS', 'EDS'] as const;
  const mutation = fc.constantFrom(...types).chain((type) => {
    const resources = good[KEY_OF[type]] as object[];
    return fc.record({
      type: fc.constant(type),
      path: fc.constantFrom(...jsonPaths(resources)),
      value: hostileValue,
    });
  });
  await t.test('mutations', async () => {
    await fc.assert(fc.asyncProperty(mutation, async ({ type, path, value }) => {
      await check(type, mutateAt(good[KEY_OF[type]], path, value) as object[]);
    }), fuzzParameters(40));
  });
});
