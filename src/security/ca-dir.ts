/**
 * The development CA (`createMesh({ ca: { dir } })`): the root key and
 * certificate live in `dir` under Istio's plugged-in CA names (ca-key.pem,
 * ca-cert.pem, plus root-cert.pem for clients). The first user creates them;
 * everyone after loads the same root, so every mesh sharing the dir trusts
 * every other. Creation is race-safe across processes: the key file is
 * published with link(2), which fails if another process won.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CertificateError } from './certificates.js';
import { type CertificateAuthorityOptions, CertificateAuthority, type CreateRootOptions } from './ca.js';

/** File names inside a CA dir (Istio's `cacerts` layout). */
export const CA_DIR_FILES = { key: 'ca-key.pem', cert: 'ca-cert.pem', root: 'root-cert.pem' } as const;

/** How long a loser of the creation race waits for the winner's certificate. */
const PUBLISH_WAIT_MS = 5000;

function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === code;
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

async function publish(tmp: string, target: string, content: string, mode: number): Promise<boolean> {
  await writeFile(tmp, content, { mode });
  try {
    await link(tmp, target);
    return true;
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return false;
    throw err;
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

/**
 * Opens (creating on first use) the development CA kept in `dir`.
 * @throws CertificateError when the dir holds a key without a certificate, or a mismatched pair.
 */
export async function openCaDir(dir: string, options: CreateRootOptions = {}): Promise<CertificateAuthority> {
  await mkdir(dir, { recursive: true });
  const keyPath = join(dir, CA_DIR_FILES.key);
  const certPath = join(dir, CA_DIR_FILES.cert);
  const existingKey = await readIfExists(keyPath);
  if (existingKey === undefined) {
    const ca = await CertificateAuthority.create(options);
    const { keyPem, certPem } = ca.exportRoot();
    const suffix = `.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    if (await publish(keyPath + suffix, keyPath, keyPem, 0o600)) {
      await publish(certPath + suffix, certPath, certPem, 0o644);
      await publish(join(dir, CA_DIR_FILES.root) + suffix, join(dir, CA_DIR_FILES.root), certPem, 0o644);
      return ca;
    }
    // Another process published its key first: use its root.
  }
  return loadCaDir(dir, options);
}

async function loadCaDir(dir: string, options: CertificateAuthorityOptions): Promise<CertificateAuthority> {
  const keyPem = await readFile(join(dir, CA_DIR_FILES.key), 'utf8');
  const deadline = Date.now() + PUBLISH_WAIT_MS;
  let certPem = await readIfExists(join(dir, CA_DIR_FILES.cert));
  // The creator links the key before the certificate; give it time to finish.
  while (certPem === undefined && Date.now() < deadline) {
    await sleep(20);
    certPem = await readIfExists(join(dir, CA_DIR_FILES.cert));
  }
  if (certPem === undefined) throw new CertificateError(`${dir} has ${CA_DIR_FILES.key} but no ${CA_DIR_FILES.cert}`);
  return CertificateAuthority.load({ certPem, keyPem }, options);
}
