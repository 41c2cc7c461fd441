import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, buildConnector, request } from 'undici';
import { CertificateAuthority } from '../../src/security/ca.js';
import type { IdentityMaterial } from '../../src/security/material.js';
import { clientTlsOptions, peerIdentity, secureContextOptions, serverTlsOptions } from '../../src/security/tls.js';
import { type RotatorClock, createRotatingIdentity, identityFromCa, rotationDelay } from '../../src/security/workload-identity.js';
import { seededRandom } from '../../src/core/random.js';
import { httpsGet, startHttps } from './tls-helpers.js';
import { certificateInfo } from '../../src/security/certificates.js';
import type { TLSSocket } from 'node:tls';

/** A manual clock: timers fire only when the test advances time. */
function manualClock(start = 1_000_000) {
  let now = start;
  const timers = new Map<number, { at: number; fn: () => void }>();
  let next = 1;
  const clock: RotatorClock = {
    now: () => now,
    setTimeout: (fn, ms) => { const id = next++; timers.set(id, { at: now + ms, fn }); return id; },
    clearTimeout: (id) => void timers.delete(id as number),
  };
  return {
    clock,
    pending: () => [...timers.values()].map((t) => t.at - now),
    async advance(ms: number) {
      now += ms;
      for (const [id, t] of [...timers]) if (t.at <= now) { timers.delete(id); t.fn(); }
      await new Promise((r) => setImmediate(r));
    },
  };
}

function fakeMaterial(notBefore: number, ttl: number, n: number): IdentityMaterial {
  return { key: `k${n}`, certChain: [`c${n}`], root: 'r', spiffeId: 'spiffe://cluster.local/ns/a/sa/b', notBefore: new Date(notBefore), notAfter: new Date(notBefore + ttl) };
}

test('rotation delay follows Istio: expiry minus lifetime × (0.5 ± 1%)', () => {
  const day = 86_400_000;
  for (const r of [0, 0.5, 0.999]) {
    const d = rotationDelay(0, day, 0, 0.5, 0.01, () => r);
    assert.ok(d >= day * 0.49 && d <= day * 0.51, String(d));
  }
  assert.equal(rotationDelay(0, 100, 500, 0.5, 0.01, () => 0.5), 0);
});

test('the rotator renews at half life, retries with backoff, and stops on close', async () => {
  const { clock, advance, pending } = manualClock();
  let n = 0;
  let fail = false;
  const errors: unknown[] = [];
  const identity = await createRotatingIdentity({
    clock, random: seededRandom(1), graceRatioJitter: 0, onError: (e) => errors.push(e),
    issue: async () => { if (fail) throw new Error('CA down'); return fakeMaterial(clock.now(), 10_000, ++n); },
  });
  const seen: string[] = [];
  const sub = identity.onRotate((m) => seen.push(m.key));
  assert.equal(identity.current.key, 'k1');
  assert.deepEqual(pending(), [5000]);
  await advance(4999);
  assert.equal(identity.current.key, 'k1');
  await advance(1);
  assert.equal(identity.current.key, 'k2');
  assert.deepEqual(seen, ['k2']);
  fail = true;
  await advance(5000);
  assert.equal(errors.length, 1);
  assert.equal(identity.current.key, 'k2', 'old material keeps serving');
  assert.deepEqual(pending(), [1000]);
  await advance(1000);
  assert.deepEqual(pending(), [2000], 'backoff doubles');
  fail = false;
  await advance(2000);
  assert.equal(identity.current.key, 'k3');
  sub.dispose();
  await identity.close();
  assert.deepEqual(pending(), []);
  assert.deepEqual(seen, ['k2', 'k3']);
});

test('rotation under a steady request loop: zero failed requests', async (t) => {
  // 5 s certificates renew every ~2.5 s; X.509 stores whole seconds, so the margin before expiry is 1.5-2.5 s.
  const ca = await CertificateAuthority.create({ defaultTtlMs: 5000 });
  const errors: unknown[] = [];
  const [server, client] = await Promise.all([
    identityFromCa(ca, 'spiffe://cluster.local/ns/default/sa/server', { onError: (e) => errors.push(e) }),
    identityFromCa(ca, 'spiffe://cluster.local/ns/default/sa/client', { onError: (e) => errors.push(e) }),
  ]);
  t.after(() => Promise.all([server.close(), client.close()]));

  const serials = new Set<string>();
  const srv = await startHttps(serverTlsOptions(server), (req, res) => {
    const socket = req.socket as TLSSocket;
    serials.add(socket.getPeerCertificate().serialNumber);
    res.end(peerIdentity(socket) ?? 'anonymous');
  });
  t.after(() => srv.close());
  server.onRotate((m) => srv.server.setSecureContext(secureContextOptions(m)));

  // Keep-alive pool too: a connection opened before a rotation keeps working after it.
  // Each new connection takes the material current at connect time.
  const agent = new Agent({ connections: 2, connect: (opts, cb) => buildConnector(clientTlsOptions(client) as buildConnector.BuildOptions)(opts, cb) });
  t.after(() => agent.close());

  let ok = 0;
  let failed = 0;
  const failures: unknown[] = [];
  // Run until the client has rotated twice (about 5 s), bounded at 15 s and 3000 requests per worker.
  const hardDeadline = Date.now() + 15_000;
  const rotationsWanted = 2;
  let rotations = 0;
  client.onRotate(() => rotations++);
  const worker = async (fresh: boolean) => {
    for (let i = 0; i < 3000 && rotations < rotationsWanted && Date.now() < hardDeadline; i++) {
      try {
        const body = fresh
          ? (await httpsGet(srv.port, clientTlsOptions(client, { expectedSpiffeIds: [server.current.spiffeId] }))).body
          : await (await request(`https://127.0.0.1:${srv.port}/`, { dispatcher: agent })).body.text();
        assert.equal(body, 'spiffe://cluster.local/ns/default/sa/client');
        ok++;
      } catch (err) {
        failed++;
        failures.push(err);
      }
    }
  };
  await Promise.all([worker(true), worker(true), worker(false)]);
  assert.equal(failed, 0, `${failed} of ${ok + failed} failed; first: ${String((failures[0] as Error)?.stack ?? failures[0])}`);
  assert.deepEqual(errors, []);
  assert.ok(rotations >= rotationsWanted, `rotations: ${rotations}`);
  assert.ok(serials.size >= 2, `server saw ${serials.size} client certificates`);
  assert.ok(ok > 50, `requests: ${ok}`);
  assert.ok(certificateInfo(client.current.certChain[0]!).notAfter.getTime() > Date.now());
  t.diagnostic(`requests ok=${ok} rotations=${rotations} client certs seen=${serials.size}`);
});
