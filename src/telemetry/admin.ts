/**
 * The mesh's admin endpoint, named after Envoy's (port 15000): Prometheus
 * scrapes `/stats/prometheus` (or `/metrics`), people read `/config_dump`,
 * `/clusters` and `/ready`. Listens on loopback unless told otherwise, since
 * the config dump describes the whole mesh.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Envoy's admin port, the default. */
export const DEFAULT_ADMIN_PORT = 15000;

/** What the admin server serves; each is called per request. */
export interface AdminHandlers {
  /** Prometheus text exposition. */
  metrics: () => string | Promise<string>;
  /** Content type of the exposition; default Prometheus text 0.0.4. */
  metricsContentType?: string;
  /** The config dump, served as JSON. */
  configDump?: () => unknown | Promise<unknown>;
  /** Clusters and endpoints: a string is served as text (Envoy's format), anything else as JSON. */
  clusters?: () => unknown | Promise<unknown>;
  /** Whether the mesh has a usable config (first snapshot applied / first ADS response). */
  ready?: () => boolean;
}

/** Options of {@link createAdminServer}. */
export interface AdminServerOptions {
  /** Port; default {@link DEFAULT_ADMIN_PORT}; 0 picks a free one. */
  port?: number;
  /** Address; default `127.0.0.1`. */
  host?: string;
  handlers: AdminHandlers;
}

/** A running admin server. */
export interface AdminServer {
  /** The port actually bound. */
  readonly port: number;
  /** The address bound. */
  readonly host: string;
  /** Stops listening and closes open connections; idempotent. */
  close(): Promise<void>;
}

const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Starts the admin server; resolves once it listens. */
export async function createAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const { handlers } = options;
  const host = options.host ?? '127.0.0.1';
  const server: Server = createServer((req, res) => {
    handle(handlers, req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `${err instanceof Error ? err.message : String(err)}\n`);
      else res.destroy();
    });
  });
  // Scrapers keep connections alive; do not let them hold the process or close().
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? DEFAULT_ADMIN_PORT, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port,
    host,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function handle(handlers: AdminHandlers, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    return;
  }
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  switch (path) {
    case '/stats/prometheus':
    case '/metrics':
      send(res, 200, handlers.metricsContentType ?? PROMETHEUS_CONTENT_TYPE, await handlers.metrics());
      return;
    case '/config_dump':
      if (handlers.configDump === undefined) break;
      send(res, 200, 'application/json', `${JSON.stringify(await handlers.configDump(), null, 2)}\n`);
      return;
    case '/clusters': {
      if (handlers.clusters === undefined) break;
      const body = await handlers.clusters();
      if (typeof body === 'string') send(res, 200, 'text/plain; charset=utf-8', body);
      else send(res, 200, 'application/json', `${JSON.stringify(body, null, 2)}\n`);
      return;
    }
    case '/ready': {
      // Envoy answers LIVE / 200 when ready, its state and 503 otherwise.
      const ready = handlers.ready === undefined ? true : handlers.ready();
      send(res, ready ? 200 : 503, 'text/plain; charset=utf-8', ready ? 'LIVE\n' : 'PRE_INITIALIZING\n');
      return;
    }
    case '/': {
      const paths = ['/stats/prometheus', '/metrics', '/ready'];
      if (handlers.configDump) paths.push('/config_dump');
      if (handlers.clusters) paths.push('/clusters');
      send(res, 200, 'text/plain; charset=utf-8', `${paths.join('\n')}\n`);
      return;
    }
  }
  send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.statusCode = status;
  res.setHeader('content-type', type);
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
