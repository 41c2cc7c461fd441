/**
 * The rate-limit service hosted by the control plane on its ADS port
 * (memory and Redis counters), next to the CA, and the CLI flags that turn
 * both on.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { createControlPlane } from '../../src/control-plane/index.js';
import { MeshConfigError, MeshError } from '../../src/errors.js';
import { createRateLimitClient } from '../../src/ratelimit/index.js';
import { openCaDir } from '../../src/security/ca-dir.js';
import { REDIS_SKIP, startRedis } from '../helpers/redis.js';
import { configDir } from './helpers.js';

const RATELIMIT_YAML = `
domain: pets
descriptors:
  - key: generic_key
    value: gateway
    rate_limit: { unit: minute, requests_per_unit: 5 }
`;
const gateway = [{ entries: [{ key: 'generic_key', value: 'gateway' }] }];
// 10 s into a minute: no window rolls over mid-test.
const fixedNow = () => 1_699_999_990_000;

const redis = await startRedis();
after(() => redis?.close());

test('the control plane answers ShouldRateLimit on its ADS port (5/min → 6th OVER_LIMIT), next to its CA', async () => {
  const config = await configDir({});
  const caDir = await mkdtemp(join(tmpdir(), 'meshlet-cp-rl-'));
  const cp = await createControlPlane({
    config: config.dir, port: 0, host: '127.0.0.1', log: () => {},
    ca: { dir: caDir }, ratelimit: { config: RATELIMIT_YAML, now: fixedNow },
  });
  const client = createRateLimitClient({ target: `127.0.0.1:${cp.port}`, timeoutMs: 2000 });
  try {
    const decisions = [];
    for (let i = 0; i < 6; i++) decisions.push(await client.shouldRateLimit('pets', gateway));
    assert.deepEqual(decisions.map((d) => d.error), [undefined, undefined, undefined, undefined, undefined, undefined]);
    assert.deepEqual(decisions.map((d) => d.overLimit), [false, false, false, false, false, true]);
    const sixth = decisions[5]!;
    assert.deepEqual([sixth.flag, sixth.status, sixth.headers?.['x-envoy-ratelimited']], ['RL', 429, 'true']);
    assert.equal(sixth.statuses![0]!.code, 'OVER_LIMIT');
    assert.deepEqual(sixth.statuses![0]!.duration_until_reset, { seconds: 50, nanos: 0 });
    // The in-process limiter is the one serving, and reloads in place.
    cp.rateLimiter!.update(RATELIMIT_YAML.replace('requests_per_unit: 5', 'requests_per_unit: 10'));
    assert.equal((await client.shouldRateLimit('pets', gateway)).overLimit, false);
    // The CA makes the port speak TLS as well (first byte sniffed): the same service answers over TLS.
    const tlsClient = createRateLimitClient({
      target: `127.0.0.1:${cp.port}`, timeoutMs: 2000,
      credentials: grpc.credentials.createSsl(Buffer.from(cp.rootCert()), null, null, {
        checkServerIdentity: (_host, cert) => (/URI:spiffe:\/\/cluster\.local\/ns\/istio-system\/sa\/istiod/.test(cert.subjectaltname ?? '') ? undefined : new Error(`unexpected server ${cert.subjectaltname}`)),
      }),
    });
    try {
      const overTls = await tlsClient.shouldRateLimit('pets', gateway);
      assert.deepEqual([overTls.error, overTls.statuses?.[0]?.code], [undefined, 'OK']);
    } finally {
      tlsClient.close();
    }
  } finally {
    client.close();
    await cp.close();
    await config.remove();
    await rm(caDir, { recursive: true, force: true });
  }
});

test('two control planes sharing one redis-server allow exactly 5 per minute together', { skip: redis ? false : REDIS_SKIP }, async () => {
  const config = await configDir({});
  const ratelimit = { config: RATELIMIT_YAML, redis: redis!.url, redisKeyPrefix: `cp-test-${process.pid}-${Date.now()}:`, now: fixedNow };
  const cps = [
    await createControlPlane({ config: config.dir, port: 0, host: '127.0.0.1', log: () => {}, ratelimit }),
    await createControlPlane({ config: config.dir, port: 0, host: '127.0.0.1', log: () => {}, ratelimit }),
  ];
  const clients = cps.map((cp) => createRateLimitClient({ target: `127.0.0.1:${cp.port}`, timeoutMs: 2000 }));
  try {
    const decisions = [];
    for (let i = 0; i < 10; i++) decisions.push(await clients[i % 2]!.shouldRateLimit('pets', gateway));
    assert.deepEqual(decisions.map((d) => d.error), new Array(10).fill(undefined));
    assert.equal(decisions.filter((d) => !d.overLimit).length, 5);
    assert.deepEqual(decisions.map((d) => d.overLimit), [false, false, false, false, false, true, true, true, true, true]);
  } finally {
    for (const c of clients) c.close();
    for (const cp of cps) await cp.close();
    await config.remove();
  }
});

test('an invalid rate-limit config stops the control plane from starting; no CA means no tokens', async () => {
  const config = await configDir({});
  try {
    await assert.rejects(
      createControlPlane({ config: config.dir, port: 0, host: '127.0.0.1', log: () => {}, ratelimit: { config: 'domain: pets\ndescriptors: [ { rate_limit: { unit: minute } } ]\n' } }),
      MeshConfigError,
    );
    const cp = await createControlPlane({ config: config.dir, port: 0, host: '127.0.0.1', log: () => {} });
    try {
      assert.equal(cp.ca, undefined);
      assert.equal(cp.rateLimiter, undefined);
      assert.throws(() => cp.rootCert(), (err: unknown) => err instanceof MeshError && err.code === 'MESH_NO_CA');
      assert.throws(() => cp.mintToken({ namespace: 'default', serviceAccount: 'x' }), (err: unknown) => err instanceof MeshError && err.code === 'MESH_NO_CA');
    } finally {
      await cp.close();
    }
  } finally {
    await config.remove();
  }
});

test('CLI: meshlet control-plane --ca-dir --ratelimit-config, and meshlet token --ca-dir for the same CA', async (t) => {
  const config = await configDir({});
  const caDir = await mkdtemp(join(tmpdir(), 'meshlet-cp-cli-'));
  const rlFile = join(config.dir, '..', `ratelimit-${process.pid}.yaml`);
  await writeFile(rlFile, RATELIMIT_YAML);
  const lines: string[] = [];
  t.mock.method(process.stdout, 'write', (chunk: string | Uint8Array) => (lines.push(String(chunk)), true));
  let close: (() => Promise<void>) | undefined;
  try {
    close = await main(['control-plane', '--config', config.dir, '--port', '0', '--ca-dir', caDir, '--ratelimit-config', rlFile]);
    const banner = lines.find((l) => l.startsWith('meshlet control-plane:'));
    assert.match(banner ?? '', /ADS \+ CA .* over TLS, ADS over TLS only \+ ShouldRateLimit \(in memory\) on 127\.0\.0\.1:\d+/);
    const port = Number(/127\.0\.0\.1:(\d+)/.exec(banner!)![1]);
    const client = createRateLimitClient({ target: `127.0.0.1:${port}`, timeoutMs: 2000 });
    try {
      const first = await client.shouldRateLimit('pets', gateway);
      assert.deepEqual([first.error, first.overLimit, first.statuses?.[0]?.code], [undefined, false, 'OK']);
    } finally {
      client.close();
    }
    await main(['token', '--ca-dir', caDir, '--namespace', 'default', '--service-account', 'client', '--ttl', '10m']);
    const token = lines.at(-1)!.trim();
    assert.equal((await openCaDir(caDir)).verifyBootstrapToken(token).uri, 'spiffe://cluster.local/ns/default/sa/client');
    await assert.rejects(main(['control-plane', '--config', config.dir, '--redis', 'redis://127.0.0.1:1']), /--redis needs --ratelimit-config/);
  } finally {
    t.mock.restoreAll();
    await close?.();
    await config.remove();
    await rm(caDir, { recursive: true, force: true });
    await rm(rlFile, { force: true });
  }
});
