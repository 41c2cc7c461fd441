/**
 * A 20,000-endpoint ServiceEntry through admission and translation in slices
 * (#16 item 5): before, mesh.apply validated, walked the support table and
 * built every LbEndpoint in one turn of the event loop (~95 ms measured with
 * bench/endpoints.ts). The sliced forms must yield many times and give exactly
 * what the one-shot forms give — results and errors alike.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { admitResources, admitResourcesSliced } from '../../src/config/admission.js';
import { translate, translateSliced } from '../../src/config/translate.js';
import { check, checkSliced, type ConfigIssue } from '../../src/config/schema.js';
import { kinds } from '../../src/config/istio-schemas.js';
import { ENDPOINTS_PER_SLICE, type Sliced } from '../../src/core/slices.js';

const ENDPOINTS = 20_000;

function serviceEntry(endpoints: object[]): object {
  return {
    apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'big', namespace: 'default' },
    spec: { hosts: ['big.example.com'], ports: [{ number: 9000, name: 'http', protocol: 'HTTP' }], resolution: 'STATIC', location: 'MESH_INTERNAL', endpoints },
  };
}

const endpoints = (): object[] => Array.from({ length: ENDPOINTS }, (_, i) => ({ address: `10.2.${i >> 8}.${i & 255}`, labels: { version: i % 2 ? 'v1' : 'v2' } }));

/** Drains a sliced computation, counting its yields. */
function drain<T>(work: Sliced<T>): { value: T; slices: number } {
  let slices = 0;
  for (;;) {
    const step = work.next();
    if (step.done) return { value: step.value, slices };
    slices++;
  }
}

const minSlices = ENDPOINTS / ENDPOINTS_PER_SLICE - 1;

test('admission of a 20,000-endpoint ServiceEntry yields a slice per thousand endpoints and admits what admitResources admits', () => {
  const docs = [serviceEntry(endpoints())];
  const sliced = drain(admitResourcesSliced(docs, 'embedded'));
  assert.ok(sliced.slices >= minSlices, `${sliced.slices} slices`);
  assert.deepEqual(sliced.value, admitResources(docs, 'embedded'));
  assert.equal(sliced.value.statuses[0]?.status, 'applied');
});

test('a bad endpoint deep in the list is refused with the same path and reason, sliced or not', () => {
  const list = endpoints();
  (list[17_321] as { ports?: unknown }).ports = { http: 'nine' };
  (list[19_999] as { bogus?: unknown }).bogus = true;
  const spec = (serviceEntry(list) as { spec: object }).spec;
  const once: ConfigIssue[] = [];
  check(kinds.ServiceEntry!.spec, spec, 'spec', once);
  const inSlices: ConfigIssue[] = [];
  const { slices } = drain(checkSliced(kinds.ServiceEntry!.spec, spec, 'spec', inSlices));
  assert.ok(slices >= minSlices);
  assert.deepEqual(inSlices, once);
  assert.equal(once[0]?.path, 'spec.endpoints[17321].ports.http');
  assert.equal(once[1]?.path, 'spec.endpoints[19999].bogus');
  const admitted = admitResources([serviceEntry(list)], 'embedded');
  assert.equal(admitted.errors[0]?.path, 'spec.endpoints[17321].ports.http');
});

test('translation builds the endpoints in slices and gives what translate gives', () => {
  const { resources } = admitResources([serviceEntry(endpoints())], 'embedded');
  const proxy = { name: 'client', namespace: 'default', labels: {} };
  const sliced = drain(translateSliced(resources, proxy));
  assert.ok(sliced.slices >= minSlices, `${sliced.slices} slices`);
  const once = translate(resources, proxy);
  assert.deepEqual(sliced.value, once);
  const big = once.endpoints.find((e) => e.cluster_name === 'outbound|9000||big.example.com');
  assert.equal(big?.endpoints.reduce((n, g) => n + g.lb_endpoints.length, 0), ENDPOINTS);
});
