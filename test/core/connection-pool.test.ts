/**
 * Per-endpoint pool settings: max_connections from the DEFAULT circuit-breaker
 * thresholds, and HTTP protocol options from istiod's
 * typed_extension_protocol_options (pilot/pkg/networking/core/cluster_traffic_policy.go
 * applyConnectionPool, istio/istio 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c) or the
 * deprecated Cluster.common_http_protocol_options.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Cluster } from '../../src/config/envoy.js';
import { compileCircuitBreakers } from '../../src/core/circuit-breaker.js';
import { compileConnectionPool, endpointsInUse, HTTP_PROTOCOL_OPTIONS, type ConnectionPoolPolicy } from '../../src/core/connection-pool.js';
import { edsCluster } from '../helpers/envoy-resources.js';

const pool = (c: Cluster): ConnectionPoolPolicy => compileConnectionPool(c, compileCircuitBreakers(c));

/** What istiod writes for `connectionPool.http: { idleTimeout, maxRequestsPerConnection }` and `tcp.maxConnectionDuration`. */
const istiodOptions = (common: Record<string, unknown>): Partial<Cluster> => ({
  typed_extension_protocol_options: {
    [HTTP_PROTOCOL_OPTIONS]: {
      '@type': `type.googleapis.com/${HTTP_PROTOCOL_OPTIONS}`,
      common_http_protocol_options: common,
      use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} },
    },
  },
});

describe('compileConnectionPool', () => {
  it("defaults: Envoy's 1024 connections, unlimited requests per connection, no idle timeout or duration", () => {
    const p = pool(edsCluster('c'));
    assert.equal(p.maxConnections, 1024);
    assert.equal(p.maxRequestsPerConnection, 0);
    assert.equal(p.idleTimeoutMs, undefined);
    assert.equal(p.maxConnectionDurationMs, undefined);
  });

  it('max_connections comes from the DEFAULT priority thresholds, not HIGH', () => {
    const p = pool(edsCluster('c', { circuit_breakers: { thresholds: [{ priority: 'HIGH', max_connections: { value: 1 } }, { max_connections: { value: 7 } }] } }));
    assert.equal(p.maxConnections, 7);
  });

  it("istiod's typed_extension_protocol_options HttpProtocolOptions", () => {
    const p = pool(edsCluster('c', istiodOptions({ idle_timeout: { seconds: 30 }, max_requests_per_connection: { value: 10 }, max_connection_duration: { seconds: 600 } })));
    assert.equal(p.idleTimeoutMs, 30_000);
    assert.equal(p.maxRequestsPerConnection, 10);
    assert.equal(p.maxConnectionDurationMs, 600_000);
  });

  it('the deprecated Cluster.common_http_protocol_options, and typed options win over it', () => {
    const legacy = { common_http_protocol_options: { idle_timeout: { seconds: 5 }, max_requests_per_connection: { value: 2 } } };
    assert.equal(pool(edsCluster('c', legacy)).idleTimeoutMs, 5000);
    assert.equal(pool(edsCluster('c', legacy)).maxRequestsPerConnection, 2);
    const both = pool(edsCluster('c', { ...legacy, ...istiodOptions({ idle_timeout: { seconds: 9 } }) }));
    assert.equal(both.idleTimeoutMs, 9000);
  });

  it('the deprecated Cluster.max_requests_per_connection; a uint32 that arrives as a string', () => {
    assert.equal(pool({ ...edsCluster('c'), max_requests_per_connection: { value: 3 } } as Cluster).maxRequestsPerConnection, 3);
    assert.equal(pool(edsCluster('c', istiodOptions({ max_requests_per_connection: { value: '4' } }))).maxRequestsPerConnection, 4);
  });

  it('an idle_timeout or max_connection_duration of 0 disables it (HttpProtocolOptions doc)', () => {
    const p = pool(edsCluster('c', istiodOptions({ idle_timeout: { seconds: 0 }, max_connection_duration: { seconds: 0 } })));
    assert.equal(p.idleTimeoutMs, undefined);
    assert.equal(p.maxConnectionDurationMs, undefined);
  });

  it('the key tells different settings apart and is equal for equal settings; the policy is frozen', () => {
    const a = pool(edsCluster('a', istiodOptions({ idle_timeout: { seconds: 30 } })));
    const b = pool(edsCluster('b', istiodOptions({ idle_timeout: { seconds: 30 } })));
    const c = pool(edsCluster('c', istiodOptions({ idle_timeout: { seconds: 31 } })));
    assert.equal(a.key, b.key);
    assert.notEqual(a.key, c.key);
    assert.notEqual(pool(edsCluster('d')).key, pool(edsCluster('e', { circuit_breakers: { thresholds: [{ max_connections: { value: 2 } }] } })).key);
    assert.ok(Object.isFrozen(a));
  });
});

describe('endpointsInUse', () => {
  const cluster = (key: string, ...ids: string[]) => ({ hosts: ids.map((id) => ({ id })), connectionPool: { key } as ConnectionPoolPolicy });

  it('every endpoint with the pool keys of the clusters that hold it', () => {
    const live = endpointsInUse([cluster('k1', '10.0.0.1:80', '10.0.0.2:80'), cluster('k2', '10.0.0.2:80'), cluster('k1', '10.0.0.1:80')], new Set(['10.0.0.1:80', '10.0.0.2:80']));
    assert.deepEqual([...live.keys()].sort(), ['10.0.0.1:80', '10.0.0.2:80']);
    assert.deepEqual([...live.get('10.0.0.1:80')!], ['k1']);
    assert.deepEqual([...live.get('10.0.0.2:80')!].sort(), ['k1', 'k2']);
  });

  it('only the endpoints asked about are recorded: a swap of many hosts allocates for the pools held', () => {
    const many = cluster('k1', ...Array.from({ length: 10_000 }, (_, i) => `10.1.${i >> 8}.${i & 255}:80`));
    const live = endpointsInUse([many], new Set(['10.1.0.7:80', '10.9.9.9:80']));
    assert.deepEqual([...live.keys()], ['10.1.0.7:80']);
  });

  it('no clusters, or clusters without hosts: nothing in use', () => {
    assert.equal(endpointsInUse([], new Set(['10.0.0.1:80'])).size, 0);
    assert.equal(endpointsInUse([cluster('k')], new Set(['10.0.0.1:80'])).size, 0);
  });
});
