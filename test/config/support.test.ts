/**
 * The support table is complete and exact: every field of every schema
 * meshlet reads has an entry (its own or an ancestor's) saying applied,
 * unsupported or refused, and no entry names a field that does not exist.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kinds } from '../../src/config/istio-schemas.js';
import { SUPPORT, fieldSupport } from '../../src/config/support.js';
import { schemaLeaves, schemaPaths, supportWarnings } from '../../src/config/support-check.js';
import { admitResources } from '../../src/config/admission.js';
import { parseYaml } from '../../src/config/load.js';

test('every schema field is in the support table, and the table names only schema fields', () => {
  assert.deepEqual(Object.keys(SUPPORT).sort(), Object.keys(kinds).sort(), 'one section per kind');
  for (const [kind, { spec }] of Object.entries(kinds)) {
    const missing = schemaLeaves(spec).filter((p) => fieldSupport(kind, p) === undefined);
    assert.deepEqual(missing, [], `${kind}: fields without a support entry`);
    const paths = new Set(schemaPaths(spec));
    const stale = Object.keys(SUPPORT[kind]!.fields).filter((p) => !paths.has(p));
    assert.deepEqual(stale, [], `${kind}: entries naming no field`);
    for (const [p, entry] of Object.entries(SUPPORT[kind]!.fields)) {
      if (entry.status !== 'applied') assert.ok(entry.note, `${kind} ${p}: a field that is not applied says why`);
    }
  }
});

test('the `any`-typed fields once accepted silently are each marked', () => {
  for (const [kind, path] of [['VirtualService', 'spec.tls'], ['VirtualService', 'spec.tcp'],
    ['DestinationRule', 'spec.trafficPolicy.connectionPool.tcp.tcpKeepalive'],
    ['DestinationRule', 'spec.trafficPolicy.tunnel'], ['Telemetry', 'spec.tracing[].customTags']] as const) {
    assert.equal(fieldSupport(kind, path)?.status, 'unsupported', `${kind} ${path}`);
  }
  // Access logging is applied now (telemetry/access-log.ts).
  assert.equal(fieldSupport('Telemetry', 'spec.accessLogging[].filter.expression')?.status, 'applied');
  // localityLbSetting and corsPolicy were among them; they are applied now (translate-locality.ts, translate-cors.ts).
  assert.equal(fieldSupport('DestinationRule', 'spec.trafficPolicy.loadBalancer.localityLbSetting')?.status, 'applied');
  assert.equal(fieldSupport('VirtualService', 'spec.http[].corsPolicy')?.status, 'applied');
});

const one = (yaml: string) => {
  const { resources, statuses } = admitResources(parseYaml(yaml, 'x.yaml'), 'control-plane');
  return { resource: resources[0]!, status: statuses[0]! };
};

test('warnings name the concrete path: unsupported fields, values, gateway protocols, EnvoyFilter patches', () => {
  const dr = one(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: r, namespace: ns }
spec:
  host: r
  trafficPolicy: { loadBalancer: { simple: PASSTHROUGH }, connectionPool: { http: { h2UpgradePolicy: UPGRADE, maxRetries: 3 } } }
  subsets: [{ name: v1, labels: { v: "1" }, trafficPolicy: { loadBalancer: { warmupDurationSecs: 10s } } }]
`);
  assert.equal(dr.status.status, 'partial');
  assert.deepEqual(dr.status.warnings.map((w) => [w.path, w.code]), [
    ['spec.trafficPolicy.loadBalancer.simple', 'MESHLET_UNSUPPORTED_VALUE'],
    ['spec.trafficPolicy.connectionPool.http.h2UpgradePolicy', 'MESHLET_UNSUPPORTED_FIELD'],
    ['spec.subsets[0].trafficPolicy.loadBalancer.warmupDurationSecs', 'MESHLET_UNSUPPORTED_FIELD'],
  ]);
  const gw = one(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: g, namespace: ns }
spec: { selector: { istio: ingressgateway }, servers: [{ port: { number: 80, protocol: HTTP }, hosts: ["*"] }, { port: { number: 31400, protocol: TCP }, hosts: ["*"] }] }
`);
  assert.deepEqual(gw.status.warnings.map((w) => [w.path, w.code]), [['spec.servers[1].port.protocol', 'MESHLET_UNSUPPORTED_VALUE']]);
  const ef = one(`apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: f, namespace: ns }
spec:
  configPatches:
    - applyTo: HTTP_FILTER
      match: { context: SIDECAR_INBOUND, listener: { filterChain: { filter: { name: envoy.filters.network.http_connection_manager } } } }
      patch: { operation: INSERT_BEFORE, value: { name: envoy.filters.http.local_ratelimit, typed_config: { "@type": type.googleapis.com/udpa.type.v1.TypedStruct } } }
    - applyTo: CLUSTER
      patch: { operation: MERGE, value: { connect_timeout: 1s } }
`);
  assert.deepEqual(ef.status.warnings.map((w) => [w.path, w.code]), [['spec.configPatches[1]', 'MESHLET_UNSUPPORTED_PATCH']]);
  assert.deepEqual(supportWarnings(ef.resource, 'embedded'), ef.status.warnings);
});
