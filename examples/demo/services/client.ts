/**
 * client (Express): the page users open. Every call it makes to calculate,
 * db and image goes through its meshlet mesh (embedded mode), whose config is
 * the generated ServiceEntries plus the active scenario's Istio YAML.
 *
 * Env: PORT (PORT_FALLBACK=1: a free port when taken), DEMO_TOPOLOGY (JSON,
 * see ../topology.ts), DEMO_SCENARIO (initial scenario), DEMO_SLEEP_MS
 * (replaces the scenarios' 20 s sleep).
 */
import express, { type Request } from 'express';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createMesh, MeshConfigError } from '../../../src/index.js';
import { buildView, callCalculate } from '../client/calls.js';
import { renderPage, renderResult, renderScenarioPanel } from '../client/page.js';
import { ScenarioSwitch, UnknownScenarioError } from '../client/scenario-switch.js';
import { scenarios } from '../scenarios.js';
import type { Topology } from '../topology.js';
import { exitOnSignal, portFromEnv, reportReady } from './runtime.js';

const topology = JSON.parse(process.env.DEMO_TOPOLOGY ?? 'null') as Topology | null;
if (!topology) throw new Error('client: DEMO_TOPOLOGY is not set (start the demo with examples/demo/main.ts)');

const mesh = await createMesh({
  workload: { name: 'client', namespace: 'default', labels: { app: 'client', version: 'v1' }, serviceAccount: 'client' },
});
const sleepOverride = process.env.DEMO_SLEEP_MS === undefined ? undefined : Number(process.env.DEMO_SLEEP_MS);
const switcher = new ScenarioSwitch({
  target: { apply: (yaml) => mesh.apply(yaml) },
  topology,
  ...(sleepOverride !== undefined && Number.isFinite(sleepOverride) && { sleepMsOverride: sleepOverride }),
});
await switcher.apply(process.env.DEMO_SCENARIO || 'baseline');

const app = express();
app.use('/assets', express.static(fileURLToPath(new URL('../public/', import.meta.url)), { index: false }));

/** The numbers of the form, defaulting to the talk's kind of example. */
function operands(req: Request): { x: number; y: number } {
  const num = (v: unknown, d: number): number => (typeof v === 'string' && v !== '' && Number.isFinite(Number(v)) ? Number(v) : d);
  return { x: num(req.query.x, 3), y: num(req.query.y, 4) };
}

/** The dark-release header, forwarded from the browser to calculate. */
const versionHeader = (req: Request): string | undefined => req.get('version') || undefined;

const panel = (error?: string): string => renderScenarioPanel(switcher.active, switcher.activeYaml, error);

app.get('/', async (req, res) => {
  const { x, y } = operands(req);
  const view = await buildView(mesh, x, y, versionHeader(req));
  res.type('html').set('cache-control', 'no-store').send(renderPage(view, panel(), switcher.serviceEntries));
});

app.get('/api/view', async (req, res) => {
  const { x, y } = operands(req);
  const view = await buildView(mesh, x, y, versionHeader(req));
  res.set('cache-control', 'no-store').json({ html: renderResult(view), view: { ...view, image: view.image ? '(data uri)' : undefined } });
});

app.get('/api/calculate', async (req, res) => {
  const { x, y } = operands(req);
  res.set('cache-control', 'no-store').json(await callCalculate(mesh, x, y, versionHeader(req)));
});

const scenarioState = () => ({ active: switcher.active?.name, scenarios: scenarios.map((s) => ({ name: s.name, title: s.title, section: s.section, file: s.file, expect: s.expect })) });

app.get('/api/scenarios', (_req, res) => {
  res.json({ ...scenarioState(), yaml: switcher.activeYaml, html: panel() });
});

app.post('/api/scenarios/:name', async (req, res) => {
  try {
    await switcher.apply(req.params.name);
    res.json({ ...scenarioState(), yaml: switcher.activeYaml, html: panel() });
  } catch (err) {
    const status = err instanceof UnknownScenarioError ? 404 : err instanceof MeshConfigError ? 400 : 500;
    const message = (err as Error).message;
    res.status(status).json({ ...scenarioState(), error: message, html: panel(message) });
  }
});

app.get('/api/config-dump', (_req, res) => {
  res.json(mesh.configDump());
});

const server = createServer(app);
const port = await listen(portFromEnv(), process.env.PORT_FALLBACK === '1');
reportReady('client', port);
exitOnSignal(async () => {
  server.closeAllConnections();
  await Promise.all([new Promise((resolve) => server.close(resolve)), mesh.close()]);
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
