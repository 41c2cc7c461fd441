/**
 * Istio's own Gateway API samples (samples/bookinfo/gateway-api/*.yaml,
 * istio/istio 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c; see
 * test/fixtures/gateway-api/README.md) route as Istio routes them, with the
 * per-version Services of samples/bookinfo/platform/kube/bookinfo-versions.yaml
 * expressed as ServiceEntries selecting the pods' WorkloadEntries by label —
 * backends without DestinationRule subsets.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { createMesh, seededRandom, type Mesh } from '../../src/index.js';
import { registryYaml, servicesOf, startEchoPod, type EchoPod, type EchoReply, type ServiceSpec } from '../helpers/gateway-api.js';

const sample = (f: string) => readFileSync(new URL(`../fixtures/gateway-api/istio/${f}`, import.meta.url), 'utf8');

describe('Istio bookinfo Gateway API samples', () => {
  let pods: EchoPod[];
  let registry: string;
  before(async () => {
    pods = [];
    for (const app of ['reviews', 'ratings', 'details', 'productpage']) {
      for (const version of app === 'reviews' ? ['v1', 'v2', 'v3'] : ['v1']) pods.push(await startEchoPod(`${app}-${version}-0`, 'default', { app, version }));
    }
    const perVersion = servicesOf(parseAllDocuments(sample('bookinfo-bookinfo-versions.yaml')).map((d) => d.toJS() as object).filter(Boolean));
    assert.deepEqual(perVersion.map((s) => s.name), ['reviews-v1', 'reviews-v2', 'reviews-v3', 'productpage-v1', 'ratings-v1', 'details-v1']);
    // The apps' own Services (samples/bookinfo/platform/kube/bookinfo.yaml): each selects every version.
    const apps: ServiceSpec[] = ['reviews', 'ratings', 'details', 'productpage'].map((name) => ({ name, namespace: 'default', ports: [{ name: 'http', port: 9080 }], selector: { app: name } }));
    registry = registryYaml([...apps, ...perVersion], pods);
  });
  after(async () => {
    await Promise.all(pods.map((p) => p.server.close()));
  });

  async function shares(config: string, n: number, url = 'http://reviews:9080/reviews/0'): Promise<Record<string, number>> {
    const mesh = await createMesh({ workload: { name: 'productpage-v1', namespace: 'default', labels: { app: 'productpage', version: 'v1' } }, config: `${registry}---\n${config}`, random: seededRandom(9080) });
    try {
      assert.ok(mesh.configStatus().every((s) => s.status === 'applied'), JSON.stringify(mesh.configStatus().filter((s) => s.status !== 'applied')));
      return await count(mesh, n, url);
    } finally {
      await mesh.close();
    }
  }

  async function count(mesh: Mesh, n: number, url: string): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (let i = 0; i < n; i += 50) {
      const pods = await Promise.all(Array.from({ length: Math.min(50, n - i) }, async () => {
        const res = await mesh.request(url);
        assert.equal(res.statusCode, 200);
        return (JSON.parse(await res.body.text()) as EchoReply).pod;
      }));
      for (const p of pods) out[p] = (out[p] ?? 0) + 1;
    }
    for (const k of Object.keys(out)) out[k] = out[k]! / n;
    return out;
  }

  it('route-reviews-90-10.yaml: 90/10 between reviews-v1 and reviews-v2 within ±3 points over 2,000 requests', async () => {
    const s = await shares(sample('bookinfo-route-reviews-90-10.yaml'), 2000);
    assert.ok(Math.abs((s['reviews-v1-0'] ?? 0) - 0.9) <= 0.03, JSON.stringify(s));
    assert.ok(Math.abs((s['reviews-v2-0'] ?? 0) - 0.1) <= 0.03, JSON.stringify(s));
    assert.equal(s['reviews-v3-0'], undefined);
  });

  it('route-reviews-50-v3.yaml: 50/50 between reviews-v1 and reviews-v3 within ±3 points over 2,000 requests', async () => {
    const s = await shares(sample('bookinfo-route-reviews-50-v3.yaml'), 2000);
    assert.ok(Math.abs((s['reviews-v1-0'] ?? 0) - 0.5) <= 0.03, JSON.stringify(s));
    assert.ok(Math.abs((s['reviews-v3-0'] ?? 0) - 0.5) <= 0.03, JSON.stringify(s));
  });

  it('route-reviews-v3.yaml and route-reviews-v1.yaml: all traffic to one version', async () => {
    assert.deepEqual(await shares(sample('bookinfo-route-reviews-v3.yaml'), 100), { 'reviews-v3-0': 1 });
    assert.deepEqual(await shares(sample('bookinfo-route-reviews-v1.yaml'), 100), { 'reviews-v1-0': 1 });
  });

  it('route-all-v1.yaml: every app to its v1', async () => {
    const config = sample('bookinfo-route-all-v1.yaml');
    for (const app of ['reviews', 'ratings', 'details', 'productpage']) assert.deepEqual(await shares(config, 20, `http://${app}:9080/`), { [`${app}-v1-0`]: 1 }, app);
  });

  it('without a route, reviews balances over all three versions (the Service selects every pod)', async () => {
    const s = await shares('', 300);
    assert.deepEqual(Object.keys(s).sort(), ['reviews-v1-0', 'reviews-v2-0', 'reviews-v3-0']);
  });

  it('an HTTPRoute and a VirtualService for one host: the HTTPRoute routes (istiod lists gateway-semantics routes first)', async () => {
    const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews-v2 } }] }]
`;
    assert.deepEqual(await shares(`${vs}---\n${sample('bookinfo-route-reviews-v3.yaml')}`, 50), { 'reviews-v3-0': 1 });
    assert.deepEqual(await shares(vs, 50), { 'reviews-v2-0': 1 }, 'the VirtualService alone routes');
  });
});
