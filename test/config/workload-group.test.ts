/**
 * WorkloadGroup validation against Istio's own fixtures (test/config/fixtures/istio,
 * istio/istio @ 86c9f01f): the validation datasets for v1, v1beta1 and v1alpha3
 * and the CRD testdata (valid and invalid documents), plus Istio's
 * ValidateWorkloadGroup cases (pkg/config/validation/validation_test.go).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseYaml } from '../../src/config/load.js';
import { parseResources } from '../../src/config/resources.js';
import { MeshConfigError } from '../../src/errors.js';

const fixture = (name: string) => parseYaml(readFileSync(new URL(`fixtures/istio/${name}`, import.meta.url), 'utf8'), name);

describe('WorkloadGroup (Istio fixtures)', () => {
  for (const version of ['v1', 'v1beta1', 'v1alpha3']) {
    it(`accepts istio's networking-${version}-WorkloadGroup dataset`, () => {
      const [group] = parseResources(fixture(`networking-${version}-WorkloadGroup.yaml`));
      assert.equal(group?.kind, 'WorkloadGroup');
      assert.equal(group.apiVersion, `networking.istio.io/${version}`);
      assert.deepEqual(group.kind === 'WorkloadGroup' && group.spec.template.ports, { grpc: 3550, http: 8080 });
    });
  }

  it('accepts workloadgroup-valid.yaml (metadata, httpGet and tcpSocket probes, a full template)', () => {
    const groups = parseResources(fixture('workloadgroup-valid.yaml'));
    assert.deepEqual(groups.map((g) => g.metadata.name), ['full', 'tcp-probe']);
    const full = groups[0]!;
    assert.ok(full.kind === 'WorkloadGroup');
    assert.equal(full.spec.template.serviceAccount, 'sa');
    assert.equal(full.spec.probe?.httpGet?.scheme, 'HTTPS');
  });

  // Istio's errors come from the API server (CRD schema / CEL); meshlet names the same field.
  const expected: Record<string, [string, RegExp]> = {
    'no-spec': ['spec.template', /is required/],
    'tcp-probe-invalid': ['spec.probe.tcpSocket.port', /≤ 65535/],
    'http-probe-invalid': ['spec.probe.httpGet.httpHeaders[0].name', /must match/],
  };
  for (const doc of fixture('workloadgroup-invalid.yaml') as Array<Record<string, unknown> & { _err: string; metadata: { name: string } }>) {
    it(`refuses ${doc.metadata.name} (istio: ${doc._err})`, () => {
      const { _err, ...resource } = doc;
      const [path, reason] = expected[doc.metadata.name]!;
      assert.throws(() => parseResources([resource]), (err: unknown) => {
        assert.ok(err instanceof MeshConfigError);
        assert.equal(err.kind, 'WorkloadGroup');
        assert.equal(err.resource, `default/${doc.metadata.name}`);
        assert.equal(err.path, path);
        assert.match(err.reason, reason);
        return true;
      });
    });
  }
});

describe('WorkloadGroup (Istio ValidateWorkloadGroup cases)', () => {
  const group = (spec: object) => ({ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadGroup', metadata: { name: 'g', namespace: 'shop' }, spec });
  const valid: Array<[string, object]> = [
    ['an empty template', { template: {} }],
    ['an httpGet probe with a port', { template: {}, probe: { httpGet: { port: 5 } } }],
    ['a tcpSocket probe with a port', { template: {}, probe: { tcpSocket: { port: 5 } } }],
    ['an exec probe with a command', { template: {}, probe: { exec: { command: ['foo', 'bar'] } } }],
  ];
  for (const [name, spec] of valid) it(`accepts ${name}`, () => assert.equal(parseResources([group(spec)]).length, 1));

  const invalid: Array<[string, object, string, RegExp]> = [
    ['invalid metadata labels', { template: {}, metadata: { labels: { '.': '~' } } }, 'spec.metadata.labels..', /invalid label key/],
    ['a probe without a method', { template: {}, probe: {} }, 'spec.probe', /one of httpGet, tcpSocket, exec or grpc/],
    ['an httpGet probe without a port', { template: {}, probe: { httpGet: {} } }, 'spec.probe.httpGet.port', /is required/],
    ['a tcpSocket probe without a port', { template: {}, probe: { tcpSocket: {} } }, 'spec.probe.tcpSocket.port', /is required/],
    ['an exec probe without a command', { template: {}, probe: { exec: {} } }, 'spec.probe.exec.command', /is required/],
    ['two probe methods', { template: {}, probe: { exec: { command: ['x'] }, tcpSocket: { port: 1 } } }, 'spec.probe', /only one of/],
    ['an unknown template field', { template: { serviceAcount: 'sa' } }, 'spec.template.serviceAcount', /unknown field/],
    ['no template', {}, 'spec.template', /is required/],
  ];
  for (const [name, spec, path, reason] of invalid) {
    it(`refuses ${name} at ${path}`, () => {
      assert.throws(() => parseResources([group(spec)]), (err: unknown) => err instanceof MeshConfigError && err.kind === 'WorkloadGroup' && err.path === path && reason.test(err.reason));
    });
  }
});
