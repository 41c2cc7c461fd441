/**
 * The gateway's request sanitizing against Envoy's behaviour with
 * use_remote_address (source/common/http/conn_manager_utility.cc): a real
 * upstream on 127.0.0.1 answers with the raw header list it received.
 * x-forwarded-client-cert over mutual TLS: client-cert.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MeshConfigError } from '../../src/errors.js';
import { createGateway, ENVOY_LEGACY_INTERNAL_ADDRESSES, runGatewayCli, type GatewayOptions } from '../../src/gateway/index.js';
import { classifyDownstream, compileEdgePolicy, DEFAULT_EDGE_POLICY, forwardedForEntry } from '../../src/gateway/sanitize.js';
import type { TestServer } from '../helpers/http-servers.js';
import { ENVOY_CONTROL, FORGED, headerMap, received, startEcho } from './echo.js';
import { docs, gatewayDoc, startGateway } from './helpers.js';

describe('gateway header sanitizing (Envoy use_remote_address at the edge)', () => {
  let echo: TestServer;
  let config: string;

  before(async () => {
    const upstream = await startEcho();
    echo = upstream.echo;
    config = docs(upstream.services, gatewayDoc(), upstream.routes);
  });
  after(() => echo.close());

  it('an outside caller\'s forged internal headers reach the upstream removed or overwritten', async () => {
    const gw = await startGateway(config);
    try {
      const got = await received(gw, FORGED);
      for (const name of [...ENVOY_CONTROL, 'x-envoy-internal', 'x-meshlet-flags', 'x-forwarded-client-cert']) {
        assert.equal(got.get(name), undefined, `${name} must not reach the upstream`);
      }
      // Metadata exchange: the upstream's peer is the gateway, once.
      const own = gw.mesh.telemetry.ownHeaders!;
      assert.deepEqual(got.get('x-envoy-peer-metadata'), [own.value]);
      assert.deepEqual(got.get('x-envoy-peer-metadata-id'), [own.id]);
      assert.deepEqual(got.get('x-envoy-external-address'), ['127.0.0.1']);
      const [requestId, ...more] = got.get('x-request-id') ?? [];
      assert.equal(more.length, 0);
      assert.notEqual(requestId, 'forged-request-id');
      assert.match(requestId!, /^[0-9a-f-]{36}$/);
      assert.deepEqual(got.get('x-forwarded-for'), ['127.0.0.1']);
    } finally {
      await gw.close();
    }
  });

  it('with metadata exchange off, forged peer metadata is removed, not forwarded', async () => {
    const gw = await startGateway(config, { telemetry: { metadataExchange: false } });
    try {
      const got = await received(gw, FORGED);
      assert.equal(got.get('x-envoy-peer-metadata'), undefined);
      assert.equal(got.get('x-envoy-peer-metadata-id'), undefined);
    } finally {
      await gw.close();
    }
  });

  it('x-forwarded-for: the client is the n-th address from the right with n trusted proxies', async () => {
    const chain = '203.0.113.9, 198.51.100.7';
    // [numTrustedProxies, the client Envoy picks]: more trusted hops than addresses falls back to the TCP peer.
    const cases: Array<[number, string]> = [[0, '127.0.0.1'], [1, '198.51.100.7'], [2, '203.0.113.9'], [3, '127.0.0.1']];
    for (const [numTrustedProxies, client] of cases) {
      const gw = await startGateway(config, { gatewayTopology: { numTrustedProxies } });
      try {
        const got = await received(gw, { 'x-forwarded-for': chain, 'x-forwarded-proto': 'https', 'x-envoy-retry-on': '5xx' });
        assert.deepEqual(got.get('x-forwarded-for'), [`${chain},127.0.0.1`], `hops ${numTrustedProxies}`);
        assert.deepEqual(got.get('x-envoy-external-address'), [client], `hops ${numTrustedProxies}`);
        // A trusted proxy's x-forwarded-proto stands; without one the gateway says what the client used.
        assert.deepEqual(got.get('x-forwarded-proto'), [numTrustedProxies > 0 ? 'https' : 'http']);
        // Trusted hops never make a request that came with x-forwarded-for internal.
        assert.equal(got.get('x-envoy-retry-on'), undefined);
        assert.equal(got.get('x-envoy-internal'), undefined);
      } finally {
        await gw.close();
      }
    }
  });

  it('x-request-id: regenerated at the edge unless preserveExternalRequestId, generated when absent', async () => {
    const gw = await startGateway(config);
    const keep = await startGateway(config, { preserveExternalRequestId: true });
    try {
      const edge = (await received(gw, { 'x-request-id': 'client-id' })).get('x-request-id')!;
      assert.equal(edge.length, 1);
      assert.notEqual(edge[0], 'client-id');
      assert.deepEqual((await received(keep, { 'x-request-id': 'client-id' })).get('x-request-id'), ['client-id']);
      const generated = (await received(keep)).get('x-request-id')!;
      assert.equal(generated.length, 1);
      assert.match(generated[0]!, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    } finally {
      await Promise.all([gw.close(), keep.close()]);
    }
  });

  it('an internal caller (configured range, no x-forwarded-for) keeps the headers Envoy keeps', async () => {
    const gw = await startGateway(config, { internalAddresses: ['127.0.0.0/8'] });
    try {
      const got = await received(gw, { ...FORGED, 'x-envoy-internal': 'false' });
      for (const name of [...ENVOY_CONTROL, 'x-meshlet-flags']) assert.deepEqual(got.get(name), [FORGED[name]], name);
      assert.deepEqual(got.get('x-envoy-internal'), ['true']);
      // Envoy sets x-envoy-external-address only on edge requests and leaves an internal one alone.
      assert.deepEqual(got.get('x-envoy-external-address'), ['10.0.0.9']);
      assert.deepEqual(got.get('x-request-id'), ['forged-request-id']);
      // Not mutual TLS: SANITIZE_SET removes it whoever asks; metadata is the gateway's own.
      assert.equal(got.get('x-forwarded-client-cert'), undefined);
      assert.deepEqual(got.get('x-envoy-peer-metadata'), [gw.mesh.telemetry.ownHeaders!.value]);

      // The same caller with x-forwarded-for is an edge request (Envoy trusts only a bare internal peer).
      const proxied = await received(gw, { ...FORGED, 'x-forwarded-for': '10.1.2.3' });
      for (const name of [...ENVOY_CONTROL, 'x-meshlet-flags', 'x-envoy-internal']) assert.equal(proxied.get(name), undefined, name);
      assert.deepEqual(proxied.get('x-envoy-external-address'), ['127.0.0.1']);
    } finally {
      await gw.close();
    }
  });

  it('Envoy\'s pre-1.33 default (RFC 1918 + loopback) is one option away; the default trusts no address', async () => {
    const legacy = await startGateway(config, { internalAddresses: ENVOY_LEGACY_INTERNAL_ADDRESSES });
    const current = await startGateway(config);
    try {
      assert.deepEqual((await received(legacy, { 'x-envoy-retry-on': '5xx' })).get('x-envoy-retry-on'), ['5xx']);
      assert.equal((await received(current, { 'x-envoy-retry-on': '5xx' })).get('x-envoy-retry-on'), undefined);
    } finally {
      await Promise.all([legacy.close(), current.close()]);
    }
    const policy = compileEdgePolicy({ internalAddresses: ENVOY_LEGACY_INTERNAL_ADDRESSES }, 'default/gw');
    // Envoy's Network::Utility::isInternalAddress: RFC 1918, exactly 127.0.0.1, fd00::/8 and ::1.
    const internal = ['10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '127.0.0.1', 'fd12::1', '::1', '::ffff:10.0.0.1'];
    const external = ['8.8.8.8', '172.32.0.1', '127.0.0.2', 'fc00::1', '2001:db8::1', '100.64.0.1'];
    for (const a of internal) assert.equal(classifyDownstream(policy, a, undefined).internal, true, a);
    for (const a of external) assert.equal(classifyDownstream(policy, a, undefined).internal, false, a);
    for (const a of internal) assert.equal(classifyDownstream(DEFAULT_EDGE_POLICY, a, undefined).internal, false, a);
  });

  it('reads x-forwarded-for entries as Envoy\'s getLastAddressFromXFF does', () => {
    // Envoy's test/common/http/utility_test.cc HttpUtility.getLastAddressFromXFF cases.
    const xff = '192.0.2.10, 192.0.2.1, 10.0.0.1';
    assert.equal(forwardedForEntry(xff, 0), '10.0.0.1');
    assert.equal(forwardedForEntry(xff, 1), '192.0.2.1');
    assert.equal(forwardedForEntry(xff, 2), '192.0.2.10');
    assert.equal(forwardedForEntry(xff, 3), undefined);
    assert.equal(forwardedForEntry('', 0), undefined);
    assert.equal(forwardedForEntry(',', 0), undefined);
    assert.equal(forwardedForEntry('192.0.2.10,', 0), undefined);
    assert.equal(forwardedForEntry('not-an-ip, 192.0.2.1', 1), undefined);
    assert.equal(forwardedForEntry('2001:db8::1,192.0.2.1', 1), '2001:db8::1');
  });

  it('a Connection header cannot nominate x-forwarded-for away; other nominated headers go wherever they are', async () => {
    const gw = await startGateway(config, { internalAddresses: ['127.0.0.0/8'] });
    try {
      const body = await rawRequest(gw.port, [
        'x-nominated: 1',
        'Connection: close, x-forwarded-for, x-nominated',
        'X-Forwarded-For: 203.0.113.9',
        'X-Envoy-Retry-On: 5xx',
      ]);
      const got = headerMap(body);
      assert.deepEqual(got.get('x-forwarded-for'), ['203.0.113.9,127.0.0.1']);
      assert.equal(got.get('x-envoy-internal'), undefined);
      assert.equal(got.get('x-envoy-retry-on'), undefined);
      assert.equal(got.get('x-nominated'), undefined);
    } finally {
      await gw.close();
    }
  });

  it('x-forwarded-client-cert on a plain HTTP port: removed unless ALWAYS_FORWARD_ONLY', async () => {
    const xfcc = FORGED['x-forwarded-client-cert']!;
    for (const [mode, kept] of [['FORWARD_ONLY', false], ['APPEND_FORWARD', false], ['SANITIZE', false], ['ALWAYS_FORWARD_ONLY', true]] as const) {
      const gw = await startGateway(config, { gatewayTopology: { forwardClientCertDetails: mode } });
      try {
        assert.deepEqual((await received(gw, { 'x-forwarded-client-cert': xfcc })).get('x-forwarded-client-cert'), kept ? [xfcc] : undefined, mode);
      } finally {
        await gw.close();
      }
    }
  });

  it('refuses bad options with a MeshConfigError naming the ProxyConfig field', async () => {
    const bad: Array<[GatewayOptions, string]> = [
      [{ gatewayTopology: { numTrustedProxies: -1 } }, 'gatewayTopology.numTrustedProxies'],
      [{ gatewayTopology: { numTrustedProxies: 1.5 } }, 'gatewayTopology.numTrustedProxies'],
      [{ gatewayTopology: { forwardClientCertDetails: 'SET' as never } }, 'gatewayTopology.forwardClientCertDetails'],
      [{ gatewayTopology: { proxyProtocol: {} } }, 'gatewayTopology.proxyProtocol'],
      [{ gatewayTopology: { numTrustProxies: 1 } as never }, 'gatewayTopology.numTrustProxies'],
      [{ internalAddresses: ['10.0.0.0/33'] }, 'internalAddresses[0]'],
      [{ internalAddresses: ['10.0.0.0/8', 'intranet'] }, 'internalAddresses[1]'],
      [{ internalAddresses: '10.0.0.0/8' as never }, 'internalAddresses'],
      [{ preserveExternalRequestId: 'yes' as never }, 'preserveExternalRequestId'],
    ];
    for (const [options, path] of bad) {
      await assert.rejects(createGateway({ config, port: 0, serverPort: 80, ...options }), (err: unknown) => {
        assert.ok(err instanceof MeshConfigError, String(err));
        assert.equal(err.kind, 'ProxyConfig');
        assert.equal(err.resource, 'default/istio-ingressgateway');
        assert.equal(err.path, path);
        return true;
      });
    }
  });

  it('`meshlet gateway` takes the same settings as flags', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshlet-gw-flags-'));
    const file = join(dir, 'mesh.yaml');
    await writeFile(file, config);
    const io = { log: () => {}, onSignal: () => () => {} };
    try {
      const gw = await runGatewayCli(['--config', file, '--port', '0', '--server-port', '80', '--num-trusted-proxies', '1',
        '--internal-address', '10.0.0.0/8', '--internal-address', '127.0.0.1', '--preserve-external-request-id'], io);
      try {
        const edge = await received(gw, { 'x-forwarded-for': '198.51.100.7', 'x-request-id': 'client-id' });
        assert.deepEqual(edge.get('x-envoy-external-address'), ['198.51.100.7']);
        assert.deepEqual(edge.get('x-request-id'), ['client-id']);
        assert.deepEqual((await received(gw)).get('x-envoy-internal'), ['true']);
      } finally {
        await gw.close();
      }
      await assert.rejects(runGatewayCli(['--config', file, '--port', '0', '--forward-client-cert-details', 'NOPE'], io),
        (err: unknown) => err instanceof MeshConfigError && err.path === 'gatewayTopology.forwardClientCertDetails');
      await assert.rejects(runGatewayCli(['--config', file, '--num-trusted-proxies', 'two'], io), /--num-trusted-proxies: expected a number/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

});

/** One HTTP/1.1 request written by hand (undici refuses a Connection header with tokens); the response body. */
async function rawRequest(port: number, lines: readonly string[]): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve, reject) => {
    socket.once('end', resolve);
    socket.once('error', reject);
  });
  socket.write(['GET / HTTP/1.1', 'Host: shop.example.com', ...lines, '', ''].join('\r\n'));
  await ended;
  const text = Buffer.concat(chunks).toString('latin1');
  const split = text.indexOf('\r\n\r\n');
  assert.match(text, /^HTTP\/1\.1 200 /);
  assert.match(text.slice(0, split), /content-length:/i);
  return text.slice(split + 4);
}
