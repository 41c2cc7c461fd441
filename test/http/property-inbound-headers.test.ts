// Property: hostile trace and metadata-exchange headers (traceparent, b3,
// x-b3-*, x-envoy-peer-metadata) never break an inbound request: through
// mesh.express() behind mesh.createServer and through a bare
// mesh.createServer, every request is answered by the app (200), the
// metadata headers never reach it, and /metrics still renders. The corpus
// (fuzz-corpus/headers) is replayed first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { createMesh, type Mesh } from '../../src/index.js';
import { corpus, fuzzParameters } from '../helpers/fuzz.js';

const Struct = protobuf.Root.fromJSON(protobuf.common.get('google/protobuf/struct.proto')!).lookupType('google.protobuf.Struct');

/** Characters node's HTTP client lets through in a header value (no CR, LF or NUL). */
const headerChar = fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.constant(0x09), fc.integer({ min: 0x80, max: 0xff })).map((c) => String.fromCharCode(c));
const headerText = (max: number) => fc.array(headerChar, { maxLength: max }).map((cs) => cs.join(''));
const hex = (n: number) => fc.array(fc.constantFrom(...'0123456789abcdefABCDEF-'), { minLength: 0, maxLength: n }).map((cs) => cs.join(''));

/** A google.protobuf.Struct of random shape (nesting, lists, odd types), base64: what a lying peer can send. */
const structValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' },
    fc.record({ stringValue: headerText(40) }), fc.record({ numberValue: fc.double() }), fc.record({ boolValue: fc.boolean() }),
    fc.record({ nullValue: fc.constant(0) }),
    fc.record({ listValue: fc.record({ values: fc.array(tie('value'), { maxLength: 3 }) }) }),
    fc.record({ structValue: tie('struct') })),
  struct: fc.record({ fields: fc.dictionary(fc.constantFrom('NAME', 'NAMESPACE', 'LABELS', 'WORKLOAD_NAME', 'CLUSTER_ID', 'app', 'version', 'x'), tie('value'), { maxKeys: 4 }) }),
})).struct;
const peerMetadata = fc.oneof(
  structValue.map((s) => Buffer.from(Struct.encode(Struct.fromObject(s as object)).finish()).toString('base64')),
  fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('base64')),
  headerText(64),
);

const hostileHeaders = fc.record({
  traceparent: fc.oneof(headerText(80), fc.tuple(hex(3), hex(33), hex(17), hex(3)).map((p) => p.join('-'))),
  tracestate: headerText(80),
  b3: fc.oneof(headerText(80), fc.tuple(hex(33), hex(17), fc.constantFrom('0', '1', 'd', 'x', ''), hex(17)).map((p) => p.join('-'))),
  'x-b3-traceid': hex(40),
  'x-b3-spanid': hex(20),
  'x-b3-parentspanid': hex(20),
  'x-b3-sampled': fc.constantFrom('0', '1', 'true', 'd', '', 'x'),
  'x-b3-flags': fc.constantFrom('1', '0', 'x'),
  'x-envoy-peer-metadata': peerMetadata,
  'x-envoy-peer-metadata-id': headerText(40),
}, { requiredKeys: [] });

function get(port: number, agent: Agent, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function listen(mesh: Mesh, withExpress: boolean): Promise<{ port: number; close(): Promise<void> }> {
  // The app reports whether a metadata-exchange header reached it (it must not, behind express()).
  const answer = (headers: Record<string, unknown>) => (headers['x-envoy-peer-metadata'] === undefined ? 'ok' : 'leaked');
  let server;
  if (withExpress) {
    const app = express();
    app.use(mesh.express());
    app.get('/', (req, res) => void res.end(answer(req.headers)));
    server = mesh.createServer(app);
  } else {
    server = mesh.createServer((_req, res) => res.end('ok'));
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

test('hostile trace and peer-metadata headers through mesh.express() and mesh.createServer', async (t) => {
  const mesh = await createMesh({ workload: { name: 'calc', namespace: 'default', labels: { app: 'calc' } }, config: [] });
  const viaExpress = await listen(mesh, true);
  const bare = await listen(mesh, false);
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  t.after(async () => {
    agent.destroy();
    await viaExpress.close();
    await bare.close();
    await mesh.close();
  });

  const check = async (headers: Record<string, string>): Promise<void> => {
    const a = await get(viaExpress.port, agent, headers);
    assert.deepEqual(a, { status: 200, body: 'ok' }, 'mesh.express(): the app answers, metadata headers stripped');
    const b = await get(bare.port, agent, headers);
    assert.deepEqual(b, { status: 200, body: 'ok' }, 'mesh.createServer');
  };

  await t.test('corpus', async () => {
    for (const { name, text } of corpus('headers')) {
      await check(JSON.parse(text) as Record<string, string>).catch((err: Error) => { throw new Error(`corpus ${name}: ${err.message}`, { cause: err }); });
    }
  });

  await t.test('generated', async () => {
    await fc.assert(fc.asyncProperty(hostileHeaders, check), fuzzParameters(150));
  });

  const text = await mesh.metrics();
  assert.match(text, /istio_requests_total\{reporter="destination"/, 'metrics still render, requests counted');
});
