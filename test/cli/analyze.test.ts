/**
 * `meshlet analyze` on istioctl analyze's own fixtures
 * (test/fixtures/istio/analyze, istio/istio 86c9f01f): it reproduces the
 * (code, resource) pairs analyzers_test.go expects for the analyzers it
 * covers; the expected messages it does not produce are listed, not hidden.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyze, runAnalyze } from '../../src/cli/analyze.js';

const fixture = (name: string) => join(import.meta.dirname, '..', 'fixtures', 'istio', 'analyze', `${name}.yaml`);

interface Case {
  file: string;
  analyzer: string;
  /** analyzers_test.go's expected messages for this file: [code, origin]. */
  expected: Array<[string, string]>;
  /** The expected ones meshlet does not produce, and why. */
  notCovered?: Array<[string, string, string]>;
}

// analyzers_test.go testGrid entries, with Istio's message names turned into their codes.
const cases: Case[] = [
  { file: 'virtualservice_destinationrules', analyzer: 'virtualservice.DestinationRuleAnalyzer', expected: [
    ['IST0101', 'VirtualService default/reviews-bogussubset'], ['IST0101', 'VirtualService default/reviews-mirror-bogussubset']] },
  { file: 'virtualservice_destinationhosts', analyzer: 'virtualservice.DestinationHostAnalyzer', expected: [
    ['IST0101', 'VirtualService default/reviews-bogushost'], ['IST0101', 'VirtualService default/reviews-bogushost'],
    ['IST0101', 'VirtualService default/reviews-bookinfo-other'], ['IST0101', 'VirtualService default/reviews-mirror-bogushost'],
    ['IST0101', 'VirtualService istio-system/cross-namespace-details'], ['IST0101', 'VirtualService hello/hello-export-to-bogus']],
  notCovered: [
    ['IST0101', 'VirtualService default/reviews-bogusport', 'destination ports are not checked against the service ports'],
    ['IST0112', 'VirtualService default/reviews-2port-missing', 'VirtualServiceDestinationPortSelectorRequired is not implemented'],
  ] },
  { file: 'virtualservice_gateways', analyzer: 'virtualservice.GatewayAnalyzer', expected: [
    ['IST0101', 'VirtualService httpbin-bogus'], ['IST0132', 'VirtualService default/cross-test'],
    ['IST0132', 'VirtualService httpbin-bogus'], ['IST0132', 'VirtualService httpbin']] },
  { file: 'virtualservice_conflictingmeshgatewayhosts', analyzer: 'virtualservice.ConflictingMeshGatewayHostsAnalyzer', expected: [
    ['IST0109', 'VirtualService team3/ratings'], ['IST0109', 'VirtualService team4/ratings'], ['IST0109', 'VirtualService foo/ratings'],
    ['IST0109', 'VirtualService bar/ratings'], ['IST0109', 'VirtualService foo/productpage'], ['IST0109', 'VirtualService foo/bogus-productpage'],
    ['IST0109', 'VirtualService team2/ratings']] },
  { file: 'virtualservice_conflictingmeshgatewayhosts_with_exportto', analyzer: 'virtualservice.ConflictingMeshGatewayHostsAnalyzer', expected: [
    ['IST0109', 'VirtualService foo/productpage'], ['IST0109', 'VirtualService bar/productpage'], ['IST0109', 'VirtualService foo/productpage-c'],
    ['IST0109', 'VirtualService bar/productpage-c'], ['IST0109', 'VirtualService foo/productpage-d'], ['IST0109', 'VirtualService bar/productpage-d']] },
  { file: 'sidecar-default-selector', analyzer: 'sidecar.SelectorAnalyzer', expected: [
    ['IST0111', 'Sidecar ns2/has-conflict-2'], ['IST0111', 'Sidecar ns2/has-conflict-1']],
  notCovered: [
    ['IST0167', 'Sidecar ns-ambient/namespace-scoped', 'IneffectivePolicy (ambient namespaces) is not implemented'],
    ['IST0167', 'Sidecar ns-ambient/pod-scoped', 'IneffectivePolicy (ambient namespaces) is not implemented'],
  ] },
];

const sorted = (pairs: Array<[string, string]>) => pairs.map((p) => p.join(' ')).sort();

for (const c of cases) {
  test(`istioctl fixture ${c.file}.yaml: ${c.analyzer} messages`, async (t) => {
    const report = await analyze([fixture(c.file)]);
    const got = report.messages.filter((m) => m.analyzer === c.analyzer).map((m): [string, string] => [m.code, m.origin]);
    assert.deepEqual(sorted(got), sorted(c.expected));
    for (const [code, origin, why] of c.notCovered ?? []) t.diagnostic(`not covered: ${code} ${origin} — ${why}`);
  });
}

test('meshlet analyze: per resource status, meshlet codes for what is not applied, exit 1 on errors, -o json', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'meshlet-analyze-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'good.yaml'), `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: shop, namespace: default }
spec: { hosts: [shop], resolution: DNS, ports: [{ number: 80, name: http }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop]
  http: [{ retries: { attempts: 1, retryRemoteLocalities: true }, route: [{ destination: { host: shop } }] }]
`);
  const out: string[] = [];
  const io = { out: (s: string) => out.push(s), err: (s: string) => out.push(s) };
  assert.equal(await runAnalyze([dir], io), 0, 'warnings only: exit 0');
  assert.match(out.join('\n'), /Warning \[MESHLET_UNSUPPORTED_FIELD\] \(VirtualService default\/shop\) spec\.http\[0\]\.retries\.retryRemoteLocalities: not supported by meshlet/);

  await writeFile(join(dir, 'bad.yaml'), `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: typo, namespace: default }
spec: { hosts: [shop], htp: [] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: subset, namespace: default }
spec: { hosts: [other], http: [{ route: [{ destination: { host: shop, subset: v9 } }] }] }
`);
  out.length = 0;
  assert.equal(await runAnalyze([dir, '-o', 'json'], io), 1, 'errors: exit 1');
  const report = JSON.parse(out.join('\n')) as Awaited<ReturnType<typeof analyze>>;
  assert.deepEqual(report.resources.map((r) => [r.name, r.status]), [['typo', 'rejected'], ['subset', 'applied'], ['shop', 'applied'], ['shop', 'partial']]);
  const codes = report.messages.map((m) => `${m.level} ${m.code} ${m.origin}`);
  assert.ok(codes.includes('Error IST0106 VirtualService default/typo'), codes.join('\n'));
  assert.ok(codes.includes('Error IST0101 VirtualService default/subset'), codes.join('\n'));
  assert.equal(await runAnalyze([], io), 2, 'usage');
});
