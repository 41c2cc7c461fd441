/**
 * A per-component trace switch, like grpc's `GRPC_NODE_TRACE=xds_client`:
 * `MESHLET_TRACE=xds,control-plane` (or `all`) writes one line per event to
 * stderr. Off by default, so the xDS machinery is silent unless asked.
 */

/** A trace sink: called only when tracing is on for the component. */
export type TraceFn = (message: string) => void;

/** Whether `component` is named in MESHLET_TRACE (comma list; `all` or `*` enables everything). */
export function traceEnabled(component: string, env: string | undefined = process.env.MESHLET_TRACE): boolean {
  if (!env) return false;
  for (const part of env.split(',')) {
    const name = part.trim();
    if (name === component || name === 'all' || name === '*') return true;
  }
  return false;
}

/**
 * Returns a trace function for `component`: the given sink, or a stderr writer
 * when MESHLET_TRACE names it, or a no-op. Callers guard expensive messages with
 * `trace !== noTrace`.
 */
export function createTrace(component: string, sink?: TraceFn): TraceFn {
  if (sink) return sink;
  if (!traceEnabled(component)) return noTrace;
  return (message) => process.stderr.write(`${new Date().toISOString()} meshlet ${component}: ${message}\n`);
}

/** The disabled trace function. */
export const noTrace: TraceFn = () => {};
