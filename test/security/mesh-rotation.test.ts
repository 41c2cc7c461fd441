import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TLSSocket } from 'node:tls';
import { CALC, CLIENT_ID, clientConfig, closeServer, listen, meshFor, tempDir } from './helpers.js';

test('certificate rotation under a steady request loop through the mesh pools: zero failures', async () => {
  const ca = await tempDir();
  // X.509 times have 1 s granularity, so a certificate lives 2–3 s; both sides renew at about half of that.
  const ttl = 3000;
  const server = await meshFor('calculate', ca.dir, '', { ca: { dir: ca.dir, ttl } });
  const serverSerials = new Set<string>();
  const clientSerials = new Set<string>();
  let served = 0;
  const http = server.createServer((req, res) => {
    const socket = req.socket as TLSSocket;
    clientSerials.add(socket.getPeerCertificate().serialNumber);
    serverSerials.add(socket.getCertificate() && 'serialNumber' in socket.getCertificate()! ? (socket.getCertificate() as { serialNumber: string }).serialNumber : '?');
    // Close every fourth connection so the pool keeps opening new ones (which must use the current certificates).
    if (++served % 4 === 0) res.setHeader('connection', 'close');
    res.end(server.peerOf(req) ?? 'anonymous');
  });
  const port = await listen(http);
  const client = await meshFor('client', ca.dir, clientConfig(port), { ca: { dir: ca.dir, ttl } });
  let ok = 0;
  const failures: string[] = [];
  const deadline = Date.now() + 3500;
  try {
    const worker = async (): Promise<void> => {
      for (let i = 0; i < 2000 && Date.now() < deadline; i++) {
        try {
          const res = await client.fetch(`http://${CALC}:8000/`);
          const body = await res.text();
          if (res.status === 200 && body === CLIENT_ID) ok++;
          else failures.push(`${res.status} ${body}`);
        } catch (err) {
          failures.push(String(err));
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    assert.deepEqual(failures, []);
    assert.ok(ok > 50, `only ${ok} requests`);
    // Both identities rotated (at least once each; usually twice) while traffic flowed.
    assert.ok(clientSerials.size >= 2, `client certificates seen: ${clientSerials.size}`);
    assert.ok(serverSerials.size >= 2, `server certificates seen: ${serverSerials.size}`);
  } finally {
    await client.close();
    await closeServer(http);
    await server.close();
    await ca.remove();
  }
});
