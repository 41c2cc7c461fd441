/**
 * meshlet next to Envoy sidecars (mixed meshes). A sidecar's PERMISSIVE
 * inbound picks its filter chain by the client's ALPN
 * (pilot/pkg/networking/core/filterchain_options.go
 * inboundPermissiveFilterChainMatchWithMxcOptions): istio-http/1.0,
 * istio-http/1.1 or istio-h2 → the mTLS HTTP chain; istio-peer-exchange or
 * istio → mTLS TCP; any other TLS → passed through to the app untouched. A
 * sidecar client offers [istio-http/1.1, istio, http/1.1] or
 * [istio-h2, istio, h2] (pilot/pkg/xds/filters mtlsHTTP11ALPN/mtlsHTTP2ALPN),
 * or [istio-peer-exchange, istio] for traffic it proxies as TCP
 * (cluster_tls.go ALPNInMeshWithMxc).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpsRequest } from 'node:https';
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { openCaDir } from '../../src/security/ca-dir.js';
import { uriSans } from '../../src/security/certificates.js';
import { grpcServerCredentials } from '../../src/security/grpc-credentials.js';
import { upstreamChannelCredentials } from '../../src/security/grpc-upstream.js';
import type { IdentityMaterial } from '../../src/security/material.js';
import { spiffeServerIdentityCheck } from '../../src/security/tls.js';
import { identityFromCa } from '../../src/security/workload-identity.js';
import { encodePeerMetadata } from '../../src/telemetry/peer-metadata.js';
import { CALC_ID, CLIENT_ID, clientConfig, closeServer, listen, meshFor, tempDir, whoamiVersion } from './helpers.js';

type After = { after(fn: () => unknown): void };
const MTLS_HTTP = ['istio-http/1.0', 'istio-http/1.1', 'istio-h2'];
const MTLS_TCP = ['istio-peer-exchange', 'istio'];

/** Which of a sidecar's PERMISSIVE inbound filter chains a TLS ClientHello with these ALPNs lands on. */
function sidecarChain(protocols: readonly string[]): 'mtls-http' | 'mtls-tcp' | 'tls-passthrough' {
  if (protocols.some((p) => MTLS_HTTP.includes(p))) return 'mtls-http';
  if (protocols.some((p) => MTLS_TCP.includes(p))) return 'mtls-tcp';
  return 'tls-passthrough';
}

/**
 * A TLS server that behaves like a sidecar's inbound on 127.0.0.1: records
 * the filter chain each handshake selects, then (on every chain, so the test
 * can read the answer) terminates mTLS with the sidecar's DownstreamTlsContext
 * ALPN [h2, http/1.1] and answers HTTP/1.1, HTTP/2 and unary gRPC.
 */
async function startSidecarInbound(t: After, material: IdentityMaterial) {
  const chains: string[] = [];
  const answer = (req: Http2ServerRequest | import('node:http').IncomingMessage) => {
    const socket = req.socket as TLSSocket;
    return JSON.stringify({
      alpn: socket.alpnProtocol, peer: uriSans(socket.getPeerCertificate().subjectaltname)[0] ?? null,
      mx: req.headers['x-envoy-peer-metadata-id'] ?? null, version: req.httpVersion,
    });
  };
  const server = createSecureServer({
    key: material.key, cert: material.certChain.join(''), ca: material.root, requestCert: true, rejectUnauthorized: true, allowHTTP1: true,
    ALPNCallback: ({ protocols }) => {
      chains.push(sidecarChain(protocols));
      return ['h2', 'http/1.1'].find((p) => protocols.includes(p)) ?? protocols[0];
    },
  }, (req, res) => {
    if (req.headers['content-type'] === 'application/grpc') {
      const body = Buffer.from(answer(req));
      const frame = Buffer.alloc(5 + body.length);
      frame.writeUInt32BE(body.length, 1);
      body.copy(frame, 5);
      const r = res as Http2ServerResponse;
      r.writeHead(200, { 'content-type': 'application/grpc' });
      r.addTrailers({ 'grpc-status': '0' });
      return void req.on('data', () => {}).on('end', () => r.end(frame));
    }
    res.end(answer(req));
  });
  // close() waits for open sessions and connections: the test's clients may still hold theirs.
  const sockets = new Set<TLSSocket>();
  server.on('secureConnection', (socket: TLSSocket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise<void>((resolve) => {
    server.close(() => resolve());
    for (const socket of sockets) socket.destroy();
  }));
  return { port: (server.address() as AddressInfo).port, chains };
}

test('meshlet → sidecar: ISTIO_MUTUAL HTTP/1.1 lands on the sidecar\'s mTLS HTTP chain, SPIFFE-checked both ways, with metadata exchange', async (t) => {
  const { dir, remove } = await tempDir();
  t.after(remove);
  const ca = await openCaDir(dir);
  const sidecar = await startSidecarInbound(t, await ca.issueWorkload(CALC_ID));
  const client = await meshFor('client', dir, clientConfig(sidecar.port, { tls: '{ mode: ISTIO_MUTUAL }' }));
  t.after(() => client.close());
  const res = await client.fetch('http://calculate.default.svc.cluster.local:8000/');
  assert.equal(res.status, 200);
  const info = await res.json() as { alpn: string; peer: string; mx: string | null; version: string };
  assert.deepEqual(sidecar.chains, ['mtls-http'], 'undici alone offers http/1.1, which a sidecar passes through as opaque TLS');
  assert.equal(info.alpn, 'http/1.1');
  assert.equal(info.version, '1.1');
  assert.equal(info.peer, CLIENT_ID, 'the sidecar verified the workload certificate');
  assert.match(info.mx ?? '', /^sidecar~/, 'metadata exchange headers went along');

  // The sidecar's certificate is checked by SPIFFE id too: a destination running as another service account is refused.
  const wrong = await startSidecarInbound(t, await ca.issueWorkload('spiffe://cluster.local/ns/default/sa/intruder'));
  const other = await meshFor('client2', dir, clientConfig(wrong.port, { tls: '{ mode: ISTIO_MUTUAL }' }));
  t.after(() => other.close());
  const refused = await other.fetch('http://calculate.default.svc.cluster.local:8000/');
  assert.equal(refused.status, 503);
  assert.match(refused.headers.get('x-meshlet-flags') ?? '', /^U[CF]$/, 'an upstream connection failure, not a response from the intruder');
});

test('meshlet → sidecar: gRPC over ISTIO_MUTUAL offers istio-h2 and lands on the mTLS HTTP chain', async (t) => {
  const { dir, remove } = await tempDir();
  t.after(remove);
  const ca = await openCaDir(dir);
  const sidecar = await startSidecarInbound(t, await ca.issueWorkload(CALC_ID));
  const identity = await identityFromCa(ca, CLIENT_ID);
  t.after(() => identity.close());
  const creds = upstreamChannelCredentials({ kind: 'istio', key: 'istio||[]', sans: [{ exact: CALC_ID }], sni: 'outbound_.9000_._.calculate.default.svc.cluster.local', auto: false }, identity, grpc.credentials.createInsecure());
  const channel = new grpc.Client(`127.0.0.1:${sidecar.port}`, creds);
  t.after(() => channel.close());
  const reply = await new Promise<Buffer>((resolve, reject) => {
    channel.makeUnaryRequest('/test.Echo/Info', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), { deadline: Date.now() + 10_000 }, (err, value) => (err ? reject(err) : resolve(value!)));
  });
  const info = JSON.parse(reply.toString()) as { alpn: string; peer: string; version: string };
  assert.deepEqual(sidecar.chains, ['mtls-http'], 'grpc-js alone offers h2, which a sidecar passes through as opaque TLS');
  assert.equal(info.alpn, 'h2');
  assert.equal(info.version, '2.0');
  assert.equal(info.peer, CLIENT_ID);
});

/** An Envoy sidecar's client side: its certificate, SPIFFE check of the server, the given ALPN, one HTTP/1.1 request. */
function envoyRequest(port: number, material: IdentityMaterial, alpn: string[], headers: Record<string, string> = {}): Promise<{ status: number; body: string; alpn: string | false | null }> {
  const tls: ConnectionOptions = {
    key: material.key, cert: material.certChain.join(''), ca: material.root, ALPNProtocols: alpn,
    checkServerIdentity: spiffeServerIdentityCheck({ expectedSpiffeIds: [CALC_ID], trustDomain: 'cluster.local' }),
  };
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: '/', agent: false, headers, ...tls }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => resolve({ status: res.statusCode!, body, alpn: (res.socket as TLSSocket).alpnProtocol }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject).end();
  });
}

test('sidecar → meshlet: mesh servers accept a sidecar\'s HTTP and TCP-mode ALPN (never selecting istio-peer-exchange), SPIFFE both ways', async (t) => {
  const { dir, remove } = await tempDir();
  t.after(remove);
  const ca = await openCaDir(dir);
  const server = await meshFor('calculate', dir, '');
  t.after(() => server.close());
  const productpage = await ca.issueWorkload('spiffe://cluster.local/ns/default/sa/productpage');
  const mx = encodePeerMetadata({ name: 'productpage-v1-7d4b9c', namespace: 'default', workloadName: 'productpage-v1', labels: { app: 'productpage', version: 'v1' } });
  for (const http2 of [false, true]) {
    const s = http2 ? server.createServer(whoamiVersion(server), { http2: true }) : server.createServer(whoamiVersion(server));
    const port = await listen(s);
    try {
      const http = await envoyRequest(port, productpage, ['istio-http/1.1', 'istio', 'http/1.1'], { 'x-envoy-peer-metadata-id': mx.id, 'x-envoy-peer-metadata': mx.value });
      assert.deepEqual([http.status, http.alpn, http.body], [200, 'http/1.1', 'spiffe://cluster.local/ns/default/sa/productpage tls 1.1'], `http2=${http2}`);
      // TCP mode: node's strict ALPN refused this handshake outright; 'istio' is chosen, so no metadata exchange preamble is expected.
      const tcp = await envoyRequest(port, productpage, ['istio-peer-exchange', 'istio']);
      assert.deepEqual([tcp.status, tcp.alpn, tcp.body], [200, 'istio', 'spiffe://cluster.local/ns/default/sa/productpage tls 1.1'], `http2=${http2}`);
    } finally {
      await closeServer(s);
    }
  }
  // The sidecar's metadata exchange named the source workload in the destination's metrics.
  assert.match(await server.metrics(), /istio_requests_total\{[^}]*source_workload="productpage-v1"/);
});

test('sidecar → meshlet gRPC server: istio-h2 and istio select HTTP/2, istio-peer-exchange alone is refused', async (t) => {
  const { dir, remove } = await tempDir();
  t.after(remove);
  const ca = await openCaDir(dir);
  const identity = await identityFromCa(ca, CALC_ID);
  t.after(() => identity.close());
  const server = new grpc.Server();
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpcServerCredentials(identity, { mode: 'PERMISSIVE' }), (err, p) => (err ? reject(err) : resolve(p))));
  t.after(() => server.forceShutdown());
  const productpage = await ca.issueWorkload('spiffe://cluster.local/ns/default/sa/productpage');
  const alpnOf = (protocols: string[]) => new Promise<string | false | null>((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, key: productpage.key, cert: productpage.certChain.join(''), ca: productpage.root, ALPNProtocols: protocols,
      checkServerIdentity: spiffeServerIdentityCheck({ expectedSpiffeIds: [CALC_ID], trustDomain: 'cluster.local' }) }, () => {
      resolve(socket.alpnProtocol);
      socket.destroy();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code as unknown as false));
  });
  assert.equal(await alpnOf(['istio-h2', 'istio', 'h2']), 'h2');
  assert.equal(await alpnOf(['istio-h2']), 'istio-h2');
  assert.equal(await alpnOf(['istio-peer-exchange', 'istio']), 'istio');
  assert.equal(await alpnOf(['istio-peer-exchange']), 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL');
});
