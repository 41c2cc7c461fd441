// Which listeners route outbound: istiod's grpcgen listeners carry the service VIP as `address` next to their
// api_listener and are named host:port; a gateway's are bound to a port under `0.0.0.0_<port>`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URL, type Listener } from '../../src/config/envoy.js';
import { inboundListener, isGatewayListener, isHostPortName } from '../../src/core/listener-role.js';
import { compileSnapshot } from '../../src/core/snapshot.js';

const hcm = (rds: string) => ({ api_listener: { api_listener: { '@type': TYPE_URL.httpConnectionManager, rds: { route_config_name: rds, config_source: { ads: {} } }, http_filters: [] } } });
const route = (name: string, domain: string) => ({ name, virtual_hosts: [{ name, domains: [domain], routes: [{ match: { prefix: '/' }, route: { cluster: 'c' } }] }] });

test('an addressed api_listener named host:port routes outbound; 0.0.0.0_<port> is a gateway port', () => {
  const grpcgen = { name: 'reviews.default.svc.cluster.local:9080', address: { socket_address: { address: '10.96.10.2', port_value: 9080 } }, ...hcm('outbound|9080||reviews.default.svc.cluster.local') } as unknown as Listener;
  const gateway = { name: '0.0.0.0_8080', address: { socket_address: { address: '0.0.0.0', port_value: 8080 } }, ...hcm('http.8080') } as unknown as Listener;
  assert.equal(isGatewayListener(grpcgen), false);
  assert.equal(isGatewayListener(gateway), true);
  const snapshot = compileSnapshot({
    listeners: [grpcgen, gateway],
    routes: [route('outbound|9080||reviews.default.svc.cluster.local', 'reviews:9080'), route('http.8080', 'shop.example.com')] as never,
    clusters: [], endpoints: [],
  }, 'v');
  assert.equal(snapshot.virtualHost('reviews', 9080)?.routeConfig, 'outbound|9080||reviews.default.svc.cluster.local', 'grpcgen routes are outbound routes');
  assert.equal(snapshot.virtualHost('shop.example.com', 80), undefined, 'gateway routes are not');
  assert.ok(snapshot.routeTable('http.8080'), 'the gateway still finds its table');
});

test('host:port names and the inbound listener lookup', () => {
  assert.equal(isHostPortName('reviews:9080'), true);
  assert.equal(isHostPortName('reviews.default.svc.cluster.local:9080'), true);
  assert.equal(isHostPortName('0.0.0.0_8080'), false);
  assert.equal(isHostPortName('reviews'), false);
  assert.equal(isHostPortName('reviews:0'), false);
  assert.equal(isHostPortName('xds.istio.io/grpc/lds/inbound/0.0.0.0:9080'), false);
  const istiod = { name: 'xds.istio.io/grpc/lds/inbound/0.0.0.0:9080' };
  const ours = { name: 'virtual_inbound' };
  assert.equal(inboundListener([istiod]), istiod);
  assert.equal(inboundListener([istiod, ours]), ours, 'our own virtual_inbound first');
  assert.equal(inboundListener([{ name: 'reviews:9080' }]), undefined);
});
