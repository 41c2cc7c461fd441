// The names each type subscribes to in another (gRFC A27): routes from listeners, clusters from routes and
// filters, endpoints from clusters; and istiod's inbound listener names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URL } from '../../src/config/envoy.js';
import { clusterNamesOf, neededNames, serverListenerName, DEFAULT_SERVER_LISTENER_TEMPLATE } from '../../src/xds/subscriptions.js';

test('cluster names come from routes, weighted clusters, mirrors and rate-limit services', () => {
  const listeners = [{
    name: 'a:80',
    api_listener: { api_listener: { '@type': TYPE_URL.httpConnectionManager, rds: { route_config_name: 'a:80' }, http_filters: [
      { name: 'envoy.filters.http.ratelimit', typed_config: { '@type': TYPE_URL.rateLimit, rate_limit_service: { grpc_service: { envoy_grpc: { cluster_name: 'outbound|8081||ratelimit' } } } } },
    ] } },
  }];
  const routes = [{ name: 'a:80', virtual_hosts: [{ name: 'a', domains: ['a'], routes: [
    { match: { prefix: '/w' }, route: { weighted_clusters: { clusters: [{ name: 'outbound|80|v1|a', weight: { value: 1 } }, { name: 'outbound|80|v2|a', weight: { value: 1 } }] } } },
    { match: { prefix: '/' }, route: { cluster: 'outbound|80||a', request_mirror_policies: [{ cluster: 'outbound|80||shadow' }] } },
  ] }] }];
  assert.deepEqual(clusterNamesOf(listeners as never, routes as never), ['outbound|80|v1|a', 'outbound|80|v2|a', 'outbound|80||a', 'outbound|80||shadow', 'outbound|8081||ratelimit'].sort());
  const needed = neededNames(listeners as never, routes as never, [{ name: 'outbound|80||a', type: 'EDS', eds_cluster_config: { service_name: 'eds-a' } }, { name: 'static', type: 'STATIC' }] as never);
  assert.deepEqual(needed.routes, ['a:80']);
  assert.deepEqual(needed.endpoints, ['eds-a']);
});

test('inbound listener names from the server_listener_resource_name_template', () => {
  assert.equal(serverListenerName(DEFAULT_SERVER_LISTENER_TEMPLATE, '0.0.0.0', 9080), 'xds.istio.io/grpc/lds/inbound/0.0.0.0:9080');
  assert.equal(serverListenerName(DEFAULT_SERVER_LISTENER_TEMPLATE, '::', 9080), 'xds.istio.io/grpc/lds/inbound/[::]:9080');
  assert.equal(serverListenerName('grpc/server?xds.resource.listening_address=%s', '10.0.0.1', 50051), 'grpc/server?xds.resource.listening_address=10.0.0.1:50051');
});
