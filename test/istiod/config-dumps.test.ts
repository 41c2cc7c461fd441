// istiod's real output, as captured in istioctl's config-dump testdata (istio/istio
// 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c istioctl/pkg/writer/envoy/configdump/testdata, copied under
// test/fixtures/istiod/istioctl/): every resource passes meshlet's xDS checks and compiles, and the fields
// istiod sets that meshlet applies (max_grpc_timeout, include_request_attempt_count) come out compiled.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Cluster, ClusterLoadAssignment, RouteConfiguration } from '../../src/config/envoy.js';
import { compileSnapshot } from '../../src/core/snapshot.js';
import { decodeAny, encodeAny } from '../../src/xds/protos.js';
import { XDS_TYPE_BY_URL, checkResource } from '../../src/xds/resources.js';
import { TYPE_URL } from '../../src/config/envoy.js';
import { fromProtoJson } from './proto-json.js';

const dump = (file: string) => JSON.parse(readFileSync(new URL(`../fixtures/istiod/istioctl/${file}`, import.meta.url), 'utf8')) as { configs: Array<Record<string, unknown>> };
/** Over the wire and back, as the ADS client receives it. */
const wire = <T>(url: string, obj: object): T => decodeAny<T>(encodeAny(url, obj));

test('istiod EDS from a real Bookinfo sidecar (istioctl endpoint config dump) passes the checks and compiles', () => {
  const configs = dump('endpoint-configdump.json').configs.flatMap((c) => (c.dynamic_endpoint_configs ?? []) as Array<{ endpoint_config: Record<string, unknown> }>);
  assert.ok(configs.length >= 30);
  const endpoints = configs.map((c) => wire<ClusterLoadAssignment>(TYPE_URL.endpoint, fromProtoJson('envoy.config.endpoint.v3.ClusterLoadAssignment', c.endpoint_config)));
  const type = XDS_TYPE_BY_URL.get(TYPE_URL.endpoint)!;
  for (const e of endpoints) assert.equal(checkResource(type, e.cluster_name, e as never), undefined, e.cluster_name);
  const clusters = endpoints.map((e): Cluster => ({ name: e.cluster_name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} }, service_name: e.cluster_name } } as Cluster));
  const snapshot = compileSnapshot({ listeners: [], routes: [], clusters, endpoints }, 'dump');
  const reviews = snapshot.clusters.get('outbound|9080||reviews.default.svc.cluster.local')!;
  assert.equal(reviews.hosts.length, 3, 'reviews v1, v2, v3 pods');
});

test('istiod RDS from a gateway (istioctl routes config dump): max_grpc_timeout and include_request_attempt_count compile', () => {
  const configs = dump('routes-k8s-gateway-configdump.json').configs.flatMap((c) => (c.dynamic_route_configs ?? []) as Array<{ route_config: Record<string, unknown> }>);
  const routes = configs.map((c) => wire<RouteConfiguration>(TYPE_URL.route, fromProtoJson('envoy.config.route.v3.RouteConfiguration', c.route_config)));
  const type = XDS_TYPE_BY_URL.get(TYPE_URL.route)!;
  for (const r of routes) assert.equal(checkResource(type, r.name, r as never), undefined, r.name);
  const snapshot = compileSnapshot({ listeners: [], routes, clusters: [], endpoints: [] }, 'dump');
  const vhost = snapshot.routeTable('http.80')!.virtualHost('httpbin.example.com', 80)!;
  assert.equal(vhost.includeAttemptCount, true);
  const route = vhost.routes[0]!;
  assert.equal(route.timeoutMs, 0);
  assert.equal(route.grpcTimeoutMs, 0, 'max_grpc_timeout 0s: the caller deadline uncapped');
});
