/**
 * Child processes of the demo: each service is a small TS file run with
 * `node --import tsx`, reporting its port over IPC once it listens.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ReadyMessage } from './services/runtime.js';

/** A started service process. */
export interface ServiceProcess {
  readonly name: string;
  readonly port: number;
  /** The workload's admin port (GET /metrics, /clusters), when it has a mesh. */
  readonly adminPort: number | undefined;
  /** A second, gRPC port (calculate). */
  readonly grpcPort: number | undefined;
  readonly child: ChildProcess;
  /** SIGTERM, then SIGKILL if it has not exited within graceMs. Resolves when it is gone. */
  stop(graceMs?: number): Promise<void>;
}

// Resolved here so children find tsx whatever the current directory is.
const tsxLoader = import.meta.resolve('tsx');

/**
 * Starts services/<file>.ts with env and resolves once it reports ready
 * (rejects on exit, timeout or `signal`, after stopping the child). `onMessage`
 * receives every later IPC message (the spans the child's tracer ships).
 */
export function startService(name: string, file: string, env: Record<string, string>, onMessage?: (message: unknown) => void, timeoutMs = 120_000, signal?: AbortSignal): Promise<ServiceProcess> {
  const script = fileURLToPath(new URL(`./services/${file}.ts`, import.meta.url));
  const child = spawn(process.execPath, ['--import', tsxLoader, script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  if (onMessage) child.on('message', onMessage);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const stop = async (graceMs = 2000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  return new Promise<ServiceProcess>((resolve, reject) => {
    const fail = (reason: string): void => {
      cleanup();
      void stop(0);
      reject(new Error(`${name}: ${reason}`));
    };
    const onMessage = (message: unknown): void => {
      const m = message as Partial<ReadyMessage>;
      if (m?.type !== 'ready' || typeof m.port !== 'number') return;
      cleanup();
      resolve({ name, port: m.port, adminPort: m.adminPort, grpcPort: m.grpcPort, child, stop });
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => fail(`exited before it was ready (${signal ?? `code ${code}`})`);
    const onError = (err: Error): void => fail(err.message);
    const onAbort = (): void => fail('stopped while starting');
    const timer = setTimeout(() => fail(`not ready after ${timeoutMs} ms`), timeoutMs);
    function cleanup(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      child.off('message', onMessage);
      child.off('exit', onExit);
      child.off('error', onError);
    }
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.once('error', onError);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}
