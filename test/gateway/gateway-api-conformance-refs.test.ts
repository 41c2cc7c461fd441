/**
 * Core (Gateway-profile) HTTPRoute conformance cases about references and
 * route status (kubernetes-sigs/gateway-api 4564255ac2c35d582249b3cdf261bdf51c8bca32,
 * conformance/tests/*.yaml copied under test/fixtures/gateway-api/conformance/core/):
 * ReferenceGrants, backendRefs that do not resolve, parentRefs that do not
 * attach. The conditions the Go files expect are read from
 * mesh.configStatus(); requests go through a meshlet gateway to loopback echo pods.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EchoPod } from '../helpers/gateway-api.js';
import { call } from './helpers.js';
import { baseObject, fixture, replay as replayIn, sameNamespaceGateway, startFor, startInfra, v, type Case, type ReplayOptions } from './conformance-core.js';

describe('Gateway API conformance, core HTTPRoute references and status, through the meshlet gateway', () => {
  let pods: EchoPod[];
  let registry: string;
  before(async () => {
    ({ pods, registry } = await startInfra());
  });
  after(async () => {
    await Promise.all(pods.map((p) => p.server.close()));
  });
  const replay = (file: string, cases: readonly Case[], opts: ReplayOptions = {}) => replayIn(registry, file, cases, opts);

  it('HTTPRouteReferenceGrant: a granted cross-namespace backendRef reaches web-backend', () => replay('httproute-reference-grant.yaml', [
    { go: 'httproute-reference-grant.go', path: '/', backend: 'web-backend' },
  ], { conditions: { 'reference-grant': [['Accepted', 'True', 'Accepted'], ['ResolvedRefs', 'True', 'ResolvedRefs']] } }));

  it('HTTPRouteReferenceGrant, grant deleted: 500 (the manifest without its ReferenceGrant)', async () => {
    const withoutGrant = fixture('httproute-reference-grant.yaml').split(/^---$/m).filter((d) => !d.includes('kind: ReferenceGrant')).join('---');
    await replay('httproute-reference-grant.yaml', [{ go: 'httproute-reference-grant.go', path: '/', status: 500 }], {
      manifest: withoutGrant, conditions: { 'reference-grant': [['ResolvedRefs', 'False', 'RefNotPermitted']] },
    });
  });

  it('HTTPRouteInvalidReferenceGrant: grants for the wrong namespace/group/kind/name do not permit the ref (500)', () => replay('httproute-invalid-reference-grant.yaml', [
    { go: 'httproute-invalid-reference-grant.go', path: '/', status: 500 },
  ], { conditions: { 'reference-grant': [['ResolvedRefs', 'False', 'RefNotPermitted']] } }));

  it('HTTPRoutePartiallyInvalidViaInvalidReferenceGrant: the ungranted rule answers 500, its granted sibling routes', () => replay('httproute-partially-invalid-via-invalid-reference-grant.yaml', [
    { go: 'httproute-partially-invalid-via-invalid-reference-grant.go', path: '/v2', status: 500 },
    { go: 'httproute-partially-invalid-via-invalid-reference-grant.go', path: '/', backend: 'app-backend-v1' },
  ], { conditions: { 'invalid-reference-grant': [['Accepted', 'True', 'Accepted'], ['ResolvedRefs', 'False', 'RefNotPermitted']] } }));

  it('HTTPRouteInvalidCrossNamespaceBackendRef: RefNotPermitted, 500', () => replay('httproute-invalid-cross-namespace-backend-ref.yaml', [
    { go: 'httproute-invalid-cross-namespace-backend-ref.go', path: '/', status: 500 },
  ], { conditions: { 'invalid-cross-namespace-backend-ref': [['ResolvedRefs', 'False', 'RefNotPermitted']] } }));

  it('HTTPRouteInvalidBackendRefUnknownKind: InvalidKind, 500', () => replay('httproute-invalid-backendref-unknown-kind.yaml', [
    { go: 'httproute-invalid-backendref-unknown-kind.go', path: '/v2', status: 500 },
  ], { conditions: { 'invalid-backend-ref-unknown-kind': [['ResolvedRefs', 'False', 'InvalidKind']] } }));

  it('HTTPRouteDisallowedKind: a listener for TLSRoutes only does not accept an HTTPRoute', () => replay('httproute-disallowed-kind.yaml', [], {
    gateway: 'tlsroutes-only', conditions: { 'disallowed-kind': [['Accepted', 'False', 'NotAllowedByListeners'], ['ResolvedRefs', 'True', 'ResolvedRefs']] },
  }));

  // The Gateway `backend-namespaces` admits routes from namespaces labelled gateway-conformance: backend — labels the
  // suite's base/manifests.yaml gives its v1 Namespaces, applied with it as the suite applies them.
  const namespaces = ['gateway-conformance-infra', 'gateway-conformance-web-backend', 'gateway-conformance-app-backend'].map((n) => baseObject('Namespace', n)).join('---\n');
  it('HTTPRouteCrossNamespace: a route in a namespace the listener selects by label reaches web-backend', () => replay('httproute-cross-namespace.yaml', [
    { go: 'httproute-cross-namespace.go', path: '/', backend: 'web-backend' },
  ], { gateway: 'backend-namespaces', manifest: `${namespaces}---\n${fixture('httproute-cross-namespace.yaml')}` }));

  it('HTTPRouteCrossNamespace without the Namespace documents: the selector admits nothing (Accepted=False NotAllowedByListeners)', () => replay('httproute-cross-namespace.yaml', [
    { go: 'httproute-cross-namespace.go', path: '/', status: 404 },
  ], { gateway: 'backend-namespaces', conditions: { 'cross-namespace': [['Accepted', 'False', 'NotAllowedByListeners']] } }));

  for (const [name, file, route, gateway] of [
    ['HTTPRouteInvalidParentRefNotMatchingListenerPort', 'httproute-invalid-parentref-not-matching-listener-port', 'httproute-listener-not-matching-route-port', 'same-namespace'],
    ['HTTPRouteInvalidParentRefNotMatchingSectionName', 'httproute-invalid-parentref-not-matching-section-name', 'httproute-listener-not-matching-section-name', 'same-namespace'],
    ['HTTPRouteInvalidParentRefSectionNameNotMatchingPort', 'httproute-invalid-parentref-section-name-not-matching-port', 'httproute-listener-section-name-not-matching-port', 'gateway-with-one-not-matching-port-and-section-name-route'],
  ] as const) {
    // The route does not attach and serves nothing; the reason is NoMatchingParent (no listener has that port/sectionName).
    it(`${name}: Accepted=False NoMatchingParent, and the route serves nothing`, () => replay(`${file}.yaml`, [{ go: `${file}.go`, path: '/', status: 404 }], {
      gateway, conditions: { [route]: [['Accepted', 'False', 'NoMatchingParent'], ['ResolvedRefs', 'True', 'ResolvedRefs']] },
    }));
  }

  it('HTTPRouteInvalidCrossNamespaceParentRef: a listener `from: Same` does not accept a route from another namespace', () => replay('httproute-invalid-cross-namespace-parent-ref.yaml', [
    { go: 'httproute-invalid-cross-namespace-parent-ref.go', path: '/', status: 404 },
  ], { conditions: { 'invalid-cross-namespace-parent-ref': [['Accepted', 'False', 'NotAllowedByListeners'], ['ResolvedRefs', 'True', 'ResolvedRefs']] } }));

  it('HTTPRouteOmittedBackendRefs: a rule with no (or empty) backendRefs answers 500', () => replay('httproute-omitted-backendrefs.yaml', [
    { go: 'httproute-omitted-backendrefs.go', path: '/forward', backend: v(1) },
    { go: 'httproute-omitted-backendrefs.go', path: '/omitted-no-forward', status: 500 },
    { go: 'httproute-omitted-backendrefs.go', path: '/empty-no-forward', status: 500 },
  ], { conditions: { 'omitted-backendrefs': [['Accepted', 'True', 'Accepted'], ['ResolvedRefs', 'True', 'ResolvedRefs']] } }));

  it('HTTPRouteMultipleGateways: a route shared by two Gateways serves on both, dedicated routes on their own', async () => {
    const file = 'httproute-multiple-gateways.yaml';
    const go = 'httproute-multiple-gateways.go';
    await replay(file, [{ go, path: '/shared', backend: v(1) }, { go, path: '/', backend: v(2) }], { manifest: `${baseObject('Gateway', 'all-namespaces')}---\n${fixture(file)}` });
    await replay(file, [{ go, path: '/shared', backend: v(1) }, { go, path: '/', backend: v(3) }], { gateway: 'all-namespaces', manifest: `${sameNamespaceGateway()}---\n${fixture(file)}` });
  });

  it('HTTPRouteListenerPortMatching: a parentRef port picks the listeners on that port', async () => {
    const file = 'httproute-listener-port-matching.yaml';
    const go = 'httproute-listener-port-matching.go';
    const gateway = 'httproute-listener-port-matching';
    await replay(file, [{ go, host: 'foo.com', path: '/', backend: v(1) }], { gateway });
    await replay(file, [{ go, host: 'foo.com:8080', path: '/', backend: v(2) }, { go, host: 'bar.com:8080', path: '/', backend: v(2) }], { gateway, serverPort: 8080 });
    await replay(file, [{ go, host: 'foo.com:8090', path: '/', backend: v(3) }, { go, host: 'bar.com:8090', path: '/', status: 404 }], { gateway, serverPort: 8090 });
  });

  // The routes attach by sectionName and route as the suite expects (HTTPRouteListenerHostnameMatching), and are reported applied.
  it('HTTPRouteListenerHostnameMatching: routes bound by sectionName are reported applied, without warnings', async () => {
    const gw = await startFor(registry, 'httproute-listener-hostname-matching.yaml', 'httproute-listener-hostname-matching');
    try {
      const routes = gw.mesh.configStatus().filter((s) => s.kind === 'HTTPRoute');
      assert.deepEqual(routes.map((r) => [r.name, r.status, r.warnings?.length ?? 0]), [['backend-v1', 'applied', 0], ['backend-v2', 'applied', 0], ['backend-v3', 'applied', 0]]);
    } finally {
      await gw.close();
    }
  });

  it('HTTPRouteInvalidNonExistentBackendRef: 500', async () => {
    const gw = await startFor(registry, 'httproute-invalid-nonexistent-backendref.yaml');
    try {
      assert.equal((await call(gw, 'example.com', '/')).status, 500);
      const route = gw.mesh.configStatus().find((s) => s.kind === 'HTTPRoute')!;
      assert.deepEqual(route.conditions?.filter((c) => c.type === 'ResolvedRefs').map((c) => [c.status, c.reason]), [['False', 'BackendNotFound']]);
    } finally {
      await gw.close();
    }
  });
});
