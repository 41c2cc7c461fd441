// Envoy RBAC semantics (rbac.proto) compiled by core/rbac and run as an inbound filter (core/rbac-filter),
// and the inbound listener's mTLS mode per port (core/inbound-listener).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TYPE_URL, type EnvoyResources, type Listener } from '../../src/config/envoy.js';
import { translateInbound } from '../../src/config/translate-inbound.js';
import { InboundPolicyCompiler, validateInboundPolicy, type InboundRequestView } from '../../src/core/inbound-policy.js';
import { inboundListenersOf } from '../../src/core/inbound-listener.js';
import { RBAC_TYPE_URL, compileRbac, rbacDenies, type RbacFilterConfig, type RbacRequest } from '../../src/core/rbac.js';
import { MeshConfigError } from '../../src/errors.js';
import { normalize } from '../../src/xds/protos.js';

function request(over: Partial<RbacRequest> & { headers?: Record<string, string> } = {}): RbacRequest {
  const { headers = {}, ...rest } = over;
  return { path: '/', sourcePrincipal: undefined, sourceIp: '10.0.0.1', header: (n) => headers[n], ...rest };
}

const rules = (action: 'ALLOW' | 'DENY' | 'LOG', policies: RbacFilterConfig['rules'] extends infer R ? R extends { policies?: infer P } ? P : never : never) =>
  compileRbac({ rules: { action, policies } }, 'test').rules!;

test('a policy needs one matching permission AND one matching principal; ALLOW denies what matches nothing', () => {
  const r = rules('ALLOW', {
    b: { permissions: [{ url_path: { path: { prefix: '/api' } } }], principals: [{ authenticated: { principal_name: { exact: 'spiffe://td/ns/a/sa/x' } } }] },
  });
  assert.equal(rbacDenies(r, request({ path: '/api/1', sourcePrincipal: 'spiffe://td/ns/a/sa/x' })), undefined);
  assert.equal(rbacDenies(r, request({ path: '/api/1' })), 'none', 'no peer certificate: authenticated never matches');
  assert.equal(rbacDenies(r, request({ path: '/web', sourcePrincipal: 'spiffe://td/ns/a/sa/x' })), 'none');
});

test('DENY reports the first matching policy by name (Envoy keeps policies sorted)', () => {
  const any = { permissions: [{ any: true }], principals: [{ any: true }] };
  const r = rules('DENY', { 'ns[b]-policy[z]-rule[0]': any, 'ns[a]-policy[y]-rule[0]': any });
  assert.equal(rbacDenies(r, request()), 'ns[a]-policy[y]-rule[0]');
  assert.equal(rbacDenies(rules('LOG', { x: any }), request()), undefined, 'LOG never denies');
});

test('permission and principal kinds Istio emits', () => {
  const cases: Array<[RbacFilterConfig, RbacRequest, boolean]> = [];
  const allow = (permissions: unknown[], principals: unknown[] = [{ any: true }]): RbacFilterConfig => ({ rules: { policies: { p: { permissions, principals } as never } } });
  cases.push(
    [allow([{ header: { name: ':method', string_match: { exact: 'GET' } } }]), request({ headers: { ':method': 'GET' } }), true],
    [allow([{ not_rule: { header: { name: 'x-a', present_match: true } } }]), request({ headers: { 'x-a': '' } }), false],
    [allow([{ and_rules: { rules: [{ destination_port: 8080 }, { destination_ip: { address_prefix: '127.0.0.0', prefix_len: { value: 8 } } }] } }]), request({ destinationPort: 8080, destinationIp: '127.0.0.1' }), true],
    [allow([{ or_rules: { rules: [{ destination_port: 1 }, { requested_server_name: { suffix: '.svc' } }] } }]), request({ requestedServerName: 'a.svc' }), true],
    [allow([{ any: true }], [{ direct_remote_ip: { address_prefix: '10.0.0.0', prefix_len: 8 } }]), request({ sourceIp: '::ffff:10.9.9.9' }), true],
    [allow([{ any: true }], [{ remote_ip: { address_prefix: '1.2.3.4', prefix_len: { value: 32 } } }]), request({ remoteIp: '1.2.3.4', sourceIp: '10.0.0.1' }), true],
    [allow([{ any: true }], [{ not_id: { authenticated: {} } }]), request(), true],
    [allow([{ any: true }], [{ or_ids: { ids: [{ authenticated: { principal_name: { safe_regex: { regex: '.*/ns/foo/.*' } } } }] } }]), request({ sourcePrincipal: 'spiffe://td/ns/foo/sa/b' }), true],
    [allow([{ any: true }], [{ header: { name: 'x-user', string_match: { prefix: 'adm' } } }]), request({ headers: { 'x-user': 'bob' } }), false],
    [allow([{ metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.principal' }], value: { string_match: { exact: 'a/b' } } } }]), request(), false],
  );
  for (const [config, req, allowed] of cases) {
    const compiled = compileRbac(config, 'test').rules!;
    assert.equal(rbacDenies(compiled, req) === undefined, allowed, JSON.stringify(config.rules?.policies));
  }
});

test('matchers meshlet cannot evaluate, bad regexes and CIDRs are refused with the field path', () => {
  const bad: Array<[unknown, RegExp, RegExp]> = [
    [{ permissions: [{ uri_template: { path_template: '/{a}' } }], principals: [{ any: true }] }, /permissions\[0\]$/, /not supported/],
    [{ permissions: [{ any: true }], principals: [{ filter_state: { key: 'io.istio.peer_principal' } }] }, /principals\[0\]$/, /not supported/],
    [{ permissions: [{ url_path: { path: { safe_regex: { regex: '(' } } } }], principals: [{ any: true }] }, /url_path\.path\.safe_regex\.regex$/, /./],
    [{ permissions: [{ any: true }], principals: [{ direct_remote_ip: { address_prefix: 'nope', prefix_len: 8 } }] }, /direct_remote_ip\.address_prefix$/, /IP/],
    [{ permissions: [], principals: [{ any: true }] }, /\.permissions$/, /at least one/],
  ];
  for (const [policy, path, reason] of bad) {
    assert.throws(() => compileRbac({ rules: { policies: { p: policy as never } } }, 'inbound'), (e: unknown) => {
      assert.ok(e instanceof MeshConfigError);
      assert.equal(e.kind, 'Listener');
      assert.match(e.path, path);
      assert.match(e.reason, reason);
      return true;
    });
  }
});

const view = (over: Partial<InboundRequestView> = {}): InboundRequestView => ({
  method: 'GET', path: '/', header: () => undefined, sourcePrincipal: undefined, sourceIp: '127.0.0.1',
  setRequestHeader() {}, addResponseHeader() {}, ...over,
});
const resourcesWith = (...listeners: Listener[]): EnvoyResources => ({ listeners, routes: [], clusters: [], endpoints: [] });

test('RBAC filters by type, whatever their name: local reply as Envoy, shadow rules never enforced', () => {
  const listener = translateInbound([], { name: 'w', namespace: 'default', labels: {} });
  const hcm = (listener.filter_chains as Array<{ filters: Array<{ typed_config: { http_filters: unknown[] } }> }>)[0]!.filters[0]!.typed_config;
  const denyAdmin = { permissions: [{ url_path: { path: { prefix: '/admin' } } }], principals: [{ any: true }] };
  hcm.http_filters.unshift(
    { name: 'any-name', typed_config: { '@type': RBAC_TYPE_URL, rules: { action: 'DENY', policies: { 'ns[d]-policy[deny-admin]-rule[0]': denyAdmin } } } },
    { name: 'dry-run', typed_config: { '@type': RBAC_TYPE_URL, shadow_rules: { action: 'DENY', policies: { all: { permissions: [{ any: true }], principals: [{ any: true }] } } } } },
  );
  const resources = resourcesWith(normalize(TYPE_URL.listener, listener));
  validateInboundPolicy(resources);
  const policy = new InboundPolicyCompiler().forSnapshot({ resources });
  assert.equal(policy.authorization.length, 1, 'a shadow-only RBAC filter never denies');
  const logged: unknown[] = [];
  assert.equal(policy.decodeHeaders(view({ path: '/home', rbacLog: (e) => void logged.push(e) })), undefined);
  assert.deepEqual(logged, [{ policy: 'all', action: 'DENY', shadow: true }], 'the dry-run match is reported');
  assert.deepEqual(policy.decodeHeaders(view({ path: '/admin/x' })), {
    status: 403, flags: 'RBAC', details: 'rbac_access_denied_matched_policy[ns[d]-policy[deny-admin]-rule[0]]', body: 'RBAC: access denied', headers: [], source: 'd/deny-admin',
  });
});

test('mTLS mode from filter chains: STRICT, PERMISSIVE (both chains), DISABLE, port-level chains first', () => {
  const pa = (spec: string) => ({ kind: 'PeerAuthentication', metadata: { name: 'p', namespace: 'default' }, spec: JSON.parse(spec) as object });
  const modes = (spec: string) => {
    const l = normalize(TYPE_URL.listener, translateInbound([pa(spec)] as never, { name: 'w', namespace: 'default', labels: { app: 'w' } }));
    const names = (l.filter_chains as Array<{ name: string }>).map((c) => c.name);
    const listeners = inboundListenersOf(resourcesWith(l));
    return { names, default: listeners.modeFor(undefined), p8080: listeners.modeFor(8080), p9090: listeners.modeFor(9090) };
  };
  assert.deepEqual(modes('{"mtls":{"mode":"STRICT"}}'), { names: ['inbound-mtls'], default: 'STRICT', p8080: 'STRICT', p9090: 'STRICT' });
  assert.deepEqual(modes('{"mtls":{"mode":"DISABLE"}}'), { names: ['inbound-plaintext'], default: 'DISABLE', p8080: 'DISABLE', p9090: 'DISABLE' });
  assert.deepEqual(modes('{}'), { names: ['inbound-mtls', 'inbound-plaintext'], default: 'PERMISSIVE', p8080: 'PERMISSIVE', p9090: 'PERMISSIVE' });
  assert.deepEqual(modes('{"selector":{"matchLabels":{"app":"w"}},"mtls":{"mode":"STRICT"},"portLevelMtls":{"8080":{"mode":"DISABLE"}}}'),
    { names: ['inbound-plaintext-8080', 'inbound-mtls'], default: 'STRICT', p8080: 'DISABLE', p9090: 'STRICT' });
});

test('inbound chains meshlet cannot serve are refused, not skipped', () => {
  const listener = normalize(TYPE_URL.listener, translateInbound([], { name: 'w', namespace: 'default', labels: {} }));
  const chains = listener.filter_chains as Array<{ transport_socket?: { typed_config: { require_client_certificate?: unknown } }; filters: Array<{ typed_config: { http_filters: unknown[] } }> }>;
  const tlsOnly = structuredClone(listener);
  (tlsOnly.filter_chains as typeof chains).splice(1, 1);
  delete (tlsOnly.filter_chains as typeof chains)[0]!.transport_socket!.typed_config.require_client_certificate;
  assert.throws(() => validateInboundPolicy(resourcesWith(tlsOnly)), (e: unknown) => e instanceof MeshConfigError && /require_client_certificate$/.test(e.path));
  const differing = structuredClone(listener);
  (differing.filter_chains as typeof chains)[1]!.filters[0]!.typed_config.http_filters.unshift({ name: 'envoy.filters.http.rbac', typed_config: { '@type': RBAC_TYPE_URL } });
  assert.throws(() => validateInboundPolicy(resourcesWith(differing)), (e: unknown) => e instanceof MeshConfigError && /same HTTP filters/.test(e.reason));
});

test('RBACPerRoute overrides the filter on the inbound route (no rbac: off); LOG policies are reported, never enforced', () => {
  const listener = translateInbound([], { name: 'w', namespace: 'default', labels: {} });
  const hcm = (listener.filter_chains as Array<{ filters: Array<{ typed_config: { http_filters: unknown[]; route_config: { virtual_hosts: Array<{ routes: Array<{ typed_per_filter_config?: Record<string, unknown> }> }> } } }> }>)[0]!.filters[0]!.typed_config;
  const all = { permissions: [{ any: true }], principals: [{ any: true }] };
  hcm.http_filters.unshift(
    { name: 'audit', typed_config: { '@type': RBAC_TYPE_URL, rules: { action: 'LOG', policies: { 'ns[d]-policy[audit]-rule[0]': all } } } },
    { name: 'deny-all', typed_config: { '@type': RBAC_TYPE_URL, rules: { action: 'DENY', policies: { all } } } },
  );
  const logged: unknown[] = [];
  const before = new InboundPolicyCompiler().forSnapshot({ resources: resourcesWith(structuredClone(listener)) });
  assert.equal(before.decodeHeaders(view({ rbacLog: (e) => void logged.push(e) }))?.status, 403);
  assert.deepEqual(logged, [{ policy: 'ns[d]-policy[audit]-rule[0]', action: 'LOG', shadow: false }]);
  hcm.route_config.virtual_hosts[0]!.routes[0]!.typed_per_filter_config = { 'deny-all': { '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute' } };
  const after = new InboundPolicyCompiler().forSnapshot({ resources: resourcesWith(normalize(TYPE_URL.listener, listener)) });
  assert.equal(after.decodeHeaders(view()), undefined, 'RBACPerRoute without rbac disables the filter on the route');
});

test('RBAC configs that would be enforced wrongly if half-read are refused: the matcher API, CEL conditions', () => {
  assert.throws(() => compileRbac({ matcher: {} } as never, 'l'), (e: unknown) => e instanceof MeshConfigError && e.path === 'typed_config.matcher');
  assert.throws(() => compileRbac({ rules: { policies: { p: { permissions: [{ any: true }], principals: [{ any: true }], condition: {} } as never } } }, 'l'),
    (e: unknown) => e instanceof MeshConfigError && e.path === "typed_config.rules.policies['p'].condition");
});

test('an inbound listener is found whatever its name: gRFC A36 shape (no api_listener, non_forwarding_action route)', () => {
  const l = normalize(TYPE_URL.listener, translateInbound([{ kind: 'PeerAuthentication', metadata: { name: 'p', namespace: 'default' }, spec: { mtls: { mode: 'STRICT' } } }] as never, { name: 'w', namespace: 'default', labels: {} }));
  const renamed = { ...l, name: 'custom/template/10.0.0.1:8080', address: { socket_address: { address: '10.0.0.1', port_value: 8080 } } } as Listener;
  assert.equal(inboundListenersOf(resourcesWith(renamed)).modeFor(8080), 'STRICT');
  const outbound = { name: 'calc:80', address: { socket_address: { address: '10.0.0.2', port_value: 80 } }, api_listener: { api_listener: {} } } as unknown as Listener;
  assert.equal(inboundListenersOf(resourcesWith(outbound)).empty, true);
});
