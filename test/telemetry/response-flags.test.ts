/**
 * response_flags as Envoy sets them (StreamInfo response flags, joined in
 * ResponseFlagUtils order): a retriable response past the retry limit is
 * URX; a refused connection whose retries ran out is UF,URX (every reset sets
 * UF, the router adds URX); without a retry policy a refused connection is UF.
 * The caller's `x-meshlet-flags` keeps its one flag (DESIGN.md's table).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh } from '../../src/index.js';
import { joinResponseFlags } from '../../src/core/response-flags.js';
import { startServer } from '../helpers/http-servers.js';
import { calculateRoutes, calculateService, docs } from '../helpers/mesh-config.js';
import { find, parseExposition } from './exposition.js';

async function closedPort(): Promise<number> {
  const s = await startServer('gone');
  const port = s.port;
  await s.close();
  return port;
}

async function flagsOf(mesh: Awaited<ReturnType<typeof createMesh>>): Promise<Array<{ code: string; flags: string; value: number }>> {
  return find(parseExposition(await mesh.metrics()), 'istio_requests_total', { reporter: 'source' })
    .map((s) => ({ code: s.labels.response_code!, flags: s.labels.response_flags!, value: s.value }));
}

test('a 503 after every retry is URX; a 503 the route does not retry is -', async (t) => {
  let hits = 0;
  const upstream = await startServer('503', (_req, res) => {
    hits++;
    res.statusCode = 503;
    res.end('busy');
  });
  const mesh = await createMesh({ config: docs(calculateService([{ port: upstream.port, version: 'v1' }]), calculateRoutes(`
    - match: [{ uri: { prefix: /retried } }]
      retries: { attempts: 2, retryOn: '503' }
      route: [{ destination: { host: calculate } }]
    - retries: { attempts: 0 }
      route: [{ destination: { host: calculate } }]`)) });
  t.after(async () => {
    await mesh.close();
    await upstream.close();
  });
  const retried = await mesh.fetch('http://calculate:8000/retried');
  assert.equal(retried.status, 503);
  await retried.text();
  assert.equal(hits, 3, 'the first try and two retries');
  const plain = await mesh.fetch('http://calculate:8000/plain');
  assert.equal(plain.status, 503);
  await plain.text();
  assert.deepEqual((await flagsOf(mesh)).sort((a, b) => a.flags.localeCompare(b.flags)), [
    { code: '503', flags: '-', value: 1 },
    { code: '503', flags: 'URX', value: 1 },
  ]);
});

test('a refused connection: UF,URX once the retries ran out, UF without retries; x-meshlet-flags stays URX / UF', async (t) => {
  const dead = await closedPort();
  const mesh = await createMesh({ config: docs(calculateService([{ port: dead, version: 'v1' }]), calculateRoutes(`
    - match: [{ uri: { prefix: /retried } }]
      retries: { attempts: 2, retryOn: connect-failure }
      route: [{ destination: { host: calculate } }]
    - retries: { attempts: 0 }
      route: [{ destination: { host: calculate } }]`)) });
  t.after(() => mesh.close());
  const retried = await mesh.fetch('http://calculate:8000/retried');
  assert.equal(retried.status, 503);
  assert.equal(retried.headers.get('x-meshlet-flags'), 'URX');
  await retried.text();
  const once = await mesh.fetch('http://calculate:8000/once');
  assert.equal(once.status, 503);
  assert.equal(once.headers.get('x-meshlet-flags'), 'UF');
  await once.text();
  assert.deepEqual((await flagsOf(mesh)).sort((a, b) => a.flags.localeCompare(b.flags)), [
    { code: '503', flags: 'UF', value: 1 },
    { code: '503', flags: 'UF,URX', value: 1 },
  ]);
});

test('flags join in Envoy\'s order, each once', () => {
  assert.equal(joinResponseFlags([]), '-');
  assert.equal(joinResponseFlags(['URX', 'UF']), 'UF,URX');
  assert.equal(joinResponseFlags(['DI', 'UT', 'DI']), 'UT,DI');
  assert.equal(joinResponseFlags(['UC', 'URX', undefined]), 'UC,URX');
});
