/**
 * The benchmark's upstream: a minimal node:http server in its own process,
 * listening on the ports given as arguments (0 = any), answering "ok".
 * Prints the bound ports as JSON on its first stdout line.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const ports = process.argv.slice(2).map(Number);
const bound: number[] = [];
for (const port of ports.length ? ports : [0]) {
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  bound.push((server.address() as AddressInfo).port);
}
process.stdout.write(`${JSON.stringify(bound)}\n`);
process.on('disconnect', () => process.exit(0));
