/**
 * The debug HTTP endpoint, like istiod's :15014/debug: `/debug/syncz` lists
 * connected clients with sent/ACKed versions per type and the last NACK (what
 * `istioctl proxy-status` shows); `/debug/status` shows config errors and the
 * registered workloads; `/debug/config_status` each Istio resource applied, partial
 * or rejected with its warnings; `/debug/config_dump?namespace=ns` the Envoy resources served.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { applyIdleTimeout, httpServerOptions, resolveServerTimeouts, type ServerTimeouts } from '../security/server-timeouts.js';

/** What the debug server reads. */
export interface DebugSources {
  syncz(): unknown;
  status(): unknown;
  configDump(namespace: string): unknown;
  configStatus(): unknown;
}

/** Starts the debug server (slow clients timed out as on every meshlet server); resolves with it listening. */
export async function startDebugServer(
  sources: DebugSources, port: number, host: string, timeouts?: ServerTimeouts,
): Promise<{ server: Server; port: number }> {
  const resolved = resolveServerTimeouts(timeouts);
  const server = createServer(httpServerOptions(resolved), (req, res) => {
    const url = new URL(req.url ?? '/', 'http://debug');
    let body: unknown;
    switch (url.pathname) {
      case '/debug/syncz': body = sources.syncz(); break;
      case '/debug/status': body = sources.status(); break;
      case '/debug/config_status': body = sources.configStatus(); break;
      case '/debug/config_dump': body = sources.configDump(url.searchParams.get('namespace') ?? 'default'); break;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('endpoints: /debug/syncz /debug/status /debug/config_status /debug/config_dump?namespace=\n');
        return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body, null, 2));
  });
  applyIdleTimeout(server, resolved);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
