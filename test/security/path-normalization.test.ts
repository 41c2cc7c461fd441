/**
 * mesh.createServer (HTTP/1.1 and HTTP/2 h2c) against the path-normalization
 * attack table (issue #21): per Istio option, each hostile path gets the
 * sidecar's status and the app sees the path the sidecar would forward.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Mesh } from '../../src/mesh.js';
import type { MeshServer } from '../../src/security/mesh-server.js';
import { OPTIONS, checkTable, h2Sendable, rawHttp1, rawHttp2, type RawResponse } from '../helpers/hostile-paths.js';
import { closeServer, listen, meshFor } from './helpers.js';

const LABELS = '{ app: calculate }';

async function serverFor(option: (typeof OPTIONS)[number] | undefined, http2: boolean): Promise<{ mesh: Mesh; server: MeshServer; port: number; calls: { n: number }; close(): Promise<void> }> {
  const mesh = await meshFor('calculate', undefined, '', option === undefined ? {} : { meshConfig: { pathNormalization: { normalization: option } } });
  const calls = { n: 0 };
  const handler = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void => {
    calls.n++;
    res.end(req.url ?? "");
  };
  const server = mesh.createServer(handler, { http2 });
  const port = await listen(server);
  return { mesh, server, port, calls, close: async () => { await closeServer(server); await mesh.close(); } };
}

for (const option of OPTIONS) {
  test(`mesh.createServer HTTP/1.1, ${option}: every hostile path gets the sidecar's answer and the app sees the sidecar's path`, async () => {
    const s = await serverFor(option, false);
    try {
      const n = await checkTable(option, { apply: (c) => s.mesh.apply(c), send: (p) => rawHttp1(s.port, p), appCalls: () => s.calls.n }, LABELS);
      assert.ok(n > 25);
    } finally {
      await s.close();
    }
  });

  test(`mesh.createServer HTTP/2 (h2c), ${option}: the same table over :path`, async () => {
    const s = await serverFor(option, true);
    try {
      // A fragment and an absolute URL cannot be an h2 `:path` a client sends; the rest of the table applies as is.
      const n = await checkTable(option, { apply: (c) => s.mesh.apply(c), send: (p) => rawHttp2(s.port, p), appCalls: () => s.calls.n }, LABELS, '', h2Sendable);
      assert.ok(n > 25);
    } finally {
      await s.close();
    }
  });
}

test('default (no meshConfig) is BASE: /./admin is denied, //admin is forwarded as is', async () => {
  const s = await serverFor(undefined, false);
  try {
    await s.mesh.apply(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-admin, namespace: default }
spec: { action: DENY, rules: [{ to: [{ operation: { paths: ["/admin"] } }] }] }
`);
    assert.equal((await rawHttp1(s.port, '/./admin')).status, 403);
    assert.deepEqual(pick(await rawHttp1(s.port, '//admin')), { status: 200, body: '//admin' });
    const bad = await rawHttp1(s.port, '/admin%00');
    assert.deepEqual({ status: bad.status, flag: bad.headers['x-meshlet-flags'], body: bad.body }, { status: 400, flag: 'DPE', body: '' });
  } finally {
    await s.close();
  }
});

test('HTTP/2: a method that is not upper case is refused with 400 before authorization and the app', async () => {
  const s = await serverFor('BASE', true);
  try {
    const lower = await rawHttp2(s.port, '/public', 'get');
    assert.equal(lower.status, 400);
    assert.equal(lower.headers['x-meshlet-flags'], 'DPE');
    assert.equal(s.calls.n, 0);
    assert.deepEqual(pick(await rawHttp2(s.port, '/public', 'GET')), { status: 200, body: '/public' });
  } finally {
    await s.close();
  }
});

test('request.headers[...] conditions see a repeated header as its values joined with "," (Envoy), names case-insensitive', async () => {
  const s = await serverFor('BASE', false);
  try {
    await s.mesh.apply(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-evil-agent, namespace: default }
spec:
  action: DENY
  rules: [{ when: [{ key: "request.headers[User-Agent]", values: ["*evil"] }, { key: "request.headers[x-team]", values: ["a,b"] }] }]
`);
    // node keeps only the first User-Agent in req.headers and joins x-team with ", "; Envoy sees "ok,evil" and "a,b".
    const headers: Array<[string, string]> = [['User-Agent', 'ok'], ['user-agent', 'evil'], ['X-Team', 'a'], ['x-team', 'b']];
    assert.equal((await rawHttp1(s.port, '/x', { headers })).status, 403);
    assert.equal((await rawHttp1(s.port, '/x', { headers: [['User-Agent', 'ok'], ['x-team', 'a'], ['x-team', 'b']] })).status, 200);
  } finally {
    await s.close();
  }
});

function pick(r: RawResponse): { status: number; body: string } {
  return { status: r.status, body: r.body };
}
