/**
 * Fastify plugin (Fastify 5): `fastify.register(mesh.fastify)`. Its hooks
 * apply to the whole app (the plugin skips Fastify's encapsulation, as
 * fastify-plugin does). `onRequest` starts telemetry, applies the inbound
 * policy and runs the request in its trace context; `preHandler` re-enters
 * that context, so the handler keeps it whatever the body parser did.
 *
 * Path normalization: Fastify routes before any hook runs, so `onRequest`
 * can only normalize `request.url` and authorize on the normalized path
 * after the route was picked from the raw one. For routing on the path the
 * sidecar would forward, pass the plugin's `rewriteUrl` to the constructor:
 * `Fastify({ rewriteUrl: mesh.fastify.rewriteUrl })` — it normalizes before
 * the router and `onRequest` then answers what the sidecar refuses.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type InboundExchange, type InboundMesh, inboundServerFor } from './inbound.js';

/** The parts of a Fastify request the plugin reads. */
export interface FastifyRequestLike {
  raw: IncomingMessage;
  routeOptions?: { url?: string };
}

/** The parts of a Fastify reply the plugin uses. */
export interface FastifyReplyLike {
  raw: ServerResponse;
  code(status: number): FastifyReplyLike;
  header(name: string, value: string): FastifyReplyLike;
  send(payload?: unknown): FastifyReplyLike;
}

type HookDone = (err?: Error) => void;

/** The parts of a Fastify instance the plugin uses. */
export interface FastifyInstanceLike {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  addHook(name: 'onRequest' | 'preHandler', hook: (request: any, reply: any, done: HookDone) => void): unknown;
}

/** A Fastify plugin that is not encapsulated (`Symbol.for('skip-override')`). */
export interface MeshFastifyPlugin {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  (instance: any, options: unknown, done: (err?: Error) => void): void;
  /**
   * For `Fastify({ rewriteUrl })`: the sidecar's path normalization before
   * Fastify's router, so routes match the normalized path. A request the
   * sidecar refuses keeps its URL here and is answered by `onRequest`.
   */
  rewriteUrl: (req: IncomingMessage) => string;
  [key: symbol]: unknown;
}

/**
 * Creates the mesh's Fastify plugin. Register it before the routes' own
 * hooks; requests the inbound policy refuses are answered from `onRequest`
 * (429 with `x-meshlet-flags: RL`).
 */
export function fastifyPlugin(mesh: InboundMesh): MeshFastifyPlugin {
  const server = inboundServerFor(mesh);
  const onRequest = (request: FastifyRequestLike, reply: FastifyReplyLike, done: HookDone): void => {
    let exchange: InboundExchange;
    try {
      exchange = server.begin(request.raw, reply.raw, request.routeOptions?.url);
    } catch (err) {
      done(err as Error);
      return;
    }
    const local = exchange.localReply;
    if (local !== undefined) {
      // Replying from a hook: do not call done (Fastify docs, "Respond to a request from a hook").
      reply.code(local.status);
      for (const [name, value] of exchange.localReplyHeaders()) reply.header(name, value);
      reply.send(local.body);
      return;
    }
    server.run(exchange, done);
  };
  const preHandler = (request: FastifyRequestLike, _reply: FastifyReplyLike, done: HookDone): void => {
    server.reenter(request.raw, done);
  };
  const plugin = ((instance: FastifyInstanceLike, _options: unknown, done: (err?: Error) => void): void => {
    instance.addHook('onRequest', onRequest);
    instance.addHook('preHandler', preHandler);
    done();
  }) as MeshFastifyPlugin;
  // What fastify-plugin sets: hooks apply to the parent (whole app), and a readable name.
  plugin.rewriteUrl = (req: IncomingMessage): string => {
    server.normalize(req);
    return req.url ?? '/';
  };
  plugin[Symbol.for('skip-override')] = true;
  plugin[Symbol.for('fastify.display-name')] = 'meshlet';
  return plugin;
}
