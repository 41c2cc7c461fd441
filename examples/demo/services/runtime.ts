/**
 * What every demo service process shares: telling the parent it is ready
 * (over the IPC channel main.ts opens), and stopping promptly on SIGINT /
 * SIGTERM or when the parent goes away.
 */

/** The message a service sends its parent once it listens. */
export interface ReadyMessage {
  type: 'ready';
  service: string;
  port: number;
  /** The workload's admin port (metrics, clusters), when it has a mesh. */
  adminPort?: number;
  /** A second, gRPC port (calculate). */
  grpcPort?: number;
}

/** Tells the parent process which port this service listens on. */
export function reportReady(service: string, port: number, adminPort?: number, grpcPort?: number): void {
  const message: ReadyMessage = { type: 'ready', service, port, ...(adminPort !== undefined && { adminPort }), ...(grpcPort !== undefined && { grpcPort }) };
  if (process.send) process.send(message);
  else process.stdout.write(`${service} listening on 127.0.0.1:${port}\n`);
}

/**
 * Runs `close` on SIGINT/SIGTERM or when the parent disconnects, then exits.
 * Slow requests (the 20 s sleeping cat) must not hold the process, so close
 * gets a short grace and the process exits regardless.
 */
export function exitOnSignal(close: () => Promise<unknown>, graceMs = 500): void {
  let exiting = false;
  const stop = (): void => {
    if (exiting) return;
    exiting = true;
    const timer = setTimeout(() => process.exit(0), graceMs);
    timer.unref();
    close().then(() => process.exit(0), () => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // The IPC channel closes when the parent exits, even if it was killed hard.
  process.on('disconnect', stop);
}

/** The port to listen on, from env PORT (default 0: a free port). */
export function portFromEnv(): number {
  const port = Number(process.env.PORT ?? 0);
  return Number.isInteger(port) && port >= 0 && port < 65536 ? port : 0;
}
