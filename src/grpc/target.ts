/**
 * Parses a grpc-js target (`host:port`, `dns:///host:port`, `dns:host`,
 * `[::1]:port`) into the host and port the mesh routes on. gRPC's default
 * port is 443.
 */

import type { ChannelCredentials, ChannelOptions } from '@grpc/grpc-js';

/** A parsed channel target. */
export interface GrpcTarget {
  /** lower-case host name or address, without brackets */
  readonly host: string;
  readonly port: number;
  /** `host:port` as the :authority header carries it */
  readonly authority: string;
}

/** Parses a grpc-js channel target; undefined for unix sockets and other schemes the mesh does not route. */
export function parseTarget(target: string): GrpcTarget | undefined {
  let rest = target;
  const scheme = /^([a-z][a-z0-9+.-]*):(.*)$/i.exec(rest);
  if (scheme && !/^\d+$/.test(scheme[2]!)) {
    if (scheme[1]!.toLowerCase() !== 'dns') return undefined;
    rest = scheme[2]!;
    if (rest.startsWith('//')) rest = rest.slice(rest.indexOf('/', 2) + 1); // dns://authority/host:port
  }
  let host: string;
  let port = 443;
  if (rest.startsWith('[')) {
    const end = rest.indexOf(']');
    if (end === -1) return undefined;
    host = rest.slice(1, end);
    if (rest[end + 1] === ':') port = Number(rest.slice(end + 2));
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon !== -1 && rest.indexOf(':') === colon) {
      host = rest.slice(0, colon);
      port = Number(rest.slice(colon + 1));
    } else {
      host = rest;
    }
  }
  if (host === '' || !Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
  host = host.toLowerCase();
  return { host, port, authority: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}` };
}

/** Where a meshed channel sends its calls. */
export interface CallTarget {
  readonly host: string;
  readonly port: number;
  readonly authority: string;
  readonly credentials: ChannelCredentials;
  readonly options: ChannelOptions;
}
