/**
 * `npm run demo` — starts the pet-shop demo on 127.0.0.1 and prints one URL.
 *
 *   node --import tsx examples/demo/main.ts [--scenario canary] [--port 8080] [--api gateway]
 *
 * Ctrl-C (SIGINT) or SIGTERM stops every child process and removes the
 * demo's temporary directories, also while it is still starting.
 */
import { parseArgs } from 'node:util';
import { findScenario, scenarios, startDemo } from './index.js';

const usage = `usage: npm run demo -- [--scenario <name>] [--port <port>] [--api istio|gateway]

options:
  -s, --scenario <name>  the scenario applied at start (default baseline)
  -a, --api <dialect>    istio (VirtualService, default) or gateway (Gateway API HTTPRoutes
                         for baseline, timeout, retry, canary, blue-green, dark-release)
  -p, --port <port>      the page's port (default 8080; a free one if taken, 0 for any)
  -h, --help             this help

scenarios:
${scenarios.map((s) => `  ${s.name.padEnd(Math.max(...scenarios.map((x) => x.name.length)))}  ${s.section} ${s.title}: ${s.expect}`).join('\n')}
`;

/** A bad command line: the message and the usage on stderr, exit 2 (no stack trace). */
function usageError(message: string): never {
  process.stderr.write(`demo: ${message}\n\n${usage}`);
  process.exit(2);
}

let values: { scenario: string; port: string; api: string; help: boolean };
try {
  ({ values } = parseArgs({
    options: {
      scenario: { type: 'string', short: 's', default: 'baseline' },
      port: { type: 'string', short: 'p', default: '8080' },
      api: { type: 'string', short: 'a', default: 'istio' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (err) {
  usageError((err as Error).message);
}

if (values.help) {
  process.stdout.write(usage);
  process.exit(0);
}
if (!/^\d+$/.test(values.port) || Number(values.port) > 65535) usageError(`--port: expected a port number 0-65535, got "${values.port}"`);
if (values.api !== 'istio' && values.api !== 'gateway') usageError(`--api: expected istio or gateway, got "${values.api}"`);
if (!findScenario(values.scenario)) usageError(`unknown scenario "${values.scenario}"; known: ${scenarios.map((s) => s.name).join(', ')}`);

const say = (line: string): void => void process.stdout.write(`${line}\n`);
say('meshlet pet-shop demo');

// Signals are handled from the first line: a Ctrl-C while the processes start aborts the start,
// which stops what started and removes the temporary directories (the CA's key among them).
const starting = new AbortController();
let stop: ((signal: string) => void) | undefined;
const onSignal = (signal: NodeJS.Signals): void => {
  if (stop) stop(signal);
  else if (!starting.signal.aborted) {
    say(`\n${signal}: stopping while starting…`);
    starting.abort(new Error(`${signal} while starting`));
  }
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const demo = await startDemo({ scenario: values.scenario, port: Number(values.port), api: values.api as 'istio' | 'gateway', log: say, signal: starting.signal }).catch((err: unknown) => {
  if (starting.signal.aborted) process.exit(130);
  process.stderr.write(`demo failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});

let stopping = false;
stop = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  say(`\n${signal}: stopping ${demo.services.length} processes…`);
  void demo.close().then(() => process.exit(0));
};

say(`\nready — open ${demo.url}  (Ctrl-C to stop)`);
