/**
 * The ingress gateway: the one port the browser talks to. A mesh workload
 * (`istio-ingressgateway`, labels `istio: ingressgateway`) that forwards
 * each request through its mesh, so the gateway's calls get routing, policy
 * (the global rate limit of scenario 07 lives on its calls to client),
 * a CLIENT span that starts the trace, and reporter="source" metrics.
 *
 * Routes, as the Gateway + VirtualService of the talk (port 80 → client):
 * `/console/…`, `/metrics` and `/api/scenarios` go to the demo console (the
 * operator's pages, never rate limited), everything else to client.
 *
 * Why not `createGateway` (meshlet/gateway): in control-plane mode it needs
 * translate() to merge Gateway resources, and gateway virtual hosts do not
 * carry RateLimit yet; this file is the whole swap once they do.
 *
 * Env: PORT (PORT_FALLBACK=1), DEMO_XDS.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { meshUrl } from '../topology.js';
import { exitOnSignal, portFromEnv, reportReady } from './runtime.js';
import { startWorkload } from './workload.js';

const workload = await startWorkload({ name: 'istio-ingressgateway', labels: { istio: 'ingressgateway', app: 'istio-ingressgateway' }, serviceAccount: 'istio-ingressgateway' });
const { mesh } = workload;

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host']);

/** Which mesh service a path goes to. */
const backendOf = (path: string): string =>
  path.startsWith('/console/') || path === '/console' || path.startsWith('/metrics') || path.startsWith('/api/scenarios') ? meshUrl('console') : meshUrl('client');

async function forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = req.url ?? '/';
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
  headers['x-forwarded-host'] = req.headers.host ?? '';
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  try {
    const upstream = await mesh.request(backendOf(path) + path, {
      method: (req.method ?? 'GET') as 'GET',
      headers,
      ...(hasBody && { body: req }),
    });
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(upstream.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
    res.writeHead(upstream.statusCode, out);
    for await (const chunk of upstream.body) res.write(chunk);
    res.end();
  } catch (err) {
    if (!res.headersSent) res.writeHead(503, { 'content-type': 'text/plain', 'x-meshlet-flags': 'UF' });
    res.end(`gateway: ${(err as Error).message}`);
  }
}

// The gateway starts the trace: forward() runs in a context where outbound spans are roots
// (or children of the browser's traceparent, when it sends one).
const server = createServer((req, res) => {
  const context = mesh.telemetry.propagator.extract(req.headers);
  void mesh.context.run(context, () => forward(req, res));
});
server.requestTimeout = 0;

const port = await listen(portFromEnv(), process.env.PORT_FALLBACK === '1');
reportReady('istio-ingressgateway', port, workload.adminPort);
exitOnSignal(async () => {
  server.closeAllConnections();
  await Promise.all([new Promise((resolve) => server.close(resolve)), workload.close()]);
});

/** Listens on 127.0.0.1:port; with fallback, a taken port means "pick a free one". */
function listen(wanted: number, fallback: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      if (err.code === 'EADDRINUSE' && fallback && wanted !== 0) {
        listen(0, false).then(resolve, reject);
        return;
      }
      reject(err);
    };
    server.once('error', onError);
    server.listen(wanted, '127.0.0.1', () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
