/**
 * Real HTTP servers on 127.0.0.1 for tests: each answers with its own name
 * and counts the requests it saw; a handler can override the answer.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestServer {
  readonly name: string;
  port: number;
  /** requests seen so far */
  hits: number;
  /** the last request's headers */
  lastHeaders: IncomingMessage['headers'] | undefined;
  lastUrl: string | undefined;
  close(): Promise<void>;
}

export type TestHandler = (req: IncomingMessage, res: ServerResponse, server: TestServer) => void;

const answerName: TestHandler = (_req, res, server) => {
  res.setHeader('content-type', 'text/plain');
  res.end(server.name);
};

/** Starts a server that answers with `name` (or runs `handler`). */
export async function startServer(name: string, handler: TestHandler = answerName): Promise<TestServer> {
  const sockets = new Set<import('node:net').Socket>();
  const state = { name, port: 0, hits: 0, lastHeaders: undefined, lastUrl: undefined } as TestServer & { server?: Server };
  const server = createServer((req, res) => {
    state.hits++;
    state.lastHeaders = req.headers;
    state.lastUrl = req.url;
    handler(req, res, state);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  state.close = () => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  });
  return state;
}

/** Counts response bodies: how many times each distinct body came back. */
export function tally(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
