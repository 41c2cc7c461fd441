/**
 * client (Express): the page users open (through the ingress gateway). Every
 * call it makes to calculate, db and image goes through its meshlet mesh,
 * which follows the demo's control plane over xDS; its inbound middleware
 * joins the gateway's trace and records reporter="destination" metrics.
 *
 * Env: PORT (PORT_FALLBACK=1: a free port when taken), DEMO_XDS (the control
 * plane), DEMO_CONSOLE (the demo console's base URL: scenario panel, graph,
 * traces — operator traffic, so plain fetch, not the mesh).
 */
import express, { type Request, type Response } from 'express';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { expressMiddleware } from '../../../src/http/express.js';
import { buildView, callCalculate, type CalculateProtocol } from '../client/calls.js';
import { renderPage, renderResult, type PageAssets } from '../client/page.js';
import { exitOnSignal, portFromEnv, reportReady } from './runtime.js';
import { startWorkload } from './workload.js';

const consoleUrl = process.env.DEMO_CONSOLE;
if (!consoleUrl) throw new Error('client: DEMO_CONSOLE is not set (start the demo with examples/demo/main.ts)');

const workload = await startWorkload({ name: 'client', labels: { app: 'client', version: 'v1' }, serviceAccount: 'client' });
const { mesh } = workload;

const publicDir = new URL('../public/', import.meta.url);
// Inlined into the page: one page load is one request through the gateway, as the talk counts accesses.
const assets: PageAssets = {
  consoleOrigin: consoleUrl,
  css: ['app.css', 'console.css'].map((f) => readFileSync(new URL(f, publicDir), 'utf8')).join('\n'),
  // `</script` cannot appear inside an inline script; the file has none, and this keeps it so.
  js: readFileSync(new URL('app.js', publicDir), 'utf8').replaceAll('</script', '<\\/script'),
};

const app = express();
app.use('/assets', express.static(fileURLToPath(new URL('../public/', import.meta.url)), { index: false }));
app.use(expressMiddleware(mesh));

/** The numbers of the form, defaulting to the talk's kind of example. */
function operands(req: Request): { x: number; y: number } {
  const num = (v: unknown, d: number): number => (typeof v === 'string' && v !== '' && Number.isFinite(Number(v)) ? Number(v) : d);
  return { x: num(req.query.x, 3), y: num(req.query.y, 4) };
}

/** `?proto=grpc`: the page's gRPC toggle. */
const protocolOf = (req: Request): CalculateProtocol => (req.query.proto === 'grpc' ? 'grpc' : 'http');

/** The dark-release header, forwarded from the browser to calculate. */
const versionHeader = (req: Request): string | undefined => req.get('version') || undefined;

interface PanelState {
  html: string;
  serviceEntries: string;
}

/** The scenario panel as the console renders it (the console owns the scenario). */
async function panelState(): Promise<PanelState> {
  try {
    const res = await fetch(`${consoleUrl}/console/api/scenarios`, { signal: AbortSignal.timeout(3000) });
    return (await res.json()) as PanelState;
  } catch (err) {
    return { html: `<p class="apply-error">demo console unreachable: ${(err as Error).message}</p>`, serviceEntries: '' };
  }
}

app.get('/', async (req, res) => {
  const { x, y } = operands(req);
  const [view, panel] = await Promise.all([buildView(mesh, x, y, versionHeader(req), protocolOf(req)), panelState()]);
  res.type('html').set('cache-control', 'no-store').send(renderPage(view, panel.html, panel.serviceEntries, assets));
});

app.get('/api/view', async (req, res) => {
  const { x, y } = operands(req);
  const view = await buildView(mesh, x, y, versionHeader(req), protocolOf(req));
  res.set('cache-control', 'no-store').json({ html: renderResult(view), view: { ...view, image: view.image ? '(data uri)' : undefined } });
});

app.get('/api/calculate', async (req, res) => {
  const { x, y } = operands(req);
  res.set('cache-control', 'no-store').json(await callCalculate(mesh, x, y, versionHeader(req), protocolOf(req)));
});

app.get('/api/config-dump', (_req, res) => {
  res.json(mesh.configDump());
});

/** The console's API and pages, for a browser that reached the client without the gateway. */
async function toConsole(req: Request, res: Response): Promise<void> {
  try {
    const path = req.originalUrl.startsWith('/console') || req.originalUrl.startsWith('/metrics') ? req.originalUrl : `/console${req.originalUrl}`;
    const upstream = await fetch(consoleUrl + path, { method: req.method, signal: AbortSignal.timeout(30_000) });
    res.status(upstream.status).type(upstream.headers.get('content-type') ?? 'application/octet-stream').send(Buffer.from(await upstream.arrayBuffer()));
  } catch (err) {
    res.status(502).json({ error: `demo console: ${(err as Error).message}` });
  }
}
app.all(['/api/scenarios', '/api/scenarios/{*rest}', '/console/{*rest}', '/metrics', '/metrics/{*rest}'], toConsole);

// mesh.createServer: mTLS and plaintext on one port per PeerAuthentication, AuthorizationPolicy enforced.
const server = mesh.createServer(app);
const port = await listen(portFromEnv(), process.env.PORT_FALLBACK === '1');
reportReady('client', port, workload.adminPort);
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
