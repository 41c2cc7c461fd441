/**
 * Inbound local rate limit through the real middleware: the meshlet
 * RateLimit kind (workloadSelector) and Istio's documented EnvoyFilter, both
 * shared by the Express and Fastify adapters of one mesh, answered 429 with
 * `x-meshlet-flags: RL`, recorded in metrics and as a span event.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind } from '@opentelemetry/api';
import express from 'express';
import Fastify from 'fastify';
import { request } from 'undici';
import { createMesh, type Mesh } from '../../src/mesh.js';
import { expressMiddleware } from '../../src/http/express.js';
import { fastifyPlugin } from '../../src/http/fastify.js';
import { find, parseExposition } from '../telemetry/exposition.js';
import { applyWithInbound, listen, listenFastify, memoryTracing } from './setup.js';

const rateLimit = (maxTokens: number, labels = 'app: calculate') => `
apiVersion: meshlet.dev/v1alpha1
kind: RateLimit
metadata: { name: calculate-inbound, namespace: default }
spec:
  workloadSelector: { matchLabels: { ${labels} } }
  local:
    tokenBucket: { maxTokens: ${maxTokens}, tokensPerFill: ${maxTokens}, fillInterval: 60s }
`;

/** Istio's local rate limit recipe (istio.io "Enabling Rate Limits using Envoy", local, per workload), unchanged. */
const istioEnvoyFilter = `
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: filter-local-ratelimit-svc
  namespace: istio-system
spec:
  workloadSelector:
    labels:
      app: calculate
  configPatches:
    - applyTo: HTTP_FILTER
      match:
        context: SIDECAR_INBOUND
        listener:
          filterChain:
            filter:
              name: "envoy.filters.network.http_connection_manager"
      patch:
        operation: INSERT_BEFORE
        value:
          name: envoy.filters.http.local_ratelimit
          typed_config:
            "@type": type.googleapis.com/udpa.type.v1.TypedStruct
            type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
            value:
              stat_prefix: http_local_rate_limiter
              token_bucket:
                max_tokens: 4
                tokens_per_fill: 4
                fill_interval: 60s
              filter_enabled:
                runtime_key: local_rate_limit_enabled
                default_value:
                  numerator: 100
                  denominator: HUNDRED
              filter_enforced:
                runtime_key: local_rate_limit_enforced
                default_value:
                  numerator: 100
                  denominator: HUNDRED
              response_headers_to_add:
                - append: false
                  header:
                    key: x-local-rate-limit
                    value: 'true'
`;

const { exporter, tracerProvider } = memoryTracing();
let mesh: Mesh;
let expressPort = 0, fastifyPort = 0;
let handled = 0;
const closers: Array<() => Promise<void>> = [];

before(async () => {
  mesh = await createMesh({ workload: { name: 'calculate-v1', namespace: 'default', labels: { app: 'calculate', version: 'v1' } }, tracerProvider });
  const app = express();
  app.use(expressMiddleware(mesh));
  app.get('/calculate', (_req, res) => {
    handled++;
    res.send('ok');
  });
  const e = await listen(app);
  const f = Fastify();
  await f.register(fastifyPlugin(mesh));
  f.get('/calculate', async () => {
    handled++;
    return 'ok';
  });
  const fs = await listenFastify(f);
  expressPort = e.port;
  fastifyPort = fs.port;
  closers.push(e.close, fs.close);
});

after(async () => {
  for (const close of closers) await close();
  await mesh.close();
});

async function get(port: number) {
  const res = await request(`http://127.0.0.1:${port}/calculate`);
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

test('RateLimit 5 per minute with workloadSelector: the 6th request gets 429 RL, across Express and Fastify', async () => {
  await applyWithInbound(mesh, rateLimit(5));
  exporter.reset();
  handled = 0;
  const results = [];
  for (let i = 0; i < 6; i++) results.push(await get(i % 2 === 0 ? expressPort : fastifyPort));
  assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200, 200, 429]);
  assert.equal(handled, 5, 'the app never saw the limited request');
  assert.deepEqual(results.slice(0, 5).map((r) => r.headers['x-ratelimit-remaining']), ['4', '3', '2', '1', '0']);
  const limited = results[5]!;
  assert.equal(limited.headers['x-meshlet-flags'], 'RL');
  assert.equal(limited.headers['x-ratelimit-limit'], '5');
  assert.equal(limited.headers['x-ratelimit-remaining'], '0');
  assert.equal(limited.body, 'local_rate_limited');

  await new Promise((r) => setTimeout(r, 20));
  const samples = parseExposition(await mesh.metrics());
  const rl = find(samples, 'istio_requests_total', { reporter: 'destination', response_code: '429', response_flags: 'RL', destination_workload: 'calculate-v1' });
  assert.equal(rl[0]?.value, 1);
  const ok = find(samples, 'istio_requests_total', { reporter: 'destination', response_code: '200', response_flags: '-' });
  assert.equal(ok.reduce((n, s) => n + s.value, 0), 5);

  const servers = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER);
  const rejected = servers.filter((s) => s.events.some((e) => e.name === 'meshlet.ratelimit.rejected'));
  assert.equal(rejected.length, 1);
  assert.equal(rejected[0]!.attributes['http.response.status_code'], 429);
  assert.equal(rejected[0]!.attributes['meshlet.flags'], 'RL');
  assert.equal(rejected[0]!.events[0]!.attributes?.['meshlet.ratelimit.name'], 'ratelimit.default.calculate-inbound');
});

test('the bucket survives a config push that keeps the policy, and restarts when it changes', async () => {
  await applyWithInbound(mesh, rateLimit(5));
  assert.equal((await get(expressPort)).status, 429, 'same policy, new snapshot: still empty');
  await applyWithInbound(mesh, rateLimit(6));
  assert.equal((await get(fastifyPort)).status, 200, 'new policy: a new, full bucket');
});

test('a RateLimit selecting other workloads does not apply', async () => {
  await applyWithInbound(mesh, rateLimit(1, 'app: db'));
  for (let i = 0; i < 3; i++) assert.equal((await get(expressPort)).status, 200);
});

test("Istio's documented local rate limit EnvoyFilter is accepted unchanged: the 5th of 4/min gets 429", async () => {
  await applyWithInbound(mesh, istioEnvoyFilter);
  const statuses = [];
  let last;
  for (let i = 0; i < 5; i++) {
    last = await get(i % 2 === 0 ? fastifyPort : expressPort);
    statuses.push(last.status);
  }
  assert.deepEqual(statuses, [200, 200, 200, 200, 429]);
  assert.equal(last!.headers['x-local-rate-limit'], 'true');
  assert.equal(last!.headers['x-meshlet-flags'], 'RL');
  assert.equal(last!.headers['x-ratelimit-limit'], undefined, 'the recipe does not enable x-ratelimit headers');
});
