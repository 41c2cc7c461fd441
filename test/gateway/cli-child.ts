// Child process for cli.test.ts: `meshlet gateway …` as src/cli/main.ts will run it.
import { runGatewayCli } from '../../src/gateway/cli.js';

const argv = process.argv.slice(2);
const gw = await runGatewayCli(argv);
process.stdout.write(`${JSON.stringify({ port: gw.port })}\n`);
