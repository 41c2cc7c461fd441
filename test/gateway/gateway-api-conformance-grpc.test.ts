/**
 * Core (Gateway-profile) GRPCRoute cases of the Gateway API conformance suite
 * (kubernetes-sigs/gateway-api 4564255ac2c35d582249b3cdf261bdf51c8bca32,
 * conformance/tests/grpcroute-*.yaml copied under test/fixtures/gateway-api/conformance/core/).
 * The meshlet gateway serves HTTP/1.1 only, so a real gRPC client cannot call
 * it: each case is the suite's call written as the request gRPC puts on the
 * wire (POST /<service>/<method>, content-type application/grpc, metadata as
 * headers, authority as Host), answered by loopback echo pods standing for
 * grpc-infra-backend-v1/v2/v3. What is replayed is GRPCRoute matching and
 * attachment; gRPC framing and status over HTTP/2 are not.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { registryYaml, startEchoPod, type EchoPod, type EchoReply } from '../helpers/gateway-api.js';
import { call } from './helpers.js';
import type { Gateway } from '../../src/gateway/index.js';
import { NS, startFor } from './conformance-core.js';

const SERVICE = 'gateway_api_conformance.echo_basic.grpcecho.GrpcEcho';
const g = (n: number) => `grpc-infra-backend-v${n}`;

/** A call: the method (Echo unless told), metadata, authority; expected: the backend, or none (the suite's codes.Unimplemented). */
interface GrpcCase { go: string; method?: 'Echo' | 'EchoTwo' | 'EchoThree'; metadata?: Record<string, string>; authority?: string; backend?: string }

describe('Gateway API conformance, core GRPCRoute cases, through the meshlet gateway (gRPC requests over HTTP/1.1)', () => {
  let pods: EchoPod[];
  let registry: string;
  before(async () => {
    pods = [];
    for (const n of [1, 2, 3]) pods.push(await startEchoPod(`${g(n)}-0`, NS, { app: g(n) }));
    registry = registryYaml([1, 2, 3].map((n) => ({ name: g(n), namespace: NS, ports: [{ name: 'grpc', port: 8080 }], selector: { app: g(n) } })), pods);
  });
  after(async () => {
    await Promise.all(pods.map((p) => p.server.close()));
  });

  /** The gRPC call as HTTP/1.1: POST /<service>/<method>, content-type application/grpc, metadata as headers. */
  const rpc = (gw: Gateway, path: string, c: GrpcCase) => call(gw, c.authority ?? 'example.com', path, { method: 'POST', headers: { 'content-type': 'application/grpc', te: 'trailers', ...c.metadata } });

  async function withRoute(file: string, fn: (gw: Gateway) => Promise<void>, gateway?: string): Promise<void> {
    const gw = await startFor(registry, file, gateway);
    try {
      const routes = gw.mesh.configStatus().filter((s) => s.kind === 'GRPCRoute');
      assert.ok(routes.length > 0 && routes.every((s) => s.conditions?.some((c) => c.type === 'Accepted' && c.status === 'True')), JSON.stringify(routes));
      await fn(gw);
    } finally {
      await gw.close();
    }
  }

  const replay = (file: string, cases: readonly GrpcCase[], gateway?: string) => withRoute(file, async (gw) => {
    for (const c of cases) {
      const path = `/${SERVICE}/${c.method ?? 'Echo'}`;
      const res = await rpc(gw, path, c);
      const what = `${c.go}: ${c.authority ?? ''}${path} ${JSON.stringify(c.metadata ?? {})}`;
      if (!c.backend) {
        // The suite expects codes.Unimplemented; a gRPC client maps HTTP 404 to exactly that (grpc doc/http-grpc-status-mapping.md).
        assert.equal(res.status, 404, `${what}: ${res.body}`);
        continue;
      }
      assert.equal(res.status, 200, `${what}: ${res.body}`);
      const reply = JSON.parse(res.body) as EchoReply;
      assert.ok(reply.pod.startsWith(c.backend), `${what}: backend ${reply.pod}, expected ${c.backend}`);
      assert.equal(reply.path, path, `${what}: upstream path`);
    }
  }, gateway);

  it('GRPCExactMethodMatching', () => replay('grpcroute-exact-method-matching.yaml', [
    { go: 'grpcroute-exact-method-matching.go', method: 'Echo', backend: g(1) },
    { go: 'grpcroute-exact-method-matching.go', method: 'EchoTwo', backend: g(2) },
    { go: 'grpcroute-exact-method-matching.go', method: 'EchoThree' },
  ]));

  it('GRPCRouteNamedRule: a named rule routes as an unnamed one', () => replay('grpcroute-named-rule.yaml', [
    { go: 'grpcroute-named-rule.go', method: 'Echo', backend: g(1) },
    { go: 'grpcroute-named-rule.go', method: 'EchoTwo', backend: g(2) },
  ]));

  it('GRPCRouteHeaderMatching', () => replay('grpcroute-header-matching.yaml', ([
    [{ Version: 'one' }, 1], [{ Version: 'two' }, 2], [{ Version: 'two', Color: 'orange' }, 1], [{ Version: 'two', Color: 'blue' }, 2], [{ Color: 'orange' }, 0], [{ 'Some-Other-Header': 'one' }, 0],
    [{ Color: 'blue' }, 1], [{ Color: 'green' }, 1], [{ Color: 'red' }, 2], [{ Color: 'yellow' }, 2], [{ Color: 'purple' }, 0],
  ] as const).map(([metadata, n]) => ({ go: 'grpcroute-header-matching.go', metadata, ...(n && { backend: g(n) }) }))));

  it('GRPCRouteListenerHostnameMatching', () => replay('grpcroute-listener-hostname-matching.yaml', ([
    ['bar.com', 1], ['foo.bar.com', 2], ['baz.bar.com', 3], ['boo.bar.com', 3], ['multiple.prefixes.bar.com', 3], ['multiple.prefixes.foo.com', 3], ['foo.com', 0], ['no.matching.host', 0],
  ] as const).map(([authority, n]) => ({ go: 'grpcroute-listener-hostname-matching.go', authority, ...(n && { backend: g(n) }) })), 'grpcroute-listener-hostname-matching'));

  it('GRPCRouteWeight: 70/30/0 within the suite\'s ±5 points over its 500 calls, 10 at a time (seeded)', () => withRoute('grpcroute-weight.yaml', async (gw) => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 500; i += 10) {
      const batch = await Promise.all(Array.from({ length: 10 }, async () => {
        const res = await rpc(gw, `/${SERVICE}/Echo`, { go: 'grpcroute-weight.go' });
        assert.equal(res.status, 200, res.body);
        return (JSON.parse(res.body) as EchoReply).pod.replace(/-0$/, '');
      }));
      for (const pod of batch) counts[pod] = (counts[pod] ?? 0) + 1;
    }
    assert.deepEqual(Object.keys(counts).sort(), [g(1), g(2)], JSON.stringify(counts));
    assert.ok(Math.abs(counts[g(1)]! / 500 - 0.7) <= 0.05 && Math.abs(counts[g(2)]! / 500 - 0.3) <= 0.05, JSON.stringify(counts));
  }));
});
