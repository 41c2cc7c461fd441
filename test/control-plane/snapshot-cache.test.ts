/**
 * The snapshot cache's push bookkeeping: a snapshot patched from its
 * predecessor reuses what did not change and says which names did; a SotW
 * client already up to date gets nothing, and that must not leave a stale
 * (empty) body for another client of the same subscription.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseResources } from '../../src/config/resources.js';
import { parseYaml } from '../../src/config/load.js';
import { translate } from '../../src/config/translate.js';
import { EncodingCache } from '../../src/control-plane/encoding-cache.js';
import { NamespaceSnapshot } from '../../src/control-plane/snapshot-cache.js';
import { XDS_TYPES } from '../../src/xds/resources.js';

const yaml = (v2: number) => [0, 1].map((i) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: svc-${i}, namespace: a }
spec:
  hosts: [svc-${i}.a.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  endpoints: [{ address: 10.0.${i}.1, ports: { http: 9000 }, labels: { version: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: svc-${i}, namespace: a }
spec:
  hosts: [svc-${i}.a.svc.cluster.local]
  http: [{ route: [{ destination: { host: svc-${i}.a.svc.cluster.local }, weight: 100 }], timeout: ${i === 0 ? v2 : 5}s }]
`).join('---\n');

const proxy = { name: 'p', namespace: 'a', labels: {} };
const type = (short: string) => XDS_TYPES.find((t) => t.short === short)!;

test('an up-to-date SotW client gets no response, and another client of the same subscription still gets the full body', () => {
  const encodings = new EncodingCache();
  const resources = translate(parseResources(parseYaml(yaml(1), 't')), proxy);
  const cds = type('CDS');
  // what client A got from the control plane's previous generation (same content)
  const first = new NamespaceSnapshot('a', 1, resources, encodings).response(cds, '*', [])!;
  assert.ok(first.count > 0);
  const snapshot = new NamespaceSnapshot('a', 2, resources, encodings);
  // client A already has this version: nothing to send
  assert.equal(snapshot.response(cds, '*', [], { version: first.version, hashes: first.hashes, sum: first.sum }), undefined);
  // client B has an older set: it must get every cluster, not an empty body left by A's answer
  const forB = snapshot.response(cds, '*', [], { version: 'older', hashes: new Map(), sum: [0, 0] })!;
  assert.equal(forB.version, first.version);
  assert.equal(forB.count, first.count);
  assert.ok(forB.body.length >= first.body.length - 2);
});

test('a snapshot built from its predecessor reports which names changed, and keeps the version of an untouched type', () => {
  const encodings = new EncodingCache();
  const before = translate(parseResources(parseYaml(yaml(1), 't')), proxy);
  const s1 = new NamespaceSnapshot('a', 1, before, encodings);
  // the same objects except svc-0's route table, as a patched translation hands them over
  const changed = translate(parseResources(parseYaml(yaml(2), 't')), proxy);
  const routes = before.routes.map((r) => (r.name === 'svc-0.a.svc.cluster.local:8080' ? changed.routes.find((c) => c.name === r.name)! : r));
  const s2 = new NamespaceSnapshot('a', 2, { ...before, routes }, encodings, s1);
  assert.deepEqual([...s2.changedSince(type('RDS'), s1.typeVersion(type('RDS')))!], ['svc-0.a.svc.cluster.local:8080']);
  assert.notEqual(s2.typeVersion(type('RDS')), s1.typeVersion(type('RDS')));
  assert.equal(s2.typeVersion(type('CDS')), s1.typeVersion(type('CDS')));
  assert.deepEqual([...s2.changedSince(type('CDS'), s1.typeVersion(type('CDS')))!], []);
  // against a version it does not know, it cannot say
  assert.equal(s2.changedSince(type('RDS'), 'g0'), undefined);
  assert.equal(s2.lookup(type('RDS'), 'svc-0.a.svc.cluster.local:8080'), encodings.encode(type('RDS').typeUrl, routes[0]!.name === 'svc-0.a.svc.cluster.local:8080' ? routes[0]! : routes.find((r) => r.name === 'svc-0.a.svc.cluster.local:8080')!));
});

test('a SotW RDS push that looks at the changed names only gives the version, hashes and body of one that hashes every name', () => {
  const encodings = new EncodingCache();
  const before = translate(parseResources(parseYaml(yaml(1), 't')), proxy);
  const changedTranslation = translate(parseResources(parseYaml(yaml(3), 't')), proxy);
  const routes = before.routes.map((r) => (r.name === 'svc-0.a.svc.cluster.local:8080' ? changedTranslation.routes.find((c) => c.name === r.name)! : r));
  const rds = type('RDS');
  const names = ['svc-0.a.svc.cluster.local:8080', 'svc-1.a.svc.cluster.local:8080', 'svc-9.a.svc.cluster.local:8080'];
  const key = names.join('\0');
  const s1 = new NamespaceSnapshot('a', 1, before, encodings);
  const sent = s1.response(rds, key, names)!;
  assert.equal(sent.count, 2, 'svc-9 does not exist');
  const patched = new NamespaceSnapshot('a', 2, { ...before, routes }, encodings, s1);
  const changed = patched.changedSince(rds, s1.typeVersion(rds))!;
  const bySome = patched.response(rds, key, names, sent, changed)!;
  const byAll = new NamespaceSnapshot('a', 2, { ...before, routes }, encodings).response(rds, key, names, sent)!;
  assert.notEqual(bySome.version, sent.version);
  assert.equal(bySome.version, byAll.version);
  assert.deepEqual(bySome.hashes, byAll.hashes);
  assert.deepEqual(bySome.body, byAll.body);
  assert.equal(bySome.count, 1, 'only the changed route table is sent');
  // and the same content from scratch (a restarted control plane) has that version too
  assert.equal(new NamespaceSnapshot('a', 7, { ...before, routes }, new EncodingCache()).response(rds, key, names)!.version, bySome.version);
  // a change none of the client's names is in: nothing to send
  assert.equal(patched.response(rds, key, names, bySome, new Set(['svc-5.a.svc.cluster.local:8080'])), undefined);
});

test('a resource translated again into the same bytes changes nothing: same version, no changed names, the old encoding kept', () => {
  const encodings = new EncodingCache();
  const before = translate(parseResources(parseYaml(yaml(1), 't')), proxy);
  const s1 = new NamespaceSnapshot('a', 1, before, encodings);
  const cds = type('CDS');
  // a patch re-makes every cluster of a changed host: new objects, the same content
  const clusters = before.clusters.map((c) => structuredClone(c));
  const s2 = new NamespaceSnapshot('a', 2, { ...before, clusters }, encodings, s1);
  assert.equal(s2.typeVersion(cds), s1.typeVersion(cds));
  assert.deepEqual([...s2.changedSince(cds, s1.typeVersion(cds))!], []);
  const name = before.clusters[0]!.name;
  assert.equal(s2.lookup(cds, name), s1.lookup(cds, name));
});
