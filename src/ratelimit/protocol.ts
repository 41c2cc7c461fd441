/**
 * The gRPC protocol of the rate-limit service, loaded from Envoy's
 * `envoy/service/ratelimit/v3/rls.proto` (shipped in @grpc/grpc-js-xds).
 * Shared by the server and the client so neither loads the other's deps.
 */
import type * as grpc from '@grpc/grpc-js';
import { loadGrpcPackage } from '../xds/protos.js';

const RLS_PROTO = 'envoy/service/ratelimit/v3/rls.proto';

/** The full gRPC method name, for logs and interceptors. */
export const SHOULD_RATE_LIMIT_METHOD = '/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit';

function serviceConstructor(): grpc.ServiceClientConstructor {
  const pkg = loadGrpcPackage([RLS_PROTO]) as unknown as {
    envoy: { service: { ratelimit: { v3: { RateLimitService: grpc.ServiceClientConstructor } } } };
  };
  return pkg.envoy.service.ratelimit.v3.RateLimitService;
}

/** The grpc-js service definition of `envoy.service.ratelimit.v3.RateLimitService`. */
export function rateLimitServiceDefinition(): grpc.ServiceDefinition {
  return serviceConstructor().service;
}

/** The grpc-js client constructor of `envoy.service.ratelimit.v3.RateLimitService`. */
export function rateLimitClientConstructor(): grpc.ServiceClientConstructor {
  return serviceConstructor();
}
