// RouteAction timeouts as Envoy's router reads them (route_components.proto): timeout, max_stream_duration
// (istiod's proxyless output), grpc_timeout_header_max, and the deprecated max_grpc_timeout (istiod's sidecars).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { routeTimeouts } from '../../src/core/route.js';

const d = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });

test('route timeouts: timeout, max_stream_duration, max_grpc_timeout, grpc_timeout_header_max', () => {
  assert.deepEqual(routeTimeouts(undefined), { http: 0, grpcWithDeadline: 0, grpcWithoutDeadline: 0 });
  // istiod, proxyless: timeout and max_stream_duration both the VirtualService timeout
  assert.deepEqual(routeTimeouts({ timeout: d(500), max_stream_duration: { max_stream_duration: d(500) } }), { http: 500, grpcWithDeadline: 500, grpcWithoutDeadline: 500 });
  // the smaller bound wins; 0 is no bound
  assert.deepEqual(routeTimeouts({ timeout: d(2000), max_stream_duration: { max_stream_duration: d(300) } }), { http: 300, grpcWithDeadline: 300, grpcWithoutDeadline: 300 });
  assert.deepEqual(routeTimeouts({ timeout: d(0), max_stream_duration: { max_stream_duration: d(300) } }), { http: 300, grpcWithDeadline: 300, grpcWithoutDeadline: 300 });
  // istiod, sidecar: max_grpc_timeout 0 = the grpc-timeout header uncapped (no route timeout for gRPC)
  assert.deepEqual(routeTimeouts({ timeout: d(0), max_grpc_timeout: d(0) }), { http: 0, grpcWithDeadline: 0, grpcWithoutDeadline: 0 });
  // max_grpc_timeout replaces timeout for gRPC only
  assert.deepEqual(routeTimeouts({ timeout: d(1000), max_grpc_timeout: d(4000) }), { http: 1000, grpcWithDeadline: 4000, grpcWithoutDeadline: 4000 });
  // grpc_timeout_header_max replaces max_stream_duration when the caller sent a deadline; 0 = uncapped
  assert.deepEqual(routeTimeouts({ max_stream_duration: { max_stream_duration: d(300), grpc_timeout_header_max: d(0) } }), { http: 300, grpcWithDeadline: 0, grpcWithoutDeadline: 300 });
  assert.deepEqual(routeTimeouts({ max_stream_duration: { max_stream_duration: d(300), grpc_timeout_header_max: d(900) } }), { http: 300, grpcWithDeadline: 900, grpcWithoutDeadline: 300 });
});
