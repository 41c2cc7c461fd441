import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';
import { request } from 'undici';
import { runGatewayCli } from '../../src/gateway/cli.js';
import { startServer } from '../helpers/http-servers.js';
import { backendService, boundRoutes, docs, gatewayDoc } from './helpers.js';

const child = fileURLToPath(new URL('./cli-child.ts', import.meta.url));

it('rejects bad arguments with the usage text', async () => {
  await assert.rejects(runGatewayCli(['--port', '80']), /one of --config or --xds is required\nusage: meshlet gateway/);
  await assert.rejects(runGatewayCli(['--config', 'x', '--bogus']), /usage: meshlet gateway/);
});

it('`meshlet gateway` drains an in-flight request on SIGTERM, refuses new connections, then exits 0', async (t) => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const slow = await startServer('slow', (_req, res) => void released.then(() => res.end('slow done')));
  const dir = await mkdtemp(join(tmpdir(), 'meshlet-gw-'));
  t.after(async () => {
    release();
    await slow.close();
    await rm(dir, { recursive: true, force: true });
  });
  const config = join(dir, 'mesh.yaml');
  await writeFile(config, docs(backendService('slow', slow.port), gatewayDoc(), boundRoutes('["*"]', `
    - route: [{ destination: { host: slow } }]`)));

  const proc = spawn(process.execPath, ['--import', 'tsx', child, '--config', config, '--port', '0', '--server-port', '80', '--drain-timeout', '10000'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => void (proc.exitCode === null && proc.kill('SIGKILL')));
  // Keep reading stdout to the end: the child logs while it drains.
  let out = '';
  const port = await new Promise<number>((resolve) => {
    proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve((JSON.parse(line) as { port: number }).port);
    });
    proc.once('exit', () => resolve(0));
  });
  assert.ok(port > 0, out);
  assert.match(out, /meshlet gateway listening on http:\/\/127\.0\.0\.1:\d+/);

  const pending = request(`http://127.0.0.1:${port}/`, { headers: { host: 'pets.example.com' } });
  while (slow.hits === 0) await new Promise((r) => setTimeout(r, 5));
  const exited = once(proc, 'exit');
  proc.kill('SIGTERM');
  // Refused once the listener is closed (poll briefly: the signal is delivered asynchronously).
  let refused = false;
  for (let i = 0; i < 100 && !refused; i++) {
    refused = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(false)));
      s.once('error', () => resolve(true));
    });
    if (!refused) await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(refused, 'new connections are refused while draining');
  assert.equal(proc.exitCode, null, 'still running while a request is in flight');
  release();
  const res = await pending;
  assert.equal(res.statusCode, 200);
  assert.equal(await res.body.text(), 'slow done');
  const [code] = await exited;
  assert.equal(code, 0);
  assert.match(out, /draining\n.*stopped/s);
});
