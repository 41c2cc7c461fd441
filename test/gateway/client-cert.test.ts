/**
 * `x-forwarded-client-cert` at a MUTUAL TLS gateway port, per Envoy's
 * forward_client_cert_details (mutateXfccRequestHeader in
 * source/common/http/conn_manager_utility.cc) with the details istiod sets on
 * gateways (Subject, Cert, URI, DNS). Real certificates, a real upstream on
 * 127.0.0.1 that answers with the headers it received.
 */
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { createGateway, type GatewayOptions } from '../../src/gateway/index.js';
import { CertificateAuthority } from '../../src/security/ca.js';
import { generateKeyPair, privateKeyToPem } from '../../src/security/certificates.js';
import type { IdentityMaterial } from '../../src/security/material.js';
import { crypto, ecdsaP256, loadX509 } from '../../src/security/x509.js';
import type { TestServer } from '../helpers/http-servers.js';
import { FORGED, headerMap, startEcho } from './echo.js';
import { docs } from './helpers.js';

const x509 = await loadX509();

describe('x-forwarded-client-cert over a MUTUAL TLS gateway port', () => {
  let echo: TestServer;
  let dir: string;
  let ca: CertificateAuthority;
  let gatewayId: IdentityMaterial;
  let shopper: IdentityMaterial;
  let agent: Agent;
  let named: { agent: Agent; leaf: string; root: string };
  let tlsConfig: string;

  before(async () => {
    const upstream = await startEcho();
    echo = upstream.echo;
    dir = await mkdtemp(join(tmpdir(), 'meshlet-xfcc-'));
    ca = await CertificateAuthority.create();
    gatewayId = await ca.issueWorkload('spiffe://cluster.local/ns/default/sa/istio-ingressgateway');
    shopper = await ca.issueWorkload('spiffe://cluster.local/ns/default/sa/shopper');
    await writeFile(join(dir, 'cert.pem'), gatewayId.certChain.join(''));
    await writeFile(join(dir, 'key.pem'), gatewayId.key);
    named = await namedClient(ca.rootPem);
    await writeFile(join(dir, 'ca.pem'), ca.rootPem + named.root);
    tlsConfig = docs(upstream.services, `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: client-gateway, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 443, name: https, protocol: HTTPS }
      hosts: ["*"]
      tls: { mode: MUTUAL, serverCertificate: ${join(dir, 'cert.pem')}, privateKey: ${join(dir, 'key.pem')}, caCertificates: ${join(dir, 'ca.pem')} }
`, upstream.routes);
    // The gateway's certificate names a SPIFFE id, not the host: trust the CA, skip the name check.
    agent = new Agent({ connect: { ca: ca.rootPem, cert: shopper.certChain.join(''), key: shopper.key, checkServerIdentity: () => undefined } });
  });
  after(async () => {
    await Promise.all([agent.close(), named.agent.close(), echo.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  async function viaTls(options: GatewayOptions, headers: Record<string, string>, client = agent): Promise<Map<string, string[]>> {
    const gw = await createGateway({ config: tlsConfig, port: 0, serverPort: 443, ...options });
    try {
      assert.equal(gw.protocol, 'https');
      const res = await request(`https://127.0.0.1:${gw.port}/`, { dispatcher: client, headers: { host: 'shop.example.com', ...headers } });
      const body = await res.body.text();
      assert.equal(res.statusCode, 200, body);
      return headerMap(body);
    } finally {
      await gw.close();
    }
  }

  /** Envoy's XFCC element for the shopper's certificate with istiod's gateway details (Subject, Cert, URI, DNS). */
  function expectedXfcc(): string {
    const leaf = new X509Certificate(shopper.certChain[0]!);
    const hash = createHash('sha256').update(leaf.raw).digest('hex');
    assert.equal(hash, leaf.fingerprint256.replaceAll(':', '').toLowerCase());
    return `By=${gatewayId.spiffeId};Hash=${hash};Cert="${encodeURIComponent(leaf.toString())}";Subject="";URI=${shopper.spiffeId}`;
  }

  it('SANITIZE_SET (the default) replaces a forged XFCC with the client certificate\'s', async () => {
    const got = await viaTls({}, { 'x-forwarded-client-cert': FORGED['x-forwarded-client-cert']! });
    assert.deepEqual(got.get('x-forwarded-client-cert'), [expectedXfcc()]);
    assert.deepEqual(got.get('x-forwarded-proto'), ['https']);
  });

  it('the subject is RFC 2253 (last RDN first) and every URI and DNS SAN is listed, as Envoy prints them', async () => {
    const got = await viaTls({}, {}, named.agent);
    const leaf = new X509Certificate(named.leaf);
    const hash = createHash('sha256').update(leaf.raw).digest('hex');
    assert.deepEqual(got.get('x-forwarded-client-cert'), [
      `By=${gatewayId.spiffeId};Hash=${hash};Cert="${encodeURIComponent(leaf.toString())}";Subject="CN=shopper,O=Pets,C=US"`
      + ';URI=spiffe://pets.example/ns/shop/sa/shopper;DNS=shopper.example.com;DNS=*.shop.example.com',
    ]);
  });

  it('APPEND_FORWARD appends, FORWARD_ONLY forwards, SANITIZE removes', async () => {
    const forged = FORGED['x-forwarded-client-cert']!;
    const append = await viaTls({ gatewayTopology: { forwardClientCertDetails: 'APPEND_FORWARD' } }, { 'x-forwarded-client-cert': forged });
    assert.deepEqual(append.get('x-forwarded-client-cert'), [`${forged},${expectedXfcc()}`]);
    const forward = await viaTls({ gatewayTopology: { forwardClientCertDetails: 'FORWARD_ONLY' } }, { 'x-forwarded-client-cert': forged });
    assert.deepEqual(forward.get('x-forwarded-client-cert'), [forged]);
    const sanitize = await viaTls({ gatewayTopology: { forwardClientCertDetails: 'SANITIZE' } }, { 'x-forwarded-client-cert': forged });
    assert.equal(sanitize.get('x-forwarded-client-cert'), undefined);
  });
});

/**
 * A client certificate with a subject and DNS SANs (Istio workload
 * certificates have neither), under a root of its own; an agent presenting it
 * that trusts the gateway's `serverRoot`.
 */
async function namedClient(serverRoot: string): Promise<{ agent: Agent; leaf: string; root: string }> {
  const rootKeys = await generateKeyPair();
  const now = Date.now();
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'O=Pets Root', keys: rootKeys, signingAlgorithm: ecdsaP256, notBefore: new Date(now - 60_000), notAfter: new Date(now + 3_600_000),
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  }, crypto);
  const keys = await generateKeyPair();
  const leaf = await x509.X509CertificateGenerator.create({
    subject: 'C=US, O=Pets, CN=shopper', issuer: root.subject, publicKey: keys.publicKey, signingKey: rootKeys.privateKey,
    signingAlgorithm: ecdsaP256, notBefore: new Date(now - 60_000), notAfter: new Date(now + 3_600_000),
    extensions: [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'url', value: 'spiffe://pets.example/ns/shop/sa/shopper' },
        { type: 'dns', value: 'shopper.example.com' },
        { type: 'dns', value: '*.shop.example.com' },
      ]),
    ],
  }, crypto);
  const rootPem = root.toString('pem') + '\n';
  const leafPem = leaf.toString('pem') + '\n';
  const agent = new Agent({ connect: { ca: serverRoot, cert: leafPem, key: await privateKeyToPem(keys.privateKey), checkServerIdentity: () => undefined } });
  return { agent, leaf: leafPem, root: rootPem };
}

