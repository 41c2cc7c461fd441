/**
 * `npm run demo` — starts the pet-shop demo on 127.0.0.1 and prints one URL.
 *
 *   node --import tsx examples/demo/main.ts [--scenario canary] [--port 8080]
 *
 * Ctrl-C (SIGINT) or SIGTERM stops every child process.
 */
import { parseArgs } from 'node:util';
import { scenarios, startDemo } from './index.js';

const { values } = parseArgs({
  options: {
    scenario: { type: 'string', short: 's', default: 'baseline' },
    port: { type: 'string', short: 'p', default: '8080' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  process.stdout.write(`usage: npm run demo -- [--scenario <name>] [--port <port>]\n\nscenarios:\n${scenarios.map((s) => `  ${s.name.padEnd(14)} ${s.section} ${s.title}: ${s.expect}`).join('\n')}\n`);
  process.exit(0);
}

const say = (line: string): void => void process.stdout.write(`${line}\n`);
say('meshlet pet-shop demo');
const demo = await startDemo({ scenario: values.scenario, port: Number(values.port), log: say }).catch((err: unknown) => {
  process.stderr.write(`demo failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});

let stopping = false;
const stop = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  say(`\n${signal}: stopping ${demo.services.length} processes…`);
  void demo.close().then(() => process.exit(0));
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));

say(`\nready — open ${demo.url}  (Ctrl-C to stop)`);
