/**
 * Type tests, as a consumer meets the published package: the declarations
 * are built (tsconfig.build.json) into a scratch copy of the package, a
 * consumer project that depends on `meshlet` is compiled with `tsc --strict`
 * (module nodenext: an ES module importing it and a CommonJS file requiring
 * it), `@ts-expect-error` lines prove the types are not `any`, and both
 * compiled files then run against a loopback server.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startServer } from '../helpers/http-servers.js';

const exec = promisify(execFile);

/** Whether dist/ was built after every file under src/ and the build config last changed. */
function distIsCurrent(): boolean {
  const built = statSync(join(root, 'dist', 'index.d.ts'), { throwIfNoEntry: false })?.mtimeMs;
  if (built === undefined) return false;
  const newest = (dir: string): number => {
    let t = 0;
    for (const e of readdirSync(dir, { withFileTypes: true })) t = Math.max(t, e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs);
    return t;
  };
  return built >= Math.max(newest(join(root, 'src')), statSync(join(root, 'tsconfig.build.json')).mtimeMs, statSync(join(root, 'package.json')).mtimeMs);
}
const root = fileURLToPath(new URL('../../', import.meta.url));
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

/** What the consumer does with the public API; `PORT` is replaced by the loopback server's port. */
const body = (createMesh: string) => `
  const mesh = await ${createMesh}({ workload: { name: 'consumer', namespace: 'default' }, config: [] });
  const init: RequestInit = { method: 'POST', body: 'hello', headers: { 'x-consumer': 'yes' } };
  const res: Response = await mesh.fetch('http://127.0.0.1:PORT/echo', init);
  const text: string = await res.text();
  const status: number = res.status;
  // @ts-expect-error a Response is not a string: the type is not any
  const wrong: string = await mesh.fetch('http://127.0.0.1:PORT/');
  void wrong;
  const headers: Headers = res.headers;
  await mesh.close();
  console.log(JSON.stringify({ status, text, type: headers.get('content-type') }));
`;

const ESM = `import { createMesh, MeshConfigError, type Mesh } from 'meshlet';
import type { ControlPlane } from 'meshlet/control-plane';
import type { Gateway } from 'meshlet/gateway';
type Unused = [Mesh, ControlPlane, Gateway, typeof MeshConfigError];
${body('createMesh')}
export type { Unused };
`;

const CJS = `import meshlet = require('meshlet');
async function run(): Promise<void> {
${body('meshlet.createMesh')}
}
void run();
`;

describe('the published types, in a strict consumer project (ESM and CommonJS)', { timeout: 240_000 }, () => {
  let dir: string;
  let port: number;
  let close: () => Promise<void>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshlet-types-'));
    const pkg = join(dir, 'node_modules', 'meshlet');
    await mkdir(pkg, { recursive: true });
    await cp(join(root, 'package.json'), join(pkg, 'package.json'));
    // The package's own dependencies, as npm would install them beside it.
    await symlink(join(root, 'node_modules'), join(pkg, 'node_modules'), 'dir');
    await symlink(join(root, 'node_modules', '@types'), join(dir, 'node_modules', '@types'), 'dir');
    // `npm ci` (prepare) builds dist/ with tsconfig.build.json: when it is newer than every source, it is what
    // this build would make (CI runs right after it, and the build costs ~20 s of CPU); else build a fresh copy.
    if (distIsCurrent()) await cp(join(root, 'dist'), join(pkg, 'dist'), { recursive: true });
    else await exec(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', join(pkg, 'dist'), '--sourceMap', 'false'], { cwd: root });
    const server = await startServer('echo', (req, res) => {
      let text = '';
      req.setEncoding('utf8').on('data', (s: string) => (text += s)).on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain' }).end(`${req.method} ${req.headers['x-consumer']} ${text}`);
      });
    });
    port = server.port;
    close = () => server.close();
    await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'commonjs' }));
    await writeFile(join(dir, 'esm.mts'), ESM.replaceAll('PORT', String(port)));
    await writeFile(join(dir, 'cjs.cts'), CJS.replaceAll('PORT', String(port)));
    await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2023'], types: ['node'], outDir: 'out', skipLibCheck: false, noEmitOnError: true },
      files: ['esm.mts', 'cjs.cts'],
    }));
  });
  after(async () => {
    await close?.();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('compiles with tsc --strict: Response / RequestInit are the global ones, and not any', async () => {
    const result = await exec(process.execPath, [tsc, '-p', dir], { cwd: dir }).then(() => '', (err: { stdout: string }) => err.stdout);
    assert.equal(result, '', result);
    assert.match(await readFile(join(dir, 'out', 'cjs.cjs'), 'utf8'), /require\("meshlet"\)/, 'the CommonJS file really requires the package');
  });

  for (const [name, file] of [['ES module import', 'esm.mjs'], ['CommonJS require', 'cjs.cjs']] as const) {
    it(`runs as compiled (${name}): mesh.fetch answers through the mesh`, async () => {
      const { stdout } = await exec(process.execPath, [join(dir, 'out', file)], { cwd: dir });
      assert.deepEqual(JSON.parse(stdout.trim().split('\n').at(-1)!), { status: 200, text: 'POST yes hello', type: 'text/plain' });
    });
  }
});
