/**
 * RequestAuthentication admission against Istio's own fixtures (test/config/fixtures/istio,
 * istio/istio @ 86c9f01f): the validation datasets for v1 and v1beta1 (applied), and the CRD
 * testdata — each invalid document refused at the field Istio names, the valid one applied once
 * its targetRefs (which meshlet refuses, as for AuthorizationPolicy) are taken out.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseYaml } from '../../src/config/load.js';
import { admitResources } from '../../src/config/admission.js';
import { translate } from '../../src/config/translate.js';
import { JWT_AUTHN_FILTER } from '../../src/core/jwt-authn.js';

const fixture = (name: string) => parseYaml(readFileSync(new URL(`fixtures/istio/${name}`, import.meta.url), 'utf8'), name) as Array<Record<string, unknown>>;

describe('RequestAuthentication (Istio fixtures)', () => {
  for (const version of ['v1', 'v1beta1']) {
    it(`applies istio's security-${version}-RequestAuthentication dataset and puts jwt_authn on the selected workload`, () => {
      const { statuses, resources } = admitResources(fixture(`security-${version}-RequestAuthentication.yaml`), 'embedded');
      assert.deepEqual(statuses.map((s) => [s.kind, s.status, s.warnings.length]), [['RequestAuthentication', 'applied', 0]]);
      const envoy = translate(resources, { name: 'httpbin', namespace: 'default', labels: { app: 'httpbin', version: 'v1' } });
      const inbound = JSON.stringify(envoy.listeners.find((l) => l.name === 'virtual_inbound'));
      assert.ok(inbound.includes(JWT_AUTHN_FILTER), 'the jwt_authn filter is on the inbound chain');
      // issuer `example.com` is no URL: its keys cannot be discovered, so no token can verify (istiod's fallback key).
      assert.ok(inbound.includes('{\\"keys\\":[]}'));
      const other = translate(resources, { name: 'other', namespace: 'default', labels: { app: 'other' } });
      assert.ok(!JSON.stringify(other.listeners).includes(JWT_AUTHN_FILTER), 'the selector keeps it off other workloads');
    });
  }

  it('reqauth-valid.yaml: refused for its targetRefs, applied without them (every jwtRule field)', () => {
    const [full] = fixture('reqauth-valid.yaml');
    const refused = admitResources([full!], 'embedded').statuses[0]!;
    assert.equal(refused.status, 'rejected');
    assert.equal(refused.warnings[0]!.path, 'spec.targetRefs');
    const { targetRefs: _, ...spec } = full!.spec as Record<string, unknown>;
    const applied = admitResources([{ ...full!, spec }], 'embedded').statuses[0]!;
    assert.deepEqual([applied.status, applied.warnings], ['applied', []]);
  });

  // Istio's errors come from the API server (CRD schema / CEL); meshlet names the same field.
  const expected: Record<string, string> = {
    'multi-refs': 'spec.targetRef', 'ref-and-selector': 'spec.targetRef', 'bad-target-name': 'spec.targetRef',
    'bad-target-namespace': 'spec.targetRef', 'bad-target-group': 'spec.targetRef', 'bad-target-kind': 'spec.targetRef',
    'no-issuer': 'spec.jwtRules[0]',
    'empty-aud': 'spec.jwtRules[0].audiences[0]',
    'invalid-jwks': 'spec.jwtRules[0].jwksUri',
    'invalid-from-headers-no-name': 'spec.jwtRules[0].fromHeaders[0].name',
    'invalid-from-headers-empty-name': 'spec.jwtRules[0].fromHeaders[0].name',
    'invalid-from-params': 'spec.jwtRules[0].fromParams[0]',
    'invalid-from-cookies': 'spec.jwtRules[0].fromCookies[0]',
    'invalid-claim-to-header-unset': 'spec.jwtRules[0].outputClaimToHeaders[0]',
    'invalid-claim-to-header-claim-empty': 'spec.jwtRules[0].outputClaimToHeaders[0]',
    'invalid-claim-to-header-header-empty': 'spec.jwtRules[0].outputClaimToHeaders[0]',
    'invalid-claim-to-header-bad-header': 'spec.jwtRules[0].outputClaimToHeaders[0].header',
    'bad-timeout': 'spec.jwtRules[0].timeout',
    'invalid-space-delimited-claims': 'spec.jwtRules[0].spaceDelimitedClaims[0]',
    'invalid-presence-value': 'spec.jwtRules[0].presence',
  };
  const invalid = fixture('reqauth-invalid.yaml') as Array<Record<string, unknown> & { _err: string; metadata: { name: string } }>;
  it('covers every document of reqauth-invalid.yaml', () => assert.deepEqual(invalid.map((d) => d.metadata.name).sort(), Object.keys(expected).sort()));
  for (const doc of invalid) {
    it(`refuses ${doc.metadata.name} (istio: ${doc._err})`, () => {
      const { _err, ...resource } = doc;
      const status = admitResources([resource], 'embedded').statuses[0]!;
      assert.equal(status.kind, 'RequestAuthentication');
      assert.equal(status.status, 'rejected');
      assert.equal(status.warnings[0]!.path, expected[doc.metadata.name]);
    });
  }
});
