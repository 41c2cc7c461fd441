/**
 * Istio's mounted-certificates layout (`createMesh({ certs: { dir } })`):
 * cert-chain.pem, key.pem, root-cert.pem. The directory is watched — not the
 * files, because Kubernetes swaps secret volumes by renaming a symlinked
 * directory — and reloaded after a short quiet period, so a half-written
 * set of files is never picked up. Invalid contents keep the old material.
 */
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type IdentityMaterial, createIdentityMaterial } from './material.js';
import type { Disposable, RotateListener, WorkloadIdentity } from './workload-identity.js';

/** File names of Istio's /etc/certs layout. */
export const CERT_DIR_FILES = { certChain: 'cert-chain.pem', key: 'key.pem', root: 'root-cert.pem' } as const;

/** Paths of the three files, when they are not `dir`'s standard names (a bootstrap's file_watcher provider). */
export interface CertFiles {
  certChain: string;
  key: string;
  root: string;
}

/** Reads and checks the three files once. */
export async function loadCertDir(dir: string, options: { trustDomain?: string; files?: CertFiles } = {}): Promise<IdentityMaterial> {
  const files = options.files ?? { certChain: join(dir, CERT_DIR_FILES.certChain), key: join(dir, CERT_DIR_FILES.key), root: join(dir, CERT_DIR_FILES.root) };
  const [certChain, key, root] = await Promise.all([
    readFile(files.certChain, 'utf8'),
    readFile(files.key, 'utf8'),
    readFile(files.root, 'utf8'),
  ]);
  return createIdentityMaterial({ certChain, key, root }, options);
}

/** Options for {@link certDirIdentity}. */
export interface CertDirOptions {
  /** The leaf's SPIFFE id must be in this trust domain. */
  trustDomain?: string;
  /** Quiet period after the last change before reloading (default 100 ms). */
  debounceMs?: number;
  /** Reload failures (unreadable or invalid files); the previous material stays. */
  onError?: (err: unknown) => void;
  /** Other file paths than `dir`'s standard names (`dir` is still the one watched). */
  files?: CertFiles;
}

/** Loads the directory and keeps the identity in step with it until `close()`. */
export async function certDirIdentity(dir: string, options: CertDirOptions = {}): Promise<WorkloadIdentity> {
  const debounceMs = options.debounceMs ?? 100;
  const onError = options.onError ?? (() => {});
  let current = await loadCertDir(dir, options);
  const listeners = new Set<RotateListener>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let generation = 0;

  const reload = async (): Promise<void> => {
    timer = undefined;
    const mine = ++generation;
    try {
      const next = await loadCertDir(dir, options);
      // A newer reload started meanwhile, or nothing really changed.
      if (closed || mine !== generation) return;
      if (next.key === current.key && next.root === current.root && next.certChain.join('') === current.certChain.join('')) return;
      current = next;
      for (const listener of listeners) {
        try {
          listener(next);
        } catch (err) {
          onError(err);
        }
      }
    } catch (err) {
      if (!closed) onError(err);
    }
  };

  const watcher: FSWatcher = watch(dir, { persistent: false }, () => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void reload(), debounceMs).unref();
  });
  watcher.on('error', (err) => onError(err));

  return {
    get current() {
      return current;
    },
    onRotate(listener: RotateListener): Disposable {
      listeners.add(listener);
      return { dispose: () => listeners.delete(listener) };
    },
    async close() {
      if (closed) return;
      closed = true;
      if (timer) clearTimeout(timer);
      watcher.close();
      listeners.clear();
    },
  };
}
