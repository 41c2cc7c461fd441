// Property: any mutation of a good Istio config, through createMesh({ config })
// or mesh.apply(), either applies or fails with a MeshConfigError — never
// another error type, never a hang — and after a refused apply the old config
// keeps serving real traffic. The corpus (fuzz-corpus/config) is replayed first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { createMesh, MeshConfigError, type Mesh } from '../../src/index.js';
import { corpus, fuzzParameters, hostileValue, jsonPaths, mutateAt, settlesWithin } from '../helpers/fuzz.js';
import { startServer } from '../helpers/http-servers.js';

const HOST = 'backend.default.svc.cluster.local';

/** A config that exercises most schemas: ServiceEntry, VirtualService (match, retries, fault, mirror), DestinationRule, policies. */
function goodConfig(port: number): object[] {
  return [
    { apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'backend', namespace: 'default' },
      spec: { hosts: [HOST], location: 'MESH_INTERNAL', resolution: 'STATIC', ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }],
        endpoints: [{ address: '127.0.0.1', ports: { http: port }, labels: { version: 'v1' } }] } },
    { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'backend', namespace: 'default' },
      spec: { hosts: [HOST], http: [
        { match: [{ uri: { prefix: '/admin' }, headers: { 'x-user': { regex: 'a.*' } } }], fault: { abort: { httpStatus: 418, percentage: { value: 100 } } },
          route: [{ destination: { host: HOST, subset: 'v1' } }] },
        { route: [{ destination: { host: HOST, subset: 'v1', port: { number: 8080 } }, weight: 100 }], timeout: '5s',
          retries: { attempts: 2, perTryTimeout: '2s', retryOn: '5xx,connect-failure' }, headers: { request: { add: { 'x-mesh': '1' } } } },
      ] } },
    { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'backend', namespace: 'default' },
      spec: { host: HOST, trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' }, connectionPool: { tcp: { maxConnections: 10, connectTimeout: '1s' } },
        outlierDetection: { consecutive5xxErrors: 5, interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: 50 } },
        subsets: [{ name: 'v1', labels: { version: 'v1' } }] } },
    { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'allow', namespace: 'default' },
      spec: { action: 'ALLOW', rules: [{ to: [{ operation: { methods: ['GET'], paths: ['/*'] } }] }] } },
  ];
}

/** What the property allows an apply or createMesh to do: succeed, or throw a MeshConfigError. */
async function outcome(run: Promise<unknown>, what: string): Promise<'applied' | 'refused'> {
  try {
    await settlesWithin(run, 30_000, what);
    return 'applied';
  } catch (err) {
    if (err instanceof MeshConfigError) {
      assert.ok(err.kind && err.path !== undefined, `a MeshConfigError names kind and path: ${err.message}`);
      return 'refused';
    }
    throw new Error(`${what} threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`, { cause: err });
  }
}

async function served(mesh: Mesh): Promise<string> {
  const res = await mesh.fetch(`http://${HOST}:8080/`);
  return res.text();
}

test('mutated Istio config through createMesh and apply: only MeshConfigError, the old config keeps serving', async (t) => {
  const backend = await startServer('backend');
  const good = goodConfig(backend.port);
  const mesh = await createMesh({ workload: { name: 'client', namespace: 'default' }, config: good });
  t.after(async () => { await mesh.close(); await backend.close(); });
  assert.equal(await served(mesh), 'backend');

  const check = async (config: object[] | string, viaCreate: boolean): Promise<void> => {
    if (viaCreate) {
      let created: Mesh | undefined;
      const result = await outcome(createMesh({ workload: { name: 'fuzz' }, config }).then((m) => { created = m; }), 'createMesh');
      await created?.close();
      assert.ok(result);
      return;
    }
    const before = mesh.configDump().version;
    const result = await outcome(mesh.apply(config), 'apply');
    if (result === 'refused') {
      assert.equal(mesh.configDump().version, before, 'a refused config leaves the old one in place');
      assert.equal(await served(mesh), 'backend', 'and it still serves');
    } else {
      await mesh.apply(good);
      assert.equal(await served(mesh), 'backend');
    }
  };

  await t.test('corpus', async () => {
    for (const { name, text } of corpus('config')) {
      await check(text, false).catch((err: Error) => { throw new Error(`corpus ${name}: ${err.message}`, { cause: err }); });
      await check(text, true);
    }
  });

  // Paths into the config: one resource's field replaced by a hostile value (or removed).
  const paths = jsonPaths(good).filter((p) => p.length >= 2);
  const mutation = fc.record({
    mutations: fc.array(fc.tuple(fc.constantFrom(...paths), hostileValue), { minLength: 1, maxLength: 3 }),
    viaCreate: fc.boolean(),
    asYaml: fc.boolean(),
  });
  await t.test('mutations', async () => {
    await fc.assert(fc.asyncProperty(mutation, async ({ mutations, viaCreate, asYaml }) => {
      let config: unknown = good;
      for (const [path, value] of mutations) {
        try {
          config = mutateAt(config, path, value);
        } catch {
          return; // an earlier mutation removed the path's parent
        }
      }
      await check(asYaml ? (config as object[]).map((d) => stringify(d)).join('---\n') : config as object[], viaCreate);
    }), fuzzParameters(60));
  });
});
