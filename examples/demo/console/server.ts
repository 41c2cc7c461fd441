/**
 * The demo console: an HTTP server in the demo's own process (next to the
 * control plane, like an operator's tools) serving the scenario switch, the
 * service graph, the recent traces and the Prometheus endpoint. It has its
 * own port, never behind the gateway's rate limit; the pet-shop page links
 * here and its scenario buttons POST here (CORS allows the page's origin).
 * The gateway also routes `/console/…`, `/metrics` and `/api/scenarios` here,
 * for curl users; those requests count toward the gateway's limit.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { extname } from 'node:path';
import { get as httpGet } from 'node:http';
import { MeshConfigError } from '../../../src/errors.js';
import { renderScenarioPanel, type PlaintextProbe } from '../client/page.js';
import { UnknownScenarioError, type ScenarioSwitch } from '../client/scenario-switch.js';
import { scenarios } from '../scenarios.js';
import type { GraphCollector } from './graph.js';
import { renderGraphPage, renderScenariosPage, renderTracesPage, type NavLinks } from './pages.js';
import { mergeExpositions } from './prometheus.js';
import type { TraceStore } from './traces.js';

/** What the console serves from. */
export interface ConsoleParts {
  switcher: () => ScenarioSwitch | undefined;
  traces: TraceStore;
  graph: GraphCollector;
  /** The pet shop's URL through the gateway, once it runs (the header's "Pet shop" link, `/` redirects there). */
  shopUrl: () => string | undefined;
}

const publicDir = new URL('../public/', import.meta.url);
const TYPES: Record<string, string> = { '.css': 'text/css', '.js': 'text/javascript', '.svg': 'image/svg+xml', '.png': 'image/png' };

/** Starts the console on 127.0.0.1 (port 0: a free one). */
export async function startConsole(parts: ConsoleParts, port = 0): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    handle(parts, req, res).catch((err: Error) => {
      if (!res.headersSent) json(res, 500, { error: err.message });
      else res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/** The pet shop (another origin: the gateway's port) reads the console's answers. */
const CORS = { 'access-control-allow-origin': '*' };

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...CORS }).end(JSON.stringify(body));
}

/**
 * Plaintext GET to calculate v1's app port: answered under PERMISSIVE, refused
 * under STRICT. It asks `/healthz`, which never sleeps, so the slow cat of the
 * timeout, retry and circuit-breaker scenarios cannot pass for a refusal; and
 * a request that got in but no answer in time says so instead of "refused".
 */
async function plaintextProbe(switcher: ScenarioSwitch | undefined): Promise<PlaintextProbe | undefined> {
  const port = switcher?.services.calculate[0]?.port;
  if (port === undefined) return undefined;
  const target = `127.0.0.1:${port}`;
  // A new connection each time (no keep-alive pool): PeerAuthentication is decided per connection.
  return new Promise((resolve) => {
    let timedOut = false;
    const req = httpGet({ host: '127.0.0.1', port, path: '/healthz', agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.once('end', () => resolve({ target, refused: false, detail: `HTTP ${res.statusCode}` }));
    });
    req.once('timeout', () => {
      timedOut = true;
      req.destroy();
    });
    req.once('error', (err: NodeJS.ErrnoException) => {
      if (timedOut) resolve({ target, refused: false, detail: 'the plaintext connection was taken, but no answer within 2 s' });
      else resolve({ target, refused: true, detail: `${err.code ?? err.message} — the server closed the plaintext connection` });
    });
  });
}

async function scenarioState(switcher: ScenarioSwitch | undefined, error?: string) {
  const probe = await plaintextProbe(switcher);
  return {
    probe,
    active: switcher?.active?.name,
    ...(switcher?.active?.counts !== undefined && { counts: switcher.active.counts }),
    scenarios: scenarios.map((s) => ({ name: s.name, title: s.title, section: s.section, file: s.file, expect: s.expect })),
    yaml: switcher?.activeYaml ?? '',
    serviceEntries: switcher?.serviceEntries ?? '',
    html: renderScenarioPanel(switcher?.active, switcher?.activeYaml ?? '', error, probe),
    ...(error !== undefined && { error }),
  };
}

async function handle(parts: ConsoleParts, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://console');
  // `/api/scenarios` (the first demo's API) is the same as `/console/api/scenarios`.
  const path = url.pathname.startsWith('/api/scenarios') ? `/console${url.pathname}` : url.pathname;
  const switcher = parts.switcher();
  const links: NavLinks = { shop: parts.shopUrl() ?? '/', console: '' };
  if (req.method === 'OPTIONS') {
    res.writeHead(204, { ...CORS, 'access-control-allow-methods': 'GET, POST', 'access-control-max-age': '600' }).end();
    return;
  }
  if (path === '/' || path === '/favicon.ico') {
    // The console's own port has no shop: send the "Pet shop" link's users to the gateway.
    const shop = parts.shopUrl();
    if (path === '/' && shop) {
      res.writeHead(302, { location: shop }).end();
      return;
    }
  }
  if (path === '/console/api/scenarios' && req.method === 'GET') return json(res, 200, await scenarioState(switcher));
  const apply = /^\/console\/api\/scenarios\/([^/]+)$/.exec(path);
  if (apply && req.method === 'POST') {
    if (!switcher) return json(res, 503, { error: 'the demo is still starting' });
    try {
      await switcher.apply(decodeURIComponent(apply[1]!));
      return json(res, 200, await scenarioState(switcher));
    } catch (err) {
      const status = err instanceof UnknownScenarioError ? 404 : err instanceof MeshConfigError ? 400 : 500;
      return json(res, status, await scenarioState(switcher, (err as Error).message));
    }
  }
  if (path === '/console/api/graph') return json(res, 200, await parts.graph.graph());
  if (path === '/console/api/traces') return json(res, 200, parts.traces.list(Number(url.searchParams.get('limit') ?? 50) || 50));
  const trace = /^\/console\/api\/traces\/([0-9a-f]{32})$/.exec(path);
  if (trace) {
    const spans = parts.traces.get(trace[1]!);
    return spans ? json(res, 200, { traceId: trace[1], spans }) : json(res, 404, { error: 'no such trace (only recent traces are kept)' });
  }
  if (path === '/console' || path === '/console/' || path === '/console/scenarios') return html(res, renderScenariosPage(links, (await scenarioState(switcher)).html));
  if (path === '/console/graph') return html(res, renderGraphPage(links));
  if (path === '/console/traces') return html(res, renderTracesPage(links));
  if (path === '/metrics' || path.startsWith('/metrics/')) {
    const all = await parts.graph.expositions();
    const only = path.slice('/metrics/'.length);
    const texts = all.filter((e) => !only || e.workload === only).map((e) => e.text);
    if (only && texts.length === 0) return json(res, 404, { error: `no workload ${only}; known: ${all.map((e) => e.workload).join(', ')}` });
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(mergeExpositions(texts));
    return;
  }
  const asset = /^\/console\/assets\/([a-z0-9-]+\.(?:css|js|svg))$/.exec(path);
  if (asset) {
    const body = await readFile(new URL(asset[1]!, publicDir)).catch(() => undefined);
    if (body) {
      res.writeHead(200, { 'content-type': TYPES[extname(asset[1]!)] ?? 'application/octet-stream' }).end(body);
      return;
    }
  }
  json(res, 404, { error: `not found: ${path}` });
}

function html(res: ServerResponse, body: string): void {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(body);
}
