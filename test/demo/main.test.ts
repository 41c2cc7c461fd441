import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';

async function getText(url: string): Promise<string> {
  const res = await request(url);
  assert.equal(res.statusCode, 200, url);
  return res.body.text();
}

const h1 = (html: string): string[] => [...html.matchAll(/<h1>(.*?)<\/h1>/g)].map((m) => m[1]!);

describe('npm run demo (main.ts)', { timeout: 180_000 }, () => {
  it('starts with --scenario, prints one URL, and SIGINT stops every process', async () => {
    const main = fileURLToPath(new URL('../../examples/demo/main.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', main, '--scenario', 'blue-green', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not ready in 150 s:\n${out}`)), 150_000);
        child.stdout!.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const m = /open (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        void exited.then(() => reject(new Error(`exited early:\n${out}`)));
      });
      assert.equal(out.match(/http:\/\//g)?.length, 1, 'exactly one URL printed');
      assert.deepEqual(h1(await getText(url)), ['Dog and multiplication room']);
      const ports = [...out.matchAll(/ready on 127\.0\.0\.1 port (\d+)/g)].map((m) => Number(m[1]));
      assert.equal(ports.length, 6, 'calculate v1, v2, db, image, client, gateway');
      child.kill('SIGINT');
      assert.equal(await exited, 0);
      for (const port of ports) assert.equal(await refused(port), true, `port ${port} still open`);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

/** Whether a connection to 127.0.0.1:port is refused (nothing listens any more). */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}
