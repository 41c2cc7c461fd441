/**
 * Envoy v3 / xds / udpa protos, loaded once and lazily from the copies that
 * ship inside @grpc/grpc-js-xds, plus meshlet's own small protos (Istio's CA
 * service) under proto/. One protobufjs Root encodes and decodes resources and
 * `Any` values by type URL; gRPC service definitions come from proto-loader
 * with the same options.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import * as protoLoader from '@grpc/proto-loader';
import type { GrpcObject } from '@grpc/grpc-js';
import { loadPackageDefinition } from '@grpc/grpc-js';

const require = createRequire(import.meta.url);

/** Include directories for every proto meshlet loads. */
export function protoIncludeDirs(): string[] {
  const xdsRoot = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const own = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'proto');
  return [
    join(xdsRoot, 'deps', 'envoy-api'),
    join(xdsRoot, 'deps', 'xds'),
    join(xdsRoot, 'deps', 'googleapis'),
    join(xdsRoot, 'deps', 'protoc-gen-validate'),
    own,
  ];
}

/** The resource and filter protos whose messages may appear inside `Any`. */
const resourceFiles = [
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/http/ratelimit/v3/rate_limit.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/filters/cel/v3/cel.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/service/ratelimit/v3/rls.proto',
  'google/protobuf/struct.proto',
  'google/rpc/status.proto',
];

/** Options shared by decoding and proto-loader, matching @grpc/grpc-js-xds. */
export const protoObjectOptions = { longs: String, enums: String, defaults: false, oneofs: true, json: true } as const;

let root: protobuf.Root | undefined;

/** The protobufjs Root with every Envoy resource type (loaded on first use). */
export function envoyRoot(): protobuf.Root {
  if (root) return root;
  const dirs = protoIncludeDirs();
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => {
    for (const dir of dirs) {
      const candidate = join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return target;
  };
  r.loadSync(resourceFiles, { keepCase: true });
  r.resolveAll();
  root = r;
  return r;
}

function typeFor(typeUrl: string): protobuf.Type {
  const name = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
  return envoyRoot().lookupType(name);
}

/** Encodes a resource object into a google.protobuf.Any (`{ type_url, value }`). */
export function encodeAny(typeUrl: string, resource: object): { type_url: string; value: Buffer } {
  const type = typeFor(typeUrl);
  const message = type.fromObject(resource as Record<string, unknown>);
  return { type_url: typeUrl, value: Buffer.from(type.encode(message).finish()) };
}

/** Decodes a google.protobuf.Any into the resource object form (see config/envoy.ts). */
export function decodeAny<T = Record<string, unknown>>(any: { type_url: string; value: Uint8Array }): T {
  const type = typeFor(any.type_url);
  return type.toObject(type.decode(any.value), protoObjectOptions) as T;
}

/** Round-trips an object through its protobuf type: what a peer would see after decoding. */
export function normalize<T extends object>(typeUrl: string, resource: T): T {
  return decodeAny<T>(encodeAny(typeUrl, resource));
}

const packages = new Map<string, GrpcObject>();

/** Loads proto files as a grpc-js package (service definitions), cached per file list. */
export function loadGrpcPackage(files: string[]): GrpcObject {
  const key = files.join('\0');
  let pkg = packages.get(key);
  if (!pkg) {
    const def = protoLoader.loadSync(files, { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true, json: true, includeDirs: protoIncludeDirs() });
    pkg = loadPackageDefinition(def);
    packages.set(key, pkg);
  }
  return pkg;
}
