/**
 * Express middleware (Express 5 and 4, or any connect-style stack):
 * `app.use(mesh.express())` before the routes. Each request gets a SERVER
 * span from its W3C / B3 headers, the mesh's inbound policy (local rate limit,
 * later authorization), `reporter="destination"` metrics, and runs the rest of
 * the stack inside its trace context, so outbound mesh calls made while
 * handling it are child spans with no header code in the app.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type InboundExchange, type InboundMesh, inboundServerFor } from './inbound.js';

/** A connect/Express middleware over Node's request and response. */
export type ExpressMiddleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/**
 * Creates the mesh's Express middleware. Mount it first (`app.use(…)`), so
 * body parsers and routes run inside the request's context. Requests the
 * inbound policy refuses are answered here (429 with `x-meshlet-flags: RL`).
 */
export function expressMiddleware(mesh: InboundMesh): ExpressMiddleware {
  const server = inboundServerFor(mesh);
  return function meshlet(req, res, next) {
    let exchange: InboundExchange;
    try {
      exchange = server.begin(req, res, undefined, expressRoute);
    } catch (err) {
      next(err);
      return;
    }
    if (exchange.localReply !== undefined) {
      exchange.sendLocalReply();
      return;
    }
    server.run(exchange, next);
  };
}

/** Express sets `req.route` once a route matched: its template is the span's http.route. */
function expressRoute(req: IncomingMessage): string | undefined {
  const r = req as IncomingMessage & { route?: { path?: unknown }; baseUrl?: string };
  const path = r.route?.path;
  return typeof path === 'string' ? `${r.baseUrl ?? ''}${path}` : undefined;
}
