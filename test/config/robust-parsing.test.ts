// Inputs found by fuzzing Istio YAML through createMesh (issue #14 item 4): each one threw a raw
// TypeError / ReferenceError / EISDIR / ENOENT or armed a 1 ms timer loop before. Each must now be a
// MeshConfigError naming the file, the document, the resource and the field path — or, for durations
// Istio accepts but Node's timers cannot hold, be clamped.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadDocuments, parseYaml } from '../../src/config/load.js';
import { parseResources } from '../../src/config/resources.js';
import { Deadlines } from '../../src/core/deadlines.js';
import { MAX_TIMER_MS, protoToMs } from '../../src/core/duration.js';
import { MeshConfigError } from '../../src/errors.js';

const vs = (spec: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: vs, namespace: shop }
spec: ${spec}
`;
const doc = (kind: string, apiVersion: string, spec: string) => `apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: { name: r, namespace: shop }\nspec: ${spec}\n`;
const route = '[{ route: [{ destination: { host: a } }] }]';

// [name, YAML, kind, resource, path, reason]
const cases: Array<[string, string, string, string, string, RegExp]> = [
  ['a null host', vs(`{ hosts: [null], http: ${route} }`), 'VirtualService', 'shop/vs', 'spec.hosts[0]', /must not be null/],
  ['a null http route', vs('{ hosts: [a], http: [null] }'), 'VirtualService', 'shop/vs', 'spec.http[0]', /must not be null/],
  ['a null route destination item', vs('{ hosts: [a], http: [{ route: [null] }] }'), 'VirtualService', 'shop/vs', 'spec.http[0].route[0]', /must not be null/],
  ['a null match', vs('{ hosts: [a], http: [{ match: [null], route: [{ destination: { host: a } }] }] }'), 'VirtualService', 'shop/vs', 'spec.http[0].match[0]', /must not be null/],
  ['a null header match', vs('{ hosts: [a], http: [{ match: [{ headers: { x: null } }], route: [{ destination: { host: a } }] }] }'), 'VirtualService', 'shop/vs', 'spec.http[0].match[0].headers.x', /must not be null/],
  // Istio: validation.go validateHTTPRouteDestinations, "destination is required"
  ['a route without destination', vs('{ hosts: [a], http: [{ route: [{ weight: 100 }] }] }'), 'VirtualService', 'shop/vs', 'spec.http[0].route[0].destination', /is required/],
  ['a mirror without destination', vs('{ hosts: [a], http: [{ mirrors: [{ percentage: { value: 5 } }], route: [{ destination: { host: a } }] }] }'), 'VirtualService', 'shop/vs', 'spec.http[0].mirrors[0].destination', /is required/],
  ['a null subset', doc('DestinationRule', 'networking.istio.io/v1', '{ host: a, subsets: [null] }'), 'DestinationRule', 'shop/r', 'spec.subsets[0]', /must not be null/],
  ['a null port', doc('ServiceEntry', 'networking.istio.io/v1', '{ hosts: [a.com], ports: [null] }'), 'ServiceEntry', 'shop/r', 'spec.ports[0]', /must not be null/],
  ['a null server', doc('Gateway', 'networking.istio.io/v1', '{ servers: [null] }'), 'Gateway', 'shop/r', 'spec.servers[0]', /must not be null/],
  ['a null config patch', doc('EnvoyFilter', 'networking.istio.io/v1alpha3', '{ configPatches: [null] }'), 'EnvoyFilter', 'shop/r', 'spec.configPatches[0]', /must not be null/],
  ['a null port-level mTLS mode', doc('PeerAuthentication', 'security.istio.io/v1', '{ portLevelMtls: { 80: null } }'), 'PeerAuthentication', 'shop/r', 'spec.portLevelMtls.80', /must not be null/],
  ['kind: [null]', 'apiVersion: networking.istio.io/v1\nkind: [null]\nmetadata: { name: x }\nspec: {}\n', 'Config', 'document 0', 'kind', /must be a kind name, got \[null\]/],
  // Go's time.ParseDuration (Istio's duration parser) refuses anything past int64 nanoseconds.
  ['a timeout past Go\'s Duration', vs('{ hosts: [a], http: [{ timeout: 99999999h, route: [{ destination: { host: a } }] }] }'), 'VirtualService', 'shop/vs', 'spec.http[0].timeout', /out of range/],
];

function errorOf(yaml: string, origin = 'mesh/shop.yaml'): MeshConfigError {
  try {
    parseResources(parseYaml(yaml, origin));
  } catch (err) {
    if (err instanceof MeshConfigError) return err;
    throw new Error(`not a MeshConfigError: ${(err as Error).constructor.name}: ${(err as Error).message}`);
  }
  throw new Error('accepted');
}

describe('robust parsing: every bad input is a MeshConfigError naming file, document, resource and path', () => {
  for (const [name, yaml, kind, resource, path, reason] of cases) {
    it(name, () => {
      // The bad document is the second one of the file, so the index is checked, not assumed.
      const err = errorOf(`${vs(`{ hosts: [first], http: ${route} }`).replace('name: vs', 'name: first')}---\n${yaml}`);
      assert.equal(err.kind, kind);
      assert.equal(err.resource, kind === 'Config' ? 'document 1' : resource);
      assert.equal(err.path, path);
      assert.match(err.reason, reason);
      assert.deepEqual(err.source, { file: 'mesh/shop.yaml', document: 1 });
      assert.match(err.message, /\(mesh\/shop\.yaml, document 1\)$/);
    });
  }

  it('a YAML alias bomb is refused by yaml\'s alias limit, not expanded', () => {
    const bomb = ['a: &a [x,x,x,x,x,x,x,x,x]', 'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]', 'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
      'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]', 'e: [*d,*d,*d,*d,*d,*d,*d,*d,*d]'].join('\n');
    const err = errorOf(bomb, 'bomb.yaml');
    assert.equal(err.path, 'document');
    assert.match(err.reason, /alias/i);
    assert.deepEqual(err.source, { file: 'bomb.yaml', document: 0 });
  });

  it('a List whose items is not a list', () => {
    const err = errorOf('apiVersion: v1\nkind: List\nitems: { a: 1 }\n', 'list.yaml');
    assert.equal(err.kind, 'List');
    assert.equal(err.path, 'items');
  });

  it('a folder named x.yaml and a dangling link in a config directory name the entry', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'meshlet-robust-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'a.yaml'), vs(`{ hosts: [a], http: ${route} }`));
    await mkdir(join(dir, 'b.yaml'));
    await assert.rejects(loadDocuments(dir), (err: unknown) => err instanceof MeshConfigError && err.resource === join(dir, 'b.yaml') && /is a directory/.test(err.reason));
    await rm(join(dir, 'b.yaml'), { recursive: true });
    await symlink(join(dir, 'gone.yaml'), join(dir, 'c.yaml'));
    await assert.rejects(loadDocuments(dir), (err: unknown) => err instanceof MeshConfigError && err.resource === join(dir, 'c.yaml') && /dangling link/.test(err.reason));
    await rm(join(dir, 'c.yaml'));
    const docs = await loadDocuments(dir);
    assert.equal(docs.length, 1);
  });
});

describe('durations Istio accepts but Node timers cannot hold are clamped', () => {
  it('a 2,000,000 h timeout (valid for Go) is accepted and reads as the longest timer', () => {
    const [resource] = parseResources(parseYaml(vs(`{ hosts: [a], http: [{ timeout: 2000000h, route: [{ destination: { host: a } }] }] }`), 'x.yaml'));
    assert.equal((resource!.spec as { http: Array<{ timeout: string }> }).http[0]!.timeout, '2000000h');
    assert.equal(protoToMs({ seconds: 2_000_000 * 3600 }), MAX_TIMER_MS);
    assert.equal(protoToMs({ seconds: 2, nanos: 500_000_000 }), 2500);
  });

  it('a deadline past Node\'s timer limit arms a timer Node keeps, not a 1 ms loop', (t) => {
    // Node turns a delay past 2^31 - 1 ms into 1 ms (TimeoutOverflowWarning): the queue would wake every
    // millisecond, find nothing due and re-arm. Record the delays the queue hands to setTimeout.
    const delays: number[] = [];
    const realSetTimeout = globalThis.setTimeout;
    t.mock.method(globalThis, 'setTimeout', (fn: () => void, ms: number) => {
      delays.push(ms);
      return realSetTimeout(fn, 0x7fffffff).unref();
    });
    const deadlines = new Deadlines(() => 0);
    const d = deadlines.arm(MAX_TIMER_MS * 4, () => undefined, undefined);
    deadlines.cancel(d);
    deadlines.close();
    assert.deepEqual(delays, [MAX_TIMER_MS]);
  });
});
