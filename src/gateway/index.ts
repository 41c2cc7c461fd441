/**
 * `meshlet/gateway`: the ingress gateway (DESIGN.md §3) — Istio Gateway +
 * bound VirtualServices served by a node:http(s) server on the mesh's
 * outbound path.
 */
export { createGateway, DEFAULT_GATEWAY_WORKLOAD } from './gateway.js';
export type { Gateway, GatewayOptions } from './gateway.js';
export { runGatewayCli } from './cli.js';
export type { GatewayCliIo } from './cli.js';
export { ENVOY_LEGACY_INTERNAL_ADDRESSES } from './sanitize.js';
export type { ForwardClientCertDetails, GatewayEdgeOptions, GatewayTopology } from './sanitize.js';
